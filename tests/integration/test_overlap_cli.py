"""`auditkit overlap`: the JSON-lines contract and the planted leaks of the fixtures."""

import json
import subprocess
import sys

import pytest

from auditkit.text import words

pytestmark = pytest.mark.slow

MATCH_KEYS = {
    "kind",
    "source_id",
    "start",
    "end",
    "source_start",
    "source_end",
    "similarity",
    "boilerplate",
}


def overlap(*args):
    return subprocess.run(
        [sys.executable, "-m", "auditkit", "overlap", *args, "--quiet"],
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def leaky_lines(fixtures_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ov") / "leaky.jsonl"
    proc = overlap(
        "--synthetic",
        str(fixtures_dir / "synthetic_leaky.jsonl"),
        "--source",
        str(fixtures_dir / "source.jsonl"),
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "with a leak" in proc.stderr
    return [json.loads(line) for line in out.open()]


def test_contract_one_line_per_record_offsets_inside_both_texts(leaky_lines, fixtures_dir):
    synthetic = {
        r["id"]: r["text"] for r in map(json.loads, (fixtures_dir / "synthetic_leaky.jsonl").open())
    }
    source = {r["id"]: r["text"] for r in map(json.loads, (fixtures_dir / "source.jsonl").open())}
    assert [line["id"] for line in leaky_lines] == list(synthetic)
    for line in leaky_lines:
        assert set(line) == {"id", "leak", "max_exact_tokens", "exact_fraction", "matches"}
        assert line["leak"] == any(not m["boilerplate"] for m in line["matches"])
        for m in line["matches"]:
            assert set(m) == MATCH_KEYS
            assert m["kind"] in ("exact", "near")
            assert 0 <= m["start"] < m["end"] <= len(synthetic[line["id"]])
            assert 0 <= m["source_start"] < m["source_end"] <= len(source[m["source_id"]])
            if m["kind"] == "exact":
                # verbatim means the same words (punctuation is not a token)
                assert words(synthetic[line["id"]][m["start"] : m["end"]]) == words(
                    source[m["source_id"]][m["source_start"] : m["source_end"]]
                )


def test_planted_copies_in_the_leaky_fixture_are_found(leaky_lines, fixtures_dir):
    by_id = {line["id"]: line for line in leaky_lines}
    labels = [json.loads(line) for line in (fixtures_dir / "synthetic_leaky.labels.jsonl").open()]
    found = {"verbatim_copy": [], "near_copy": [], "document_copy": []}
    for lab in labels:
        for item in lab["planted"]:
            if item["kind"] in found:
                hit = any(
                    m["source_id"] == item["source_id"]
                    and not m["boilerplate"]
                    and m["start"] < item["end"]
                    and m["end"] > item["start"]
                    for m in by_id[lab["id"]]["matches"]
                )
                found[item["kind"]].append(hit)
    assert all(found.values())
    assert sum(found["verbatim_copy"]) / len(found["verbatim_copy"]) >= 0.95
    assert sum(found["near_copy"]) / len(found["near_copy"]) >= 0.85
    assert all(found["document_copy"])


def test_the_clean_fixture_copies_no_passage(fixtures_dir, tmp_path):
    out = tmp_path / "clean.jsonl"
    proc = overlap(
        "--synthetic",
        str(fixtures_dir / "synthetic_clean.jsonl"),
        "--source",
        str(fixtures_dir / "source.jsonl"),
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.open()]
    assert len(lines) == 171
    assert [line["id"] for line in lines if line["leak"]] == []


def test_output_never_contains_text(leaky_lines, fixtures_dir):
    dumped = json.dumps(leaky_lines)
    for record in map(json.loads, (fixtures_dir / "source.jsonl").open()):
        tokens = record["text"].split()
        for i in range(0, len(tokens) - 8, 40):
            assert " ".join(tokens[i : i + 8]) not in dumped


def test_missing_source_is_a_usage_error(fixtures_dir):
    proc = overlap("--synthetic", str(fixtures_dir / "synthetic_leaky.jsonl"))
    assert proc.returncode == 2 and "--source" in proc.stderr
