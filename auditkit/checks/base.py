"""The check contract.

A check has a stable ``id``, a frozen pydantic ``Config``, declares the metrics and
per-record fields it produces, and implements ``run(context) -> CheckResult``. Checks
compute; they never read policy thresholds, never decide pass/fail and never render.
Declaring metrics and record fields up front lets the policy be validated before any
check runs.
"""

from __future__ import annotations

import random
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from auditkit.results import CheckResult, Direction

if TYPE_CHECKING:
    import numpy as np

    from auditkit.corpus import Corpus
    from auditkit.executor import Executor
    from auditkit.masking import Masker
    from auditkit.progress import Progress


class CheckConfig(BaseModel):
    """Base of every check's configuration (set in the policy's ``checks:`` section)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class MetricSpec:
    """What a metric means, declared on the check class."""

    direction: Direction
    description: str
    per_group: bool = False
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class CheckContext:
    """What a check may use: the corpora, the seed, an executor, a masker, a generator."""

    synthetic: Corpus
    seed: int
    executor: Executor
    masker: Masker
    progress: Progress
    source: Corpus | None = None
    holdout: Corpus | None = None
    generator: Any | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def corpus(self, role: str) -> Corpus | None:
        """Return the corpus playing ``role``, or None if it was not given."""
        return {"synthetic": self.synthetic, "source": self.source, "holdout": self.holdout}[role]

    def random(self, purpose: str) -> random.Random:
        """A Python RNG derived from the run seed and a fixed purpose label.

        Separate purposes get independent streams, so adding a random draw in one place
        does not shift the numbers of another.
        """
        return random.Random(f"auditkit:{self.seed}:{purpose}")

    def numpy_rng(self, purpose: str) -> np.random.Generator:
        """A numpy Generator derived from the run seed and a fixed purpose label."""
        import numpy as np

        return np.random.default_rng([self.seed, zlib.crc32(purpose.encode())])


class Check(ABC):
    """Base class of every check. Subclasses set the class variables and ``run``."""

    id: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str]
    Config: ClassVar[type[CheckConfig]] = CheckConfig
    requires: ClassVar[tuple[str, ...]] = ("synthetic",)
    metrics: ClassVar[Mapping[str, MetricSpec]] = {}
    record_fields: ClassVar[Mapping[str, str]] = {}

    def __init__(self, config: CheckConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @classmethod
    def configure(cls, raw: Mapping[str, Any] | None) -> CheckConfig:
        """Validate a raw config mapping (from the policy) into the check's Config."""
        return cls.Config.model_validate(dict(raw or {}))

    def missing_inputs(self, context: CheckContext) -> str | None:
        """Return why the check cannot run with these corpora, or None if it can."""
        absent = [role for role in self.requires if context.corpus(role) is None]
        if absent:
            return (
                f"needs the {' and '.join(absent)} corpus ({', '.join('--' + a for a in absent)})"
            )
        return None

    def skipped(self, reason: str) -> CheckResult:
        """A result saying the check did not run, and why."""
        return CheckResult(
            check=self.id, status="skipped", reason=reason, config=self.config.model_dump()
        )

    def models(self) -> list[dict[str, Any]]:
        """Models this check used in its last run (name, version, sha256 of weights).

        The pipeline records them in manifest.json, so an auditor knows exactly which
        weights produced the numbers. Checks that use no model return an empty list.
        """
        return []

    @abstractmethod
    def run(self, context: CheckContext) -> CheckResult:
        """Compute the check's metrics, per-record results and evidence."""
