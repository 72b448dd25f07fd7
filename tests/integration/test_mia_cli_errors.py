"""Bad generator specs and options fail with exit code 2 and a clear message."""

import subprocess
import sys

import pytest


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "auditkit", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpt2", "unknown kind 'gpt2'"),
        ("fixture:nope", "unknown fixture generator 'nope'"),
        ("openai:http://localhost:1/v1", "model name is missing"),
        ("hf:/no/such/folder", "is not a folder"),
    ],
)
def test_bad_generator_spec_exits_2(fixtures_dir, spec, message):
    src, hold = str(fixtures_dir / "source.jsonl"), str(fixtures_dir / "holdout.jsonl")
    proc = _run("mia", "--generator", spec, "--members", src, "--nonmembers", hold)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_audit_rejects_reference_without_generator(fixtures_dir, tmp_path):
    proc = _run(
        "audit", "--synthetic", str(fixtures_dir / "synthetic_clean.jsonl"),
        "--reference", "fixture", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert proc.returncode == 2 and "--reference needs --generator" in proc.stderr


def test_audit_rejects_a_bad_spec_before_reading_corpora(fixtures_dir, tmp_path):
    proc = _run(
        "audit", "--synthetic", str(fixtures_dir / "synthetic_clean.jsonl"),
        "--generator", "fixture:huge", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert proc.returncode == 2 and "fixture:huge" in proc.stderr
