"""Policies: YAML files validated before anything runs, and the pure ``evaluate``.

A policy says which checks run (with their configuration), which dataset-level gates a
metric must pass, and which record gates decide release vs quarantine. Validation checks
the YAML against the schema *and* against what the registered checks declare, so a typo
in a metric name fails in milliseconds, not after an hour of scoring. Errors name the
file, the key (``gates[2].op``), its line, and what would be valid.

``evaluate`` is a pure function of check results, the policy and the record ids.
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auditkit.checks import registry
from auditkit.errors import EXIT_GATE_FAILED, EXIT_INTERNAL, EXIT_OK, PolicyError
from auditkit.results import (
    CheckResult,
    GateResult,
    RecordDecision,
    RecordGateResult,
    Verdict,
)

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_METRIC_RE = re.compile(r"^(?P<check>[a-z_]+)\.(?P<name>[a-z0-9_]+)(?:\[(?P<group>[^\]]+)\])?$")
#: How many finding messages a quarantine line carries per failed gate.
MAX_REASONS_PER_GATE = 3


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


OnSkip = Literal["pass", "warn", "fail"]


def _check_gate_id(v: str) -> str:
    if not _ID_RE.match(v):
        raise ValueError("gate ids are lower-case words joined by hyphens, e.g. no-source-phi")
    return v


class Gate(_Strict):
    """A dataset-level gate: ``metric op value``."""

    id: str
    metric: str
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    value: float
    severity: Literal["block", "warn"] = "block"
    why: str = Field(min_length=1)
    on_skip: OnSkip = "warn"

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        return _check_gate_id(v)


class RecordGate(_Strict):
    """A per-record gate: records whose ``field op value`` is false go to quarantine."""

    id: str
    field: str
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    value: float
    why: str = ""
    on_skip: Literal["release", "quarantine"] = "release"

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        return _check_gate_id(v)


class Policy(_Strict):
    """A validated policy. Build with :func:`load_policy`, not directly from YAML."""

    name: str
    description: str = ""
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    gates: tuple[Gate, ...] = ()
    record_gates: tuple[RecordGate, ...] = ()
    path: str = ""
    sha256: str = ""

    def check_config(self, check_id: str) -> Any:
        """The validated Config object of one enabled check."""
        return registry.get(check_id).configure(self.checks.get(check_id) or {})


def _loc_to_key(loc: Sequence[Any]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _line_of(root: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """Find the 1-based line of a key path in a composed YAML tree (best effort)."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def load_policy(path: str | Path) -> Policy:
    """Read, parse and fully validate a policy file.

    Raises:
        PolicyError: naming the file, key and line of the first problem.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PolicyError(p, f"cannot read the policy: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
        root = yaml.compose(text)
        raw = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise PolicyError(p, "the policy is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PolicyError(
            p,
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            line=mark.line + 1 if mark else None,
        ) from None
    if not isinstance(raw, dict):
        raise PolicyError(p, "a policy is a YAML mapping with name, checks, gates, record_gates")
    for reserved in ("path", "sha256"):
        if reserved in raw:
            raise PolicyError(p, f"'{reserved}' is filled in by auditkit", field=reserved)
    try:
        policy = Policy.model_validate(
            {**raw, "path": str(p), "sha256": hashlib.sha256(data).hexdigest()}
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"]
        raise PolicyError(
            p,
            err["msg"],
            line=_line_of(root, loc),
            field=_loc_to_key(loc),
            hint=_hint_for(err),
        ) from None
    _validate_against_checks(policy, p, root)
    return policy


def _hint_for(err: Any) -> str | None:
    if err["type"] == "extra_forbidden":
        return "remove the key, or check its spelling against the README's policy section"
    if err["type"] == "literal_error":
        return f"valid values: {err['ctx']['expected']}"
    return None


def _validate_against_checks(policy: Policy, p: Path, root: yaml.Node | None) -> None:
    known = registry.ids()
    for check_id, raw in policy.checks.items():
        if check_id not in known:
            raise PolicyError(
                p,
                f"unknown check {check_id!r}",
                line=_line_of(root, ["checks", check_id]),
                field=f"checks.{check_id}",
                hint=f"known checks: {', '.join(known)}",
            )
        try:
            registry.get(check_id).configure(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ["checks", check_id, *err["loc"]]
            raise PolicyError(
                p,
                err["msg"],
                line=_line_of(root, loc),
                field=_loc_to_key(loc),
                hint=_hint_for(err),
            ) from None
    seen: set[str] = set()
    for kind, items in (("gates", policy.gates), ("record_gates", policy.record_gates)):
        for i, gate in enumerate(items):
            key = f"{kind}[{i}]"
            if gate.id in seen:
                raise PolicyError(
                    p,
                    f"duplicate gate id {gate.id!r}",
                    line=_line_of(root, [kind, i]),
                    field=f"{key}.id",
                )
            seen.add(gate.id)
            target = gate.metric if isinstance(gate, Gate) else gate.field
            attr = "metric" if isinstance(gate, Gate) else "field"
            problem, hint = _target_problem(policy, target, record=not isinstance(gate, Gate))
            if problem:
                raise PolicyError(
                    p,
                    problem,
                    line=_line_of(root, [kind, i, attr]),
                    field=f"{key}.{attr}",
                    hint=hint,
                )


def _target_problem(policy: Policy, target: str, *, record: bool) -> tuple[str | None, str | None]:
    m = _METRIC_RE.match(target)
    if not m or (record and m.group("group")):
        shape = "check.field" if record else "check.metric or check.metric[GROUP]"
        return f"{target!r} is not of the form {shape}", None
    check_id, name, group = m.group("check", "name", "group")
    if check_id not in policy.checks:
        return (
            f"{target!r} refers to check {check_id!r}, which this policy does not enable",
            f"add '{check_id}: {{}}' under checks:",
        )
    cls = registry.get(check_id)
    declared = cls.record_fields if record else cls.metrics
    if name not in declared:
        return (
            f"check {check_id!r} has no {'record field' if record else 'metric'} {name!r}",
            f"valid: {', '.join(sorted(declared))}",
        )
    if group and not cls.metrics[name].per_group:
        return f"metric {check_id}.{name} is not reported per group", None
    return None, None


def _split(target: str) -> tuple[str, str]:
    check_id, _, key = target.partition(".")
    return check_id, key


def evaluate(results: Sequence[CheckResult], policy: Policy, record_ids: Sequence[str]) -> Verdict:
    """Judge check results against a policy. Pure: same arguments, same verdict."""
    by_check: Mapping[str, CheckResult] = {r.check: r for r in results}
    gates = tuple(_evaluate_gate(g, by_check.get(_split(g.metric)[0])) for g in policy.gates)
    record_gates, failures = _evaluate_record_gates(policy.record_gates, by_check, record_ids)

    decisions = []
    for rid in record_ids:
        failed = failures.get(rid, [])
        decisions.append(
            RecordDecision(
                id=rid,
                released=not failed,
                gates=tuple(g for g, _ in failed),
                reasons=tuple(r for _, reasons in failed for r in reasons),
            )
        )
    outcomes = [g.outcome for g in gates] + ["error" for g in record_gates if g.outcome == "error"]
    if "error" in outcomes:
        outcome, code = "error", EXIT_INTERNAL
    elif "fail" in outcomes:
        outcome, code = "fail", EXIT_GATE_FAILED
    elif "warn" in outcomes:
        outcome, code = "pass_with_warnings", EXIT_OK
    else:
        outcome, code = "pass", EXIT_OK
    n_fail = outcomes.count("fail")
    n_warn = outcomes.count("warn")
    released = sum(d.released for d in decisions)
    summary = {
        "pass": "PASS: every gate passed",
        "pass_with_warnings": f"PASS WITH WARNINGS: {n_warn} warning gate(s) failed",
        "fail": f"FAIL: {n_fail} blocking gate(s) failed",
        "error": "ERROR: a check failed to compute; the data cannot be certified",
    }[outcome] + f"; {released} of {len(decisions)} records released"
    return Verdict(
        outcome=outcome,  # type: ignore[arg-type]
        exit_code=code,
        summary=summary,
        gates=gates,
        record_gates=record_gates,
        decisions=tuple(decisions),
    )


def _evaluate_gate(gate: Gate, result: CheckResult | None) -> GateResult:
    base = {
        "id": gate.id,
        "metric": gate.metric,
        "op": gate.op,
        "threshold": gate.value,
        "severity": gate.severity,
        "why": gate.why,
    }
    if result is None or result.status == "error":
        reason = "check did not run" if result is None else f"check error: {result.reason}"
        return GateResult(**base, outcome="error", reason=reason)
    _, key = _split(gate.metric)
    metric = result.metric(key) if result.status == "ok" else None
    if metric is None or metric.value is None:
        reason = (
            f"check skipped: {result.reason}"
            if result.status == "skipped"
            else "metric not computed for this data"
        )
        outcome = {"pass": "skipped", "warn": "warn", "fail": "fail"}[gate.on_skip]
        if outcome == "fail" and gate.severity == "warn":
            outcome = "warn"
        return GateResult(**base, outcome=outcome, reason=reason)  # type: ignore[arg-type]
    ok = OPS[gate.op](metric.value, gate.value)
    outcome = "pass" if ok else ("fail" if gate.severity == "block" else "warn")
    return GateResult(**base, outcome=outcome, value=metric.value, interval=metric.interval)


def _evaluate_record_gates(
    gates: Sequence[RecordGate],
    by_check: Mapping[str, CheckResult],
    record_ids: Sequence[str],
) -> tuple[tuple[RecordGateResult, ...], dict[str, list[tuple[str, list[str]]]]]:
    failures: dict[str, list[tuple[str, list[str]]]] = {}
    out = []
    for gate in gates:
        check_id, field = _split(gate.field)
        result = by_check.get(check_id)
        base = {
            "id": gate.id,
            "field": gate.field,
            "op": gate.op,
            "threshold": gate.value,
            "why": gate.why,
        }
        if result is None or result.status != "ok":
            reason = (
                "check did not run"
                if result is None
                else (f"check {result.status}: {result.reason}")
            )
            if result is not None and result.status == "error":
                out.append(
                    RecordGateResult(**base, failed=0, evaluated=0, outcome="error", reason=reason)
                )
                continue
            quarantine = gate.on_skip == "quarantine"
            if quarantine:
                for rid in record_ids:
                    failures.setdefault(rid, []).append((gate.id, [f"{gate.id}: {reason}"]))
            out.append(
                RecordGateResult(
                    **base,
                    failed=len(record_ids) if quarantine else 0,
                    evaluated=0,
                    outcome="skipped",
                    reason=reason,
                )
            )
            continue
        missing = [
            rid
            for rid in record_ids
            if rid not in result.records or field not in result.records[rid].values
        ]
        if missing:
            out.append(
                RecordGateResult(
                    **base,
                    failed=0,
                    evaluated=0,
                    outcome="error",
                    reason=f"no value of {field!r} for {len(missing)} record(s), "
                    f"e.g. {missing[0]!r}",
                )
            )
            continue
        failed = 0
        for rid in record_ids:
            rec = result.records[rid]
            if not OPS[gate.op](rec.values[field], gate.value):
                failed += 1
                reasons = [f.message for f in rec.findings[:MAX_REASONS_PER_GATE]] or [
                    f"{gate.field} = {rec.values[field]} (needs {gate.op} {gate.value:g})"
                ]
                failures.setdefault(rid, []).append((gate.id, reasons))
        out.append(
            RecordGateResult(**base, failed=failed, evaluated=len(record_ids), outcome="applied")
        )
    return tuple(out), failures
