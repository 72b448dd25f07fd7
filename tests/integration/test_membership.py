"""The membership probe on the shipped fixture generators, through the CLI and the audit.

The memorising fixture was trained on fixtures/source.jsonl, the general one on a disjoint
corpus of the same kind. Both runs are cached per module: each probe scores 456 reports.
"""

import json
import subprocess
import sys

import pytest

from auditkit.results import load_run

pytestmark = pytest.mark.slow


def _mia(fixtures_dir, tmp_path, spec, *extra):
    out = tmp_path / f"{spec.replace(':', '_')}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "auditkit", "mia", "--generator", spec,
         "--members", str(fixtures_dir / "source.jsonl"),
         "--nonmembers", str(fixtures_dir / "holdout.jsonl"),
         "--out", str(out), "--quiet", *extra],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc


@pytest.fixture(scope="module")
def memorising(fixtures_dir, tmp_path_factory):
    return _mia(fixtures_dir, tmp_path_factory.mktemp("mia"), "fixture:memorising")


@pytest.fixture(scope="module")
def general(fixtures_dir, tmp_path_factory):
    return _mia(fixtures_dir, tmp_path_factory.mktemp("mia"), "fixture:general")


def test_cli_contract(memorising):
    result, proc = memorising
    assert set(result["attacks"]) == {"loss", "zlib", "min_k", "min_k_pp"}
    for a in result["attacks"].values():
        assert set(a) == {"auc", "auc_ci", "tpr_at_1fpr", "tpr_at_5fpr"}
        assert a["auc_ci"][0] <= a["auc"] <= a["auc_ci"][1]
    assert result["n_members"] == 342 and result["n_nonmembers"] == 114
    lo, hi = result["worst_auc_ci"]
    assert lo <= result["worst_auc"] <= hi
    assert {"member_exact_rate", "nonmember_exact_rate"} <= set(result["extraction"])
    assert 0 <= result["blind_auc"] <= 1
    for curve in result["roc"].values():
        assert len(curve) <= 50 and curve[0] == [0.0, 0.0] and curve[-1] == [1.0, 1.0]
    assert "worst AUC" in proc.stderr


def test_memorising_fixture_is_found(memorising):
    result, _ = memorising
    assert result["worst_auc_ci"][0] > 0.7  # the widened lower bound, well above chance
    # The shipped model is found by the scoring attacks only: with about 240k parameters
    # it is too small to reproduce 48-token continuations (README: Status), so extraction
    # is not asserted here; tests/unit/test_membership_check.py covers it.


def test_general_fixture_shows_no_signal(general):
    result, _ = general
    lo, hi = result["worst_auc_ci"]
    assert lo <= 0.5 <= hi
    for attack in result["attacks"].values():
        assert attack["auc_ci"][0] <= 0.5 + 0.05
    assert result["extraction"]["extracted_records"] == 0


def test_source_and_holdout_fool_no_blind_classifier(memorising, general):
    # the same split and seed: the blind baseline does not depend on the generator
    assert memorising[0]["blind_auc"] == general[0]["blind_auc"]
    assert not memorising[0]["probe_unreliable"]


POLICY = """name: membership-only
checks:
  membership:
    sample: 40
    bootstrap: 200
    extraction_sample: 10
gates:
  - id: no-demonstrated-membership
    metric: membership.worst_auc_ci_low
    op: "<="
    value: 0.55
    severity: block
    why: test
"""


def test_audit_with_generator_gates_and_records_the_model(fixtures_dir, tmp_path):
    # a small probe (40 + 40 records) keeps this end-to-end audit cheap
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    out = tmp_path / "bundle"
    proc = subprocess.run(
        [sys.executable, "-m", "auditkit", "audit",
         "--synthetic", str(fixtures_dir / "synthetic_clean.jsonl"),
         "--source", str(fixtures_dir / "source.jsonl"),
         "--holdout", str(fixtures_dir / "holdout.jsonl"), "--policy", str(policy),
         "--generator", "fixture:memorising", "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    run = load_run((out / "results.json").read_text())
    membership = run.check("membership")
    assert membership.status == "ok" and membership.metric("members").value == 40
    low = membership.metric("worst_auc_ci_low").value
    (gate,) = run.verdict.gates
    assert gate.outcome == ("pass" if low <= 0.55 else "fail")
    assert proc.returncode == (0 if low <= 0.55 else 1), proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    (model,) = [m for m in manifest["models"] if m.get("role") == "generator"]
    assert model["name"] == "auditkit-fixture-memorising" and len(model["sha256"]) == 64
    assert manifest["options"]["generator"] == "fixture:memorising"
    html = (out / "report.html").read_text()
    assert "maximum over several attacks" in html and "blind baseline" in html
