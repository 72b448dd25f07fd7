"""`auditkit demo` and the diversity command on the shipped fixtures."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def auditkit(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "auditkit", *args], capture_output=True, text=True, cwd=cwd
    )


def test_demo_writes_two_verified_bundles_and_prints_paths(tmp_path):
    out = tmp_path / "demo"
    proc = auditkit("demo", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "== clean" in proc.stdout and "== leaky" in proc.stdout
    assert str(out / "leaky" / "report.pdf") in proc.stdout
    for name in ("clean", "leaky"):
        assert auditkit("verify", str(out / name)).returncode == 0
    clean = json.loads((out / "clean" / "results.json").read_text())
    leaky = json.loads((out / "leaky" / "results.json").read_text())
    assert clean["verdict"]["outcome"] in ("pass", "pass_with_warnings")
    assert leaky["verdict"]["outcome"] == "fail"
    # the membership probe ran on both fixture generators and shows both outcomes
    for run in (clean, leaky):
        (membership,) = [c for c in run["checks"] if c["check"] == "membership"]
        assert membership["status"] == "ok"
    clean_gates = {g["id"]: g["outcome"] for g in clean["verdict"]["gates"]}
    leaky_gates = {g["id"]: g["outcome"] for g in leaky["verdict"]["gates"]}
    assert clean_gates["no-demonstrated-membership"] == "pass"
    assert leaky_gates["no-demonstrated-membership"] == "fail"

    def gates(results):
        return {g["id"]: g["outcome"] for g in results["verdict"]["gates"]}

    # The default policy gates on copied source passages: the planted copies fail it.
    assert gates(clean)["no-copied-source-passages"] == "pass"
    assert gates(leaky)["no-copied-source-passages"] == "fail"
    assert gates(clean)["not-closer-than-fresh-real-notes"] == "pass"
    copied = {g["id"]: g for g in leaky["verdict"]["record_gates"]}["record-no-copied-passage"]
    assert copied["failed"] > 0


def _diversity(path, source):
    proc = auditkit("diversity", str(path), "--source", str(source), "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    return {(m["name"], m["group"]): m for m in result["metrics"]}, result


def test_leaky_near_duplicate_clusters_lower_its_diversity(fixtures_dir):
    source = fixtures_dir / "source.jsonl"
    clean, _ = _diversity(fixtures_dir / "synthetic_clean.jsonl", source)
    leaky, result = _diversity(fixtures_dir / "synthetic_leaky.jsonl", source)
    assert clean[("near_duplicate_rate", None)]["value"] <= 0.02
    assert leaky[("near_duplicate_rate", None)]["value"] > 0.05
    assert leaky[("collapsed_codes", None)]["value"] > clean[("collapsed_codes", None)]["value"]
    labels = [json.loads(line) for line in (fixtures_dir / "synthetic_leaky.labels.jsonl").open()]
    codes = {
        r["id"]: r["icd10"][0]
        for r in map(json.loads, (fixtures_dir / "synthetic_leaky.jsonl").open())
    }
    clusters: dict[str, list[str]] = {}
    for lab in labels:
        for item in lab["planted"]:
            if item["kind"] == "near_duplicate":
                clusters.setdefault(item["cluster"], []).append(lab["id"])
    assert clusters, "the leaky fixture plants near-duplicate clusters"
    # Every code that hosts a planted cluster is less varied than the same code in the clean
    # set, measured against the same length-matched real notes. (The leaky set as a whole is
    # not: its copied real passages raise its variety, which is the overlap check's business.)
    for code in sorted({codes[members[0]] for members in clusters.values()}):
        key = ("distinct_2_ratio", code)
        assert leaky[key]["value"] < clean[key]["value"], code
    # Planted cluster members beyond the first of each cluster are flagged (the builder makes
    # some members looser copies than the 0.7 shingle-Jaccard definition, so not all).
    flagged = {rid for rid, rec in result["records"].items() if rec["values"]["near_duplicate"]}
    planted = {rid for members in clusters.values() for rid in members}
    flaggable = sum(len(members) - 1 for members in clusters.values())
    assert len(flagged & planted) >= 0.8 * flaggable, (len(flagged & planted), flaggable)
    assert all(set(members) & flagged for members in clusters.values())
    extras = flagged - planted
    assert len(extras) <= 0.02 * len(result["records"]), sorted(extras)
