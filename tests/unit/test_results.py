import json

from hypothesis import given, settings
from hypothesis import strategies as st

from auditkit.results import (
    AuditRun,
    CheckResult,
    Direction,
    Finding,
    GateResult,
    InputSummary,
    Interval,
    Metric,
    PolicyRef,
    RecordDecision,
    RecordResult,
    Verdict,
    canonical_json,
    load_run,
)

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)

metrics = st.builds(
    Metric,
    name=names,
    value=st.one_of(st.none(), st.integers(-(10**6), 10**6), floats),
    direction=st.sampled_from(Direction),
    group=st.one_of(st.none(), names),
    interval=st.one_of(st.none(), st.builds(Interval, low=finite, high=finite)),
)
records = st.dictionaries(
    names,
    st.builds(
        RecordResult,
        values=st.dictionaries(
            names, st.one_of(st.booleans(), st.integers(-1000, 1000), finite), max_size=3
        ),
        findings=st.lists(
            st.builds(Finding, kind=names, message=names, score=floats), max_size=2
        ).map(tuple),
    ),
    max_size=3,
)
checks = st.builds(
    CheckResult,
    check=names,
    status=st.sampled_from(["ok", "skipped", "error"]),
    metrics=st.lists(metrics, max_size=4).map(tuple),
    records=records,
)


def _run(check_results):
    return AuditRun(
        version="0",
        seed=1,
        policy=PolicyRef(name="p", path="p.yaml", sha256="0" * 64),
        inputs=(
            InputSummary(
                role="synthetic",
                path="s.jsonl",
                format="jsonl",
                sha256="1" * 64,
                records=2,
                codes={"F32.1": 2},
            ),
        ),
        checks=tuple(check_results),
        verdict=Verdict(
            outcome="pass",
            exit_code=0,
            summary="ok",
            gates=(
                GateResult(
                    id="g",
                    metric="c.m",
                    op="<",
                    threshold=1.0,
                    severity="block",
                    outcome="pass",
                    value=0.5,
                ),
            ),
            record_gates=(),
            decisions=(RecordDecision(id="a", released=True),),
        ),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(checks, max_size=3))
def test_canonical_json_round_trip_is_a_fixed_point(check_results):
    text = canonical_json(_run(check_results))
    assert canonical_json(load_run(text)) == text


def test_canonical_json_sorted_rounded_and_nan_free():
    text = canonical_json({"b": 1 / 3, "a": [float("nan"), -0.0, 2.0e-12, 123456789.123]})
    assert text == (
        '{\n  "a": [\n    null,\n    0.0,\n    2e-12,\n    123457000.0\n  ],\n  "b": 0.333333\n}\n'
    )
    json.loads(text)


def test_non_finite_values_are_refused_or_absent():
    import pytest
    from pydantic import ValidationError

    assert Metric(name="m", value=float("nan"), direction=Direction.NEUTRAL).value is None
    with pytest.raises(ValidationError):
        Interval(low=0.0, high=float("inf"))
    with pytest.raises(ValidationError):
        RecordResult(values={"x": float("nan")})
