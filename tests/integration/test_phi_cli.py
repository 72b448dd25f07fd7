"""``auditkit phi`` through the real CLI: the JSONL contract, --out, --model errors."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

TEXTS = {
    "a": "Patient: OKAFOR, MARIA T  MRN: 00482913  DOB: 04/22/1961. Call (614) 555-0182.",
    "b": "Low mood for 3 weeks. PHQ-9 19 on sertraline 50 mg; Beck Depression Inventory 28.",
    "c": "Seen by Dr. Samuel Reyes at Mercy Ridge Hospital, fax 614-555-0103.",
}
SPAN_KEYS = {"start", "end", "type", "score", "recognizer", "in_source"}


def auditkit(*args):
    return subprocess.run(
        [sys.executable, "-m", "auditkit", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    d = tmp_path_factory.mktemp("phi")
    syn = d / "syn.jsonl"
    syn.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in TEXTS.items()))
    src = d / "src.jsonl"
    src.write_text(json.dumps({"id": "r1", "text": "MRN 00482913, phone 614-555-0182"}) + "\n")
    return syn, src


def test_phi_writes_one_json_line_per_record_without_values(corpora):
    syn, src = corpora
    proc = auditkit("phi", str(syn), "--source", str(src), "-q")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["id"] for line in lines] == list(TEXTS)
    for line in lines:
        assert set(line) == {"id", "spans"}
        text = TEXTS[line["id"]]
        for span in line["spans"]:
            assert set(span) == SPAN_KEYS
            assert 0 <= span["start"] < span["end"] <= len(text)
            assert isinstance(span["in_source"], bool) and 0 < span["score"] <= 1
    by_id = {line["id"]: line["spans"] for line in lines}
    assert by_id["b"] == []
    types_a = {s["type"]: s["in_source"] for s in by_id["a"]}
    assert types_a["MRN"] is True and types_a["PHONE"] is True and types_a["NAME"] is False
    assert {s["type"] for s in by_id["c"]} >= {"NAME", "FACILITY", "FAX"}
    for raw in ("OKAFOR", "00482913", "555-0182"):
        assert raw not in proc.stdout


def test_phi_out_file_and_summary(corpora, tmp_path):
    syn, _ = corpora
    out = tmp_path / "spans.jsonl"
    proc = auditkit("phi", str(syn), "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "3 records, 2 with PHI" in proc.stderr
    assert len(out.read_text().splitlines()) == 3


def test_phi_missing_model_is_a_usage_error(corpora):
    syn, _ = corpora
    proc = auditkit("phi", str(syn), "--model", "en_core_web_nonexistent", "-q")
    assert proc.returncode == 2
    assert "pip install en_core_web_nonexistent" in proc.stderr


def test_phi_help_lists_the_options():
    proc = auditkit("phi", "--help")
    assert proc.returncode == 0
    for option in ("--source", "--out", "--workers", "--model"):
        assert option in proc.stdout
