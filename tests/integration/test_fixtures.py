"""The committed fixtures are exactly what their seeded builders produce."""

import hashlib
import json
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

BUILT = [
    "source.jsonl",
    "holdout.jsonl",
    "synthetic_clean.jsonl",
    "synthetic_leaky.jsonl",
    "synthetic_leaky.labels.jsonl",
    "source_identifiers.jsonl",
    "holdout_identifiers.jsonl",
]


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fixture_builder_reproduces_the_committed_files(tmp_path, fixtures_dir):
    subprocess.run(
        [sys.executable, str(fixtures_dir / "build_fixtures.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    for name in BUILT:
        assert sha(tmp_path / name) == sha(fixtures_dir / name), f"{name} differs from its builder"


def test_overlap_benchmark_builder_reproduces_the_committed_files(tmp_path, fixtures_dir):
    out = tmp_path / "overlap_bench"
    subprocess.run(
        [sys.executable, str(fixtures_dir / "build_overlap_bench.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    for name in ("synthetic.jsonl", "labels.jsonl", "README.md"):
        committed = fixtures_dir / "overlap_bench" / name
        assert sha(out / name) == sha(committed), f"overlap_bench/{name} differs from its builder"


def test_phi_benchmark_builder_reproduces_documents(tmp_path, fixtures_dir):
    bench = fixtures_dir / "phi_benchmark"
    copy = tmp_path / "phi_benchmark"
    shutil.copytree(bench / "source", copy / "source")
    shutil.copy(bench / "build.py", copy / "build.py")
    subprocess.run([sys.executable, str(copy / "build.py")], check=True, capture_output=True)
    assert sha(copy / "documents.jsonl") == sha(bench / "documents.jsonl")


def test_fixture_shapes_meet_the_brief(fixtures_dir):
    def load(name):
        return [json.loads(line) for line in (fixtures_dir / name).open()]

    source, holdout = load("source.jsonl"), load("holdout.jsonl")
    clean, leaky = load("synthetic_clean.jsonl"), load("synthetic_leaky.jsonl")
    assert len(source) >= 300 and len(holdout) >= 100 and len(clean) >= 150 and len(leaky) >= 150
    assert not {r["text"] for r in source} & {r["text"] for r in holdout}
    assert len({r["icd10"][0] for r in source}) >= 12
    for corpus in (source, holdout, clean, leaky):
        lengths = [len(r["text"].split()) for r in corpus]
        assert min(lengths) >= 150 and max(lengths) <= 600
    kinds = {
        item["kind"] for lab in load("synthetic_leaky.labels.jsonl") for item in lab["planted"]
    }
    assert {"verbatim_copy", "near_copy", "source_identifier", "near_duplicate"} <= kinds
