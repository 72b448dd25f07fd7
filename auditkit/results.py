"""Typed, frozen results and their canonical JSON form.

Owns the data that flows from checks to the policy, the bundle and the report. Every
object here is a frozen pydantic model, so a typo in a field name is an error, not a
silently missing number. :func:`canonical_json` is the one serialisation of results: sorted
keys, floats at a fixed precision, so the same audit always gives the same bytes.

Nothing here computes a metric or decides pass/fail.
"""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

#: Significant digits kept for every float in results.json. Enough for any metric we
#: report; few enough that last-bit differences between BLAS builds do not change bytes.
FLOAT_DIGITS = 6


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


#: A float that JSON can carry: NaN and infinities are refused where they are built.
Finite = Annotated[float, AfterValidator(_finite)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Direction(str, Enum):
    """Which way a metric moves when the data gets safer (or better)."""

    HIGHER_IS_SAFER = "higher"
    LOWER_IS_SAFER = "lower"
    NEUTRAL = "none"


class Interval(_Frozen):
    """A confidence interval around an estimate."""

    low: Finite
    high: Finite
    level: Finite = 0.95
    method: str = "bootstrap"


class Metric(_Frozen):
    """A named value a check measured. ``group`` is None for the whole corpus, else e.g. a code."""

    name: str
    value: float | int | None
    direction: Direction
    description: str = ""
    group: str | None = None
    interval: Interval | None = None
    unit: str | None = None
    low: float | None = Field(default=None, description="smallest possible value, if bounded")
    high: float | None = Field(default=None, description="largest possible value, if bounded")

    @field_validator("value", mode="after")
    @classmethod
    def _nan_is_absent(cls, v: float | int | None) -> float | int | None:
        # A metric that could not be computed is absent, not NaN (JSON has no NaN).
        return None if isinstance(v, float) and not math.isfinite(v) else v

    @property
    def key(self) -> str:
        """The name a policy uses for this metric, e.g. ``distinct_2`` or ``distinct_2[F32.1]``."""
        return self.name if self.group is None else f"{self.name}[{self.group}]"


class Finding(_Frozen):
    """Why one record was flagged: what fired, how strongly, and where (masked, never raw)."""

    kind: str
    message: str
    rule: str | None = None
    score: float | None = None
    start: int | None = None
    end: int | None = None
    related_id: str | None = None


class RecordResult(_Frozen):
    """A check's per-record values (what record gates read) and findings."""

    values: dict[str, bool | int | Finite] = Field(default_factory=dict)
    findings: tuple[Finding, ...] = ()


class Evidence(_Frozen):
    """An item a human should look at. ``excerpt`` is always masked."""

    title: str
    detail: str
    record_id: str | None = None
    related_id: str | None = None
    excerpt: str | None = None
    rule: str | None = None
    score: float | None = None


class Curve(_Frozen):
    """A curve a chart can draw, e.g. one attack's ROC curve (points sorted by ``x``).

    ``name`` identifies the series within the check (``roc:loss``); ``points`` are
    ``(x, y)`` pairs already downsampled to what a chart needs.
    """

    name: str
    label: str
    x: str
    y: str
    points: tuple[tuple[Finite, Finite], ...]


class Table(_Frozen):
    """A labelled matrix a check computed, e.g. a confusion matrix or per-code shares.

    ``values[i][j]`` is the cell of row ``rows[i]`` and column ``columns[j]``; a cell
    that could not be computed is None. Reports and charts read tables as they are;
    policies gate on metrics, never on tables.
    """

    description: str = ""
    row_label: str = ""
    column_label: str = ""
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    values: tuple[tuple[Finite | int | None, ...], ...]

    @field_validator("values", mode="after")
    @classmethod
    def _rectangular(cls, v: tuple[tuple[Any, ...], ...], info: Any) -> Any:
        rows, columns = info.data.get("rows", ()), info.data.get("columns", ())
        if len(v) != len(rows) or any(len(r) != len(columns) for r in v):
            raise ValueError(f"values must be {len(rows)} rows of {len(columns)} cells")
        return v

    def cell(self, row: str, column: str) -> float | int | None:
        """The value at ``row``, ``column`` (KeyError if either label is absent)."""
        try:
            return self.values[self.rows.index(row)][self.columns.index(column)]
        except ValueError:
            raise KeyError((row, column)) from None


CheckStatus = Literal["ok", "skipped", "error"]


class CheckResult(_Frozen):
    """Everything one check computed. ``reason`` explains a skip or an error."""

    check: str
    status: CheckStatus
    reason: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    metrics: tuple[Metric, ...] = ()
    records: dict[str, RecordResult] = Field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
    curves: tuple[Curve, ...] = ()
    #: Named numeric series the report draws (per-record distances of a reference corpus,
    #: ROC points, matrix rows); never text. Not judged by the policy.
    series: dict[str, tuple[Finite, ...]] = Field(default_factory=dict)
    tables: dict[str, Table] = Field(default_factory=dict)

    def metric(self, key: str) -> Metric | None:
        """Return the metric with this key (``name`` or ``name[group]``), or None."""
        for m in self.metrics:
            if m.key == key:
                return m
        return None

    def groups(self) -> list[str]:
        """The metric groups (e.g. ICD-10 codes) present, sorted."""
        return sorted({m.group for m in self.metrics if m.group is not None})


GateOutcome = Literal["pass", "fail", "warn", "skipped", "error"]


class GateResult(_Frozen):
    """One dataset-level gate evaluated against one metric."""

    id: str
    metric: str
    op: str
    threshold: float
    severity: Literal["block", "warn"]
    outcome: GateOutcome
    value: float | int | None = None
    interval: Interval | None = None
    why: str = ""
    reason: str | None = None


class RecordGateResult(_Frozen):
    """One record gate: how many records it quarantined."""

    id: str
    field: str
    op: str
    threshold: float
    why: str = ""
    failed: int
    evaluated: int
    outcome: Literal["applied", "skipped", "error"]
    reason: str | None = None


class RecordDecision(_Frozen):
    """Where one synthetic record goes: release or quarantine, and why."""

    id: str
    released: bool
    gates: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


VerdictOutcome = Literal["pass", "pass_with_warnings", "fail", "error"]


class Verdict(_Frozen):
    """The policy's judgement of a set of check results."""

    outcome: VerdictOutcome
    exit_code: int
    summary: str
    gates: tuple[GateResult, ...]
    record_gates: tuple[RecordGateResult, ...]
    decisions: tuple[RecordDecision, ...]

    @property
    def released(self) -> int:
        """How many records passed every record gate."""
        return sum(d.released for d in self.decisions)

    @property
    def quarantined(self) -> int:
        """How many records failed at least one record gate."""
        return len(self.decisions) - self.released


class InputSummary(_Frozen):
    """A corpus as the audit saw it: where it came from, its digest, its shape."""

    role: str
    path: str
    format: str
    sha256: str
    records: int
    codes: dict[str, int] = Field(default_factory=dict)


class PolicyRef(_Frozen):
    """Which policy judged the run."""

    name: str
    path: str
    sha256: str


class AuditRun(_Frozen):
    """One complete audit: inputs, check results and verdict. This is results.json."""

    schema_version: int = 1
    tool: str = "auditkit"
    version: str
    seed: int
    policy: PolicyRef
    inputs: tuple[InputSummary, ...]
    checks: tuple[CheckResult, ...]
    verdict: Verdict

    def check(self, check_id: str) -> CheckResult | None:
        """Return the result of one check, or None when it did not run."""
        for c in self.checks:
            if c.check == check_id:
                return c
        return None


def _round_floats(obj: Any) -> Any:
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        rounded = float(f"{obj:.{FLOAT_DIGITS}g}")
        return 0.0 if rounded == 0 else rounded
    if isinstance(obj, dict):
        return {k: _round_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v) for v in obj]
    return obj


def canonical_json(obj: BaseModel | dict[str, Any] | list[Any]) -> str:
    """Serialise to canonical JSON: sorted keys, fixed float precision, trailing newline.

    Non-finite floats become ``null``: JSON has no NaN, and a metric that could not be
    computed is absent, not a number.
    """
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    return (
        json.dumps(
            _round_floats(data), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False
        )
        + "\n"
    )


def load_run(text: str) -> AuditRun:
    """Parse results.json back into an :class:`AuditRun`."""
    return AuditRun.model_validate_json(text)
