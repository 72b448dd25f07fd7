from pathlib import Path

import pytest

from auditkit.errors import PolicyError
from auditkit.policy import Gate, Policy, RecordGate, evaluate, load_policy
from auditkit.resources import resolve_policy, rules_dir
from auditkit.results import CheckResult, Direction, Finding, Interval, Metric, RecordResult

HERE = Path(__file__).parent / "policies"


@pytest.mark.parametrize("name", sorted(p.stem for p in rules_dir().glob("*.yaml")))
def test_shipped_policies_are_valid(name):
    policy = load_policy(resolve_policy(name))
    assert policy.name == name and len(policy.sha256) == 64
    assert policy.gates, "a shipped policy without gates certifies nothing"


BROKEN = [
    ("unknown_key", 11, "gates[0].treshold", "Extra inputs are not permitted"),
    ("bad_op", 7, "gates[0].op", "Input should be"),
    ("unknown_metric", 6, "gates[0].metric", "check 'diversity' has no metric 'near_dup_rate'"),
    ("check_not_enabled", 5, "gates[0].metric", "does not enable"),
    ("unknown_check", 3, "checks.telepathy", "unknown check 'telepathy'"),
    ("bad_check_config", 4, "checks.diversity.near_duplicate_jaccard", "less than or equal to 1"),
    ("bad_record_field", 6, "record_gates[0].field", "no record field 'duplicate'"),
    ("duplicate_gate_id", 6, "gates[1].id", "duplicate gate id 'g'"),
    ("not_yaml", 3, None, "not valid YAML"),
]


@pytest.mark.parametrize(("stem", "line", "key", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_policies_name_file_key_and_line(stem, line, key, message):
    path = HERE / f"{stem}.yaml"
    with pytest.raises(PolicyError, match=message) as info:
        load_policy(path)
    err = info.value
    assert err.exit_code == 2
    assert err.path == str(path)
    assert err.field == key
    assert err.line == line


def test_bad_op_hint_lists_valid_operators():
    with pytest.raises(PolicyError) as info:
        load_policy(HERE / "bad_op.yaml")
    assert "'<='" in str(info.value)


def _result(status="ok", value=0.1, records=None, interval=None):
    return CheckResult(
        check="diversity",
        status=status,
        reason=None if status == "ok" else "no source",
        metrics=(
            Metric(
                name="near_duplicate_rate",
                value=value,
                direction=Direction.LOWER_IS_SAFER,
                interval=interval,
            ),
        )
        if status == "ok"
        else (),
        records=records or {},
    )


def _policy(*gates, record_gates=()):
    return Policy(name="t", checks={"diversity": {}}, gates=gates, record_gates=record_gates)


GATE = dict(id="g", metric="diversity.near_duplicate_rate", op="<=", value=0.05, why="w")

EVALUATE = [
    ("pass", {}, _result(value=0.01), "pass", 0),
    ("block fail", {}, _result(value=0.2), "fail", 1),
    ("warn fail", {"severity": "warn"}, _result(value=0.2), "pass_with_warnings", 0),
    ("boundary passes", {}, _result(value=0.05), "pass", 0),
    ("skip default warns", {}, _result(status="skipped"), "pass_with_warnings", 0),
    ("skip pass", {"on_skip": "pass"}, _result(status="skipped"), "pass", 0),
    ("skip fail", {"on_skip": "fail"}, _result(status="skipped"), "fail", 1),
    ("metric none", {}, _result(value=None), "pass_with_warnings", 0),
    ("check error", {}, _result(status="error"), "error", 3),
]


@pytest.mark.parametrize(
    ("case", "overrides", "result", "outcome", "code"), EVALUATE, ids=[e[0] for e in EVALUATE]
)
def test_evaluate_dataset_gates(case, overrides, result, outcome, code):
    verdict = evaluate([result], _policy(Gate(**{**GATE, **overrides})), [])
    assert verdict.outcome == outcome and verdict.exit_code == code


def test_evaluate_carries_interval_and_is_pure():
    iv = Interval(low=0.0, high=0.02)
    result = _result(value=0.01, interval=iv)
    policy = _policy(Gate(**GATE))
    a = evaluate([result], policy, [])
    assert a == evaluate([result], policy, [])
    assert a.gates[0].interval == iv and a.gates[0].value == 0.01


def test_record_gates_split_release_and_quarantine_with_reasons():
    records = {
        "a": RecordResult(values={"near_duplicate": 0}),
        "b": RecordResult(
            values={"near_duplicate": 1},
            findings=(Finding(kind="near_duplicate", message="near-duplicate of a"),),
        ),
    }
    rg = RecordGate(id="not-dup", field="diversity.near_duplicate", op="==", value=0)
    verdict = evaluate(
        [_result(value=0.0, records=records)], _policy(record_gates=(rg,)), ["a", "b"]
    )
    assert [d.released for d in verdict.decisions] == [True, False]
    assert verdict.decisions[1].gates == ("not-dup",)
    assert verdict.decisions[1].reasons == ("near-duplicate of a",)
    assert verdict.record_gates[0].failed == 1 and verdict.record_gates[0].evaluated == 2
    assert verdict.released == 1 and verdict.quarantined == 1


def test_record_gate_missing_value_is_an_error_not_a_release():
    rg = RecordGate(id="not-dup", field="diversity.near_duplicate", op="==", value=0)
    verdict = evaluate(
        [_result(records={"a": RecordResult(values={"near_duplicate": 0})})],
        _policy(record_gates=(rg,)),
        ["a", "b"],
    )
    assert verdict.outcome == "error"
    assert "'b'" in verdict.record_gates[0].reason


def test_record_gate_on_skip_quarantine():
    rg = RecordGate(
        id="not-dup", field="diversity.near_duplicate", op="==", value=0, on_skip="quarantine"
    )
    verdict = evaluate([_result(status="skipped")], _policy(record_gates=(rg,)), ["a"])
    assert verdict.quarantined == 1
