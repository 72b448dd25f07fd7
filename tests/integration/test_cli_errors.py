"""Bad input through the real CLI: exit code 2 and a message naming file, line and field."""

import json
import subprocess
import sys

import pytest

CASES = [
    ("invalid json", b'{"id":"a","text":"x"}\n{"id":\n', "line 2", "invalid JSON"),
    (
        "missing text",
        b'{"id":"a","text":"x"}\n{"id":"b"}\n',
        "line 2, field 'text'",
        "missing text",
    ),
    ("empty text", b'{"id":"a","text":""}\n', "line 1, field 'text'", "text is empty"),
    (
        "duplicate id",
        b'{"id":"a","text":"x"}\n{"id":"a","text":"y"}\n',
        "line 2, field 'id'",
        "duplicate id",
    ),
    ("non-utf8", b'{"id":"a","text":"caf\xe9"}\n', "line 1", "not valid UTF-8"),
    ("too long", b'{"id":"a","text":"' + b"x" * 2000 + b'"}\n', "line 1", "over the limit"),
    ("empty corpus", b"\n", "s.jsonl", "has no records"),
]


def auditkit(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "auditkit", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize(("case", "content", "where", "what"), CASES, ids=[c[0] for c in CASES])
def test_audit_rejects_bad_input_with_exit_2(tmp_path, case, content, where, what):
    corpus = tmp_path / "s.jsonl"
    corpus.write_bytes(content)
    out = tmp_path / "bundle"
    proc = auditkit(
        "audit", "--synthetic", str(corpus), "--out", str(out), "--max-record-bytes", "1000"
    )
    assert proc.returncode == 2, proc.stderr
    assert str(corpus) in proc.stderr and where in proc.stderr and what in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists(), "no partial certification: nothing may be written"


def test_bad_source_corpus_is_rejected_too(tmp_path):
    good = tmp_path / "s.jsonl"
    good.write_text(json.dumps({"id": "a", "text": "low mood"}) + "\n")
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"id":"a","text":"x"}\nnot json\n')
    proc = auditkit(
        "audit", "--synthetic", str(good), "--source", str(bad), "--out", str(tmp_path / "b")
    )
    assert proc.returncode == 2 and "r.jsonl, line 2" in proc.stderr


def test_bad_policy_is_rejected_before_reading_corpora(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "name: p\nchecks:\n  diversity: {}\ngates:\n  - id: g\n    metric: diversity.nope\n"
        "    op: '<'\n    value: 1\n    why: w\n"
    )
    proc = auditkit(
        "audit",
        "--synthetic",
        str(tmp_path / "missing.jsonl"),
        "--policy",
        str(policy),
        "--out",
        str(tmp_path / "b"),
    )
    # click checks the path exists first; give it a real file to reach policy validation
    corpus = tmp_path / "s.jsonl"
    corpus.write_text("not even json\n")
    proc = auditkit(
        "audit", "--synthetic", str(corpus), "--policy", str(policy), "--out", str(tmp_path / "b")
    )
    assert proc.returncode == 2
    assert "p.yaml, line 6, field 'gates[0].metric'" in proc.stderr
    assert "no metric 'nope'" in proc.stderr


def test_unknown_policy_name_lists_shipped_ones(tmp_path):
    corpus = tmp_path / "s.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "low mood"}) + "\n")
    proc = auditkit(
        "audit", "--synthetic", str(corpus), "--policy", "lenient", "--out", str(tmp_path / "b")
    )
    assert proc.returncode == 2 and "default" in proc.stderr and "strict" in proc.stderr


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(tmp_path):
    corpus = tmp_path / "s.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "low mood"}) + "\n")
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    proc = auditkit("audit", "--synthetic", str(corpus), "--out", str(out))
    assert proc.returncode == 2 and "refusing to replace" in proc.stderr
    assert (out / "thesis.tex").read_text() == "years of work"
