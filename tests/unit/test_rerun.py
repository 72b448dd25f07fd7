"""Rerun: the comparison of results and the location and digest check of inputs."""

import hashlib
import json

import pytest

from auditkit.errors import UsageError, VerificationError
from auditkit.rerun import compare, resolve_invocation


def _results(leak_rate=0.1, token="[NAME#0123abcd]"):
    return json.dumps(
        {
            "checks": [
                {
                    "check": "overlap",
                    "metrics": [
                        {"name": "leak_rate", "group": None, "value": leak_rate},
                        {"name": "spans", "group": "NAME", "value": 3},
                    ],
                    "evidence": [{"excerpt": f"... {token} ..."}],
                }
            ],
            "verdict": {"gates": [{"id": "g1", "outcome": "pass"}]},
        },
        sort_keys=True,
    )


def test_identical_results_have_no_differences():
    assert compare(_results(), _results()) == []


def test_drift_names_the_metric_and_both_values():
    diff = compare(_results(0.1), _results(0.2))
    assert diff == ["checks.overlap.metrics.leak_rate.value: signed 0.1, now 0.2"]


def test_tokens_of_another_key_compare_equal_only_when_told():
    signed, fresh = _results(token="[NAME#0123abcd]"), _results(token="[NAME#ffffeeee]")
    assert compare(signed, fresh, same_key=True)
    assert compare(signed, fresh, same_key=False) == []
    assert compare(_results(token="[NAME#0123abcd]"), _results(token="[DATE#0123abcd]"),
                   same_key=False)  # fmt: skip


@pytest.fixture
def manifest(tmp_path):
    synthetic = tmp_path / "synthetic.jsonl"
    synthetic.write_text('{"id": "1", "text": "hello there", "icd10": "F32.1"}\n')
    policy = tmp_path / "policy.yaml"
    policy.write_text("name: p\n")
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    return {
        "invocation": {"synthetic": str(synthetic), "policy": str(policy), "seed": 3,
                       "fields": {"id": "id", "text": "text", "codes": "icd10"}},
        "inputs": {"synthetic": {"sha256": digest(synthetic)}},
        "policy": {"name": "p", "sha256": digest(policy)},
    }  # fmt: skip


def test_invocation_is_passed_back_with_inputs_checked(manifest):
    kwargs = resolve_invocation(manifest, {})
    assert kwargs["seed"] == 3 and kwargs["source"] is None
    assert kwargs["fields"].codes == "icd10"


def test_changed_input_or_policy_is_refused(manifest, tmp_path):
    changed = tmp_path / "changed.jsonl"
    changed.write_text('{"id": "1", "text": "hello there!", "icd10": "F32.1"}\n')
    with pytest.raises(VerificationError, match="synthetic input differs"):
        resolve_invocation(manifest, {"synthetic": str(changed)})
    with open(manifest["invocation"]["policy"], "a") as f:
        f.write("# edited\n")
    with pytest.raises(VerificationError, match="policy input differs"):
        resolve_invocation(manifest, {})


def test_unknown_role_and_missing_file_are_usage_errors(manifest, tmp_path):
    with pytest.raises(UsageError, match="no such input"):
        resolve_invocation(manifest, {"reference": "x"})
    with pytest.raises(UsageError, match="not there any more"):
        resolve_invocation(manifest, {"synthetic": str(tmp_path / "gone.jsonl")})
