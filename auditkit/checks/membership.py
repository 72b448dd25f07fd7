"""The ``membership`` check: has the generator memorised the source corpus?

Members are the source records (the generator's fine-tuning data or prompt examples);
non-members are the holdout records (same distribution, never seen). The generator scores
both; if it scores members measurably better, it leaks, however clean its samples look.

* Five attacks (loss, zlib, Min-K%, Min-K%++, and a reference-model ratio when a reference
  model is given; see :mod:`auditkit.mia`), each with ROC AUC, a seeded stratified bootstrap
  95% interval and TPR at 1% and 5% FPR. The headline is the worst case (maximum) over the
  attacks, with Bonferroni-widened intervals because a maximum over several attacks is
  optimistic.
* A blind baseline: a model-free TF-IDF + logistic-regression classifier, cross-validated,
  that tries to tell members from non-members without the generator. When it can, the two
  sets differ in distribution and the probe is unreliable for this data. Its AUC is read
  against a permutation null (labels shuffled within codes, :func:`auditkit.mia.blind_null`):
  a holdout drawn with the same share of every code pushes a cross-validated AUC below
  0.5 with no difference in content, and the alarm uses the AUC adjusted for that.
* An extraction test: a seeded sample of members (and as many non-members, the control)
  is cut after ``prefix_tokens`` tokens; the generator greedily continues for
  ``continuation_tokens`` tokens. A member counts as **extracted verbatim** when the whole
  continuation is reproduced exactly *and* that continuation is the record's own: no other
  source record and no holdout record contains it (a template that a model which never
  saw the record would also write is not evidence of memorisation).

The check needs ``context.generator`` (``--generator SPEC``); the reference model comes
from ``context.options["reference"]``. It computes; the policy judges.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from auditkit import mia
from auditkit.checks.base import Check, CheckConfig, CheckContext, MetricSpec
from auditkit.corpus import Record
from auditkit.results import CheckResult, Curve, Direction, Evidence, Interval, Metric

HIGHER = Direction.HIGHER_IS_SAFER
LOWER = Direction.LOWER_IS_SAFER
NEUTRAL = Direction.NEUTRAL
SCORE_CHUNK = 32  # records per progress-bar step while scoring


class BlindView:
    """The blind baseline's statistics next to its permutation null (None: no shuffles)."""

    def __init__(self, stats: mia.AttackStats, null: mia.BlindNull) -> None:
        self.stats = stats
        self.null = null if null.aucs else None

    @property
    def null_mean(self) -> float | None:
        """Mean AUC under the shuffles, or None without a null."""
        return None if self.null is None else round(self.null.mean, 6)

    @property
    def adjusted(self) -> float:
        """0.5 + AUC - null mean (the raw AUC without a null), clipped to [0, 1]."""
        if self.null is None:
            return self.stats.auc
        return round(min(1.0, max(0.0, 0.5 + self.stats.auc - self.null.mean)), 6)

    @property
    def p_value(self) -> float | None:
        """Permutation p-value of the blind AUC, or None without a null."""
        return None if self.null is None else round(self.null.p_value(self.stats.auc), 6)

    @property
    def null_text(self) -> str:
        """The null for a sentence of evidence: mean and central 95% of the shuffles."""
        if self.null is None:
            return "0.5 (no permutation null)"
        lo, hi = np.quantile(self.null.aucs, [0.025, 0.975])
        return (
            f"{self.null.mean:.3f} [{lo:.3f}, {hi:.3f}] with labels shuffled within codes "
            f"({len(self.null.aucs)} shuffles)"
        )


class MembershipConfig(CheckConfig):
    """Settings of the membership check (policy key ``checks.membership``)."""

    sample: int = Field(
        default=1000, ge=10, description="largest number of members, and of non-members, scored"
    )
    min_k: float = Field(default=0.2, gt=0, le=1, description="k of Min-K% and Min-K%++")
    bootstrap: int = Field(default=1000, ge=100, le=100_000)
    level: float = Field(default=0.95, gt=0.5, lt=1)
    blind_folds: int = Field(default=5, ge=2, le=20)
    blind_permutations: int = Field(
        default=29,
        ge=0,
        le=999,
        description="label shuffles (within codes) for the blind baseline's null; 0: none",
    )
    blind_alarm_auc: float = Field(
        default=0.6,
        gt=0.5,
        le=1,
        description="adjusted blind-baseline AUC from which the probe is flagged unreliable",
    )
    absence_auc: float = Field(
        default=0.6,
        gt=0.5,
        le=1,
        description="AUC whose upper bound would demonstrate no signal (for records_needed)",
    )
    extraction_sample: int = Field(default=100, ge=0, description="members (and non-members)")
    prefix_tokens: int = Field(default=32, ge=1)
    continuation_tokens: int = Field(default=48, ge=1)
    curve_points: int = Field(default=50, ge=5, le=1000)


def _spec(
    direction: Direction, description: str, high: float | None = 1.0, **kw: Any
) -> MetricSpec:
    return MetricSpec(direction, description, low=0, high=high, **kw)


class MembershipCheck(Check):
    """Membership-inference probe and extraction test on the generator."""

    id = "membership"
    title = "Membership inference on the generator"
    summary = (
        "Does the generator score its training reports (source) measurably better than "
        "unseen reports of the same kind (holdout), or reproduce them verbatim?"
    )
    Config = MembershipConfig
    requires = ("source", "holdout")
    metrics: ClassVar[dict[str, MetricSpec]] = {
        "worst_auc": _spec(
            LOWER, "highest ROC AUC over the attacks (0.5 = no signal), simultaneous interval"
        ),
        "worst_auc_ci_low": _spec(
            LOWER, "lower bound of the worst attack's Bonferroni-widened interval"
        ),
        "worst_auc_ci_high": _spec(
            LOWER, "upper bound of the worst attack's Bonferroni-widened interval"
        ),
        "attacks": _spec(NEUTRAL, "attacks the worst case is taken over", high=None),
        "auc": _spec(LOWER, "ROC AUC of one attack (group = attack)", per_group=True),
        "tpr_at_1fpr": _spec(LOWER, "true-positive rate at 1% false positives", per_group=True),
        "tpr_at_5fpr": _spec(LOWER, "true-positive rate at 5% false positives", per_group=True),
        "blind_auc": _spec(
            LOWER, "ROC AUC of the model-free blind baseline (high = probe unreliable)"
        ),
        "blind_null_auc": _spec(
            NEUTRAL, "mean blind-baseline AUC with member labels shuffled within codes"
        ),
        "blind_auc_adjusted": _spec(
            LOWER, "0.5 + blind AUC - its null mean: the blind AUC read against the null"
        ),
        "blind_p_value": _spec(
            NEUTRAL, "permutation p-value of the blind AUC (small = members differ)"
        ),
        "probe_unreliable": _spec(
            LOWER, "1 when the adjusted blind AUC reaches blind_alarm_auc, else 0"
        ),
        "extraction_member_exact_rate": _spec(
            LOWER, "share of sampled members whose continuation is reproduced exactly"
        ),
        "extraction_nonmember_exact_rate": _spec(NEUTRAL, "the same on non-members (the control)"),
        "extraction_member_prefix_tokens": _spec(
            LOWER, "mean matched prefix of member continuations, tokens", high=None
        ),
        "extraction_nonmember_prefix_tokens": _spec(
            NEUTRAL, "mean matched prefix of non-member continuations, tokens", high=None
        ),
        "extracted_records": _spec(
            LOWER,
            "members extracted verbatim (exact continuation found in no other source or "
            "holdout record)",
            high=None,
        ),
        "members": _spec(NEUTRAL, "members scored", high=None),
        "nonmembers": _spec(NEUTRAL, "non-members scored", high=None),
        "records_needed": _spec(
            NEUTRAL,
            "records needed for the worst upper bound to fall below absence_auc",
            high=None,
        ),
    }

    def __init__(self, config: CheckConfig | None = None) -> None:
        super().__init__(config)
        self._models: list[dict[str, Any]] = []

    def models(self) -> list[dict[str, Any]]:
        """The generator (and reference model) the last run scored with."""
        return list(self._models)

    def missing_inputs(self, context: CheckContext) -> str | None:
        """Needs the source and holdout corpora and a generator."""
        missing = super().missing_inputs(context)
        if missing:
            return missing
        if context.generator is None:
            return "needs a generator to probe (--generator SPEC)"
        return None

    # -- the run -------------------------------------------------------------------------

    def run(self, context: CheckContext) -> CheckResult:
        """Score members and non-members, run the attacks, the blind baseline, extraction."""
        cfg: MembershipConfig = self.config  # type: ignore[assignment]
        generator = context.generator
        reference = context.options.get("reference")
        assert context.source is not None and context.holdout is not None
        self._models = [{**generator.describe(), "role": "generator"}]
        if reference is not None:
            self._models.append({**reference.describe(), "role": "reference"})
        rng = context.random("membership:sample")
        members = self._sample(context.source.records, cfg.sample, rng)
        nonmembers = self._sample(context.holdout.records, cfg.sample, rng)

        m_scores = self._score(context, generator, members, "members")
        n_scores = self._score(context, generator, nonmembers, "non-members")
        m_ref = n_ref = None
        if reference is not None:
            m_ref = self._score(context, reference, members, "members (reference)")
            n_ref = self._score(context, reference, nonmembers, "non-members (reference)")
        m_attack = self._attack_scores(members, m_scores, m_ref, cfg.min_k)
        n_attack = self._attack_scores(nonmembers, n_scores, n_ref, cfg.min_k)
        names = [a for a in mia.ATTACKS if all(a in s for s in m_attack + n_attack)]
        arrays = {
            a: (np.array([s[a] for s in m_attack]), np.array([s[a] for s in n_attack]))
            for a in names
        }
        stats = mia.attack_stats(
            arrays,
            context.numpy_rng("membership:bootstrap"),
            cfg.bootstrap,
            cfg.level,
            cfg.curve_points,
        )
        worst_name, worst_auc, (worst_lo, worst_hi) = mia.worst_case(stats)

        blind_seed = context.random("membership:blind").randrange(2**31)
        blind, null = mia.blind_test(
            [r.text for r in members],
            [r.text for r in nonmembers],
            [r.primary_code for r in members] + [r.primary_code for r in nonmembers],
            blind_seed,
            cfg.blind_folds,
            cfg.blind_permutations,
        )
        blind_stats = mia.attack_stats(
            {"blind": (blind[: len(members)], blind[len(members) :])},
            context.numpy_rng("membership:blind-bootstrap"),
            cfg.bootstrap,
            cfg.level,
            cfg.curve_points,
        )["blind"]
        blind_view = BlindView(blind_stats, null)

        extraction = self._extraction(
            context,
            generator,
            members,
            m_scores,
            nonmembers,
            n_scores,
            context.holdout.records,
            context.source.records,
        )
        total = len(members) + len(nonmembers)
        needed = mia.records_needed(worst_auc, worst_hi, total, cfg.absence_auc)
        metrics = self._metrics(
            cfg, stats, worst_auc, (worst_lo, worst_hi), blind_view, extraction, needed
        )
        metrics += [
            self._metric("members", len(members)),
            self._metric("nonmembers", len(nonmembers)),
        ]
        curves = [
            Curve(
                name=f"roc:{a}",
                label=f"{a} (AUC {stats[a].auc:.3f})",
                x="false-positive rate",
                y="true-positive rate",
                points=tuple(stats[a].curve),
            )
            for a in names
        ] + [
            Curve(
                name="roc:blind",
                label=f"blind baseline, no model (AUC {blind_stats.auc:.3f})",
                x="false-positive rate",
                y="true-positive rate",
                points=tuple(blind_stats.curve),
            )
        ]
        evidence = self._evidence(
            cfg, stats, worst_name, worst_auc, (worst_lo, worst_hi), blind_view, extraction
        )
        notes = []
        if "min_k_pp" not in names:
            notes.append("Min-K%++ not run: the backend does not expose the full distribution")
        if "reference" not in names:
            notes.append("no reference-model attack (give --reference SPEC)")
        return CheckResult(
            check=self.id,
            status="ok",
            reason="; ".join(notes) or None,
            config=cfg.model_dump(mode="json"),
            metrics=tuple(metrics),
            evidence=tuple(evidence),
            curves=tuple(curves),
        )

    @staticmethod
    def _sample(records: Sequence[Record], n: int, rng: Any) -> list[Record]:
        if len(records) <= n:
            return list(records)
        keep = sorted(rng.sample(range(len(records)), n))
        return [records[i] for i in keep]

    @staticmethod
    def _score(
        context: CheckContext, generator: Any, records: Sequence[Record], label: str
    ) -> list[Any]:
        out: list[Any] = []
        with context.progress.bar(f"membership: scoring {label}", len(records)) as bar:
            for start in range(0, len(records), SCORE_CHUNK):
                chunk = records[start : start + SCORE_CHUNK]
                scores = generator.score([r.text for r in chunk])
                for record, s in zip(chunk, scores, strict=True):
                    if not len(s):
                        from auditkit.errors import CheckError

                        raise CheckError(
                            f"membership: record {record.id!r} has no scorable token "
                            f"for generator {generator.spec!r}",
                            hint="remove empty records from the source/holdout corpus",
                        )
                out.extend(scores)
                bar.update(len(chunk))
        return out

    @staticmethod
    def _attack_scores(
        records: Sequence[Record], scores: Sequence[Any], ref: Sequence[Any] | None, k: float
    ) -> list[dict[str, float]]:
        return [
            mia.member_scores(
                r.text,
                s.logprobs,
                s.mean,
                s.std,
                k,
                reference_logprobs=ref[i].logprobs if ref is not None else None,
            )
            for i, (r, s) in enumerate(zip(records, scores, strict=True))
        ]

    def _extraction(
        self,
        context: CheckContext,
        generator: Any,
        members: Sequence[Record],
        m_scores: Sequence[Any],
        nonmembers: Sequence[Record],
        n_scores: Sequence[Any],
        holdout: Sequence[Record],
        source: Sequence[Record],
    ) -> dict[str, Any]:
        from auditkit.generators import GenerationParams

        cfg: MembershipConfig = self.config  # type: ignore[assignment]
        rng = context.random("membership:extraction")
        params = GenerationParams(max_tokens=cfg.continuation_tokens, temperature=0.0)
        out: dict[str, Any] = {}
        for side, records, scores in (
            ("member", members, m_scores),
            ("nonmember", nonmembers, n_scores),
        ):
            cases = []
            for r, s in zip(records, scores, strict=True):
                case = mia.extraction_case(
                    r.id, s.offsets, cfg.prefix_tokens, cfg.continuation_tokens
                )
                if case is not None:
                    cases.append((r, case))
            if len(cases) > cfg.extraction_sample:
                keep = sorted(rng.sample(range(len(cases)), cfg.extraction_sample))
                cases = [cases[i] for i in keep]
            generated = (
                generator.generate([r.text[: c.prompt_end] for r, c in cases], params)
                if cases
                else []
            )
            matched = [
                mia.matched_tokens(c, r.text, g) for (r, c), g in zip(cases, generated, strict=True)
            ]
            exact = [
                (r, c) for (r, c), m in zip(cases, matched, strict=True) if m == len(c.token_ends)
            ]
            out[side] = {
                "n": len(cases),
                "exact": len(exact),
                "exact_rate": len(exact) / len(cases) if cases else None,
                "prefix_mean": float(np.mean(matched)) if cases else None,
                "exact_cases": exact,
            }
        # Extracted verbatim: an exact member continuation that is the record's own, i.e.
        # no other source record and no holdout record contains it (shared passages are
        # templates that a model writes without having memorised anyone).
        extracted = []
        for r, c in out["member"]["exact_cases"]:
            passage = r.text[c.prompt_end : c.continuation_end]
            shared = any(passage in h.text for h in holdout) or any(
                passage in o.text for o in source if o.id != r.id
            )
            if not shared:
                extracted.append((r, c))
        out["extracted"] = extracted
        return out

    def _metric(self, name: str, value: Any, **kw: Any) -> Metric:
        spec = self.metrics[name]
        return Metric(
            name=name,
            value=value,
            direction=spec.direction,
            description=spec.description,
            low=spec.low,
            high=spec.high,
            **kw,
        )

    def _metrics(
        self,
        cfg: MembershipConfig,
        stats: dict[str, mia.AttackStats],
        worst_auc: float,
        worst_ci: tuple[float, float],
        blind: BlindView,
        extraction: dict[str, Any],
        needed: int | None,
    ) -> list[Metric]:
        wide = f"bootstrap, Bonferroni-widened over {len(stats)} attacks"
        out = [
            self._metric(
                "worst_auc",
                worst_auc,
                interval=Interval(low=worst_ci[0], high=worst_ci[1], level=cfg.level, method=wide),
            ),
            self._metric("worst_auc_ci_low", worst_ci[0]),
            self._metric("worst_auc_ci_high", worst_ci[1]),
            self._metric("attacks", len(stats)),
        ]
        for name, s in stats.items():
            interval = Interval(low=s.ci[0], high=s.ci[1], level=cfg.level, method="bootstrap")
            out.append(self._metric("auc", s.auc, group=name, interval=interval))
            out.append(self._metric("tpr_at_1fpr", s.tpr_at_1fpr, group=name))
            out.append(self._metric("tpr_at_5fpr", s.tpr_at_5fpr, group=name))
        out += [
            self._metric(
                "blind_auc",
                blind.stats.auc,
                interval=Interval(
                    low=blind.stats.ci[0],
                    high=blind.stats.ci[1],
                    level=cfg.level,
                    method="bootstrap",
                ),
            ),
            self._metric("blind_null_auc", blind.null_mean),
            self._metric("blind_auc_adjusted", blind.adjusted),
            self._metric("blind_p_value", blind.p_value),
            self._metric("probe_unreliable", int(blind.adjusted >= cfg.blind_alarm_auc)),
            self._metric("extraction_member_exact_rate", extraction["member"]["exact_rate"]),
            self._metric("extraction_nonmember_exact_rate", extraction["nonmember"]["exact_rate"]),
            self._metric("extraction_member_prefix_tokens", extraction["member"]["prefix_mean"]),
            self._metric(
                "extraction_nonmember_prefix_tokens", extraction["nonmember"]["prefix_mean"]
            ),
            self._metric("extracted_records", len(extraction["extracted"])),
            self._metric("records_needed", needed),
        ]
        return out

    @staticmethod
    def _evidence(
        cfg: MembershipConfig,
        stats: dict[str, mia.AttackStats],
        worst_name: str,
        worst_auc: float,
        worst_ci: tuple[float, float],
        blind: BlindView,
        extraction: dict[str, Any],
    ) -> list[Evidence]:
        out = []
        b = blind.stats
        if blind.adjusted >= cfg.blind_alarm_auc:
            out.append(
                Evidence(
                    title="Probe unreliable for this data: members and non-members differ",
                    detail=f"a classifier that never sees the generator tells them apart with "
                    f"AUC {b.auc:.3f} [{b.ci[0]:.3f}, {b.ci[1]:.3f}] against "
                    f"{blind.null_text}; the attacks' AUCs partly measure that difference, "
                    "not memorisation",
                    rule="blind-baseline",
                    score=blind.adjusted,
                )
            )
        elif blind.null is not None and abs(b.auc - 0.5) >= 0.1:
            out.append(
                Evidence(
                    title="Blind baseline read against its permutation null",
                    detail=f"blind AUC {b.auc:.3f} against {blind.null_text} (adjusted "
                    f"{blind.adjusted:.3f}, below the alarm at {cfg.blind_alarm_auc}): the "
                    "distance from 0.5 comes from how the holdout was drawn (e.g. the same "
                    "share of every code as the source), not from a difference in content",
                    rule="blind-baseline",
                    score=blind.adjusted,
                )
            )
        out.append(
            Evidence(
                title=f"Worst case over {len(stats)} attacks: {worst_name}",
                detail=f"AUC {worst_auc:.3f}; simultaneous {cfg.level:.0%} interval of the "
                f"maximum [{worst_ci[0]:.3f}, {worst_ci[1]:.3f}] (Bonferroni over "
                f"{len(stats)} attacks); TPR at 1% FPR {stats[worst_name].tpr_at_1fpr:.3f}",
                rule=f"attack:{worst_name}",
                score=worst_auc,
            )
        )
        for r, c in extraction["extracted"][:10]:
            out.append(
                Evidence(
                    title="Member continuation extracted verbatim",
                    detail=f"prompted with its first {cfg.prefix_tokens} tokens, the generator "
                    f"reproduced the next {len(c.token_ends)} tokens exactly (characters "
                    f"{c.prompt_end}-{c.continuation_end}); no other source or holdout record "
                    "contains them",
                    record_id=r.id,
                    rule="extraction",
                    score=float(len(c.token_ends)),
                )
            )
        return out


def probe_summary(result: CheckResult) -> dict[str, Any]:
    """The ``auditkit mia`` JSON: attacks, worst case, blind baseline, extraction, ROC points.

    ``roc`` maps each attack (and ``blind``) to its downsampled ROC curve as
    ``[[fpr, tpr], ...]`` pairs from (0, 0) to (1, 1).
    """

    def value(key: str) -> Any:
        m = result.metric(key)
        return None if m is None else m.value

    def interval(key: str) -> list[float] | None:
        m = result.metric(key)
        return None if m is None or m.interval is None else [m.interval.low, m.interval.high]

    attacks = {
        m.group: {
            "auc": m.value,
            "auc_ci": interval(f"auc[{m.group}]"),
            "tpr_at_1fpr": value(f"tpr_at_1fpr[{m.group}]"),
            "tpr_at_5fpr": value(f"tpr_at_5fpr[{m.group}]"),
        }
        for m in result.metrics
        if m.name == "auc" and m.group is not None
    }
    worst = max(attacks, key=lambda a: (attacks[a]["auc"], a)) if attacks else None
    return {
        "attacks": attacks,
        "worst_attack": worst,
        "worst_auc": value("worst_auc"),
        "worst_auc_ci": interval("worst_auc"),
        "worst_auc_ci_method": "bootstrap percentile, Bonferroni-widened over the attacks",
        "blind_auc": value("blind_auc"),
        "blind_auc_ci": interval("blind_auc"),
        "blind_null_auc": value("blind_null_auc"),
        "blind_auc_adjusted": value("blind_auc_adjusted"),
        "blind_p_value": value("blind_p_value"),
        "probe_unreliable": bool(value("probe_unreliable")),
        "extraction": {
            "member_exact_rate": value("extraction_member_exact_rate"),
            "nonmember_exact_rate": value("extraction_nonmember_exact_rate"),
            "member_prefix_tokens": value("extraction_member_prefix_tokens"),
            "nonmember_prefix_tokens": value("extraction_nonmember_prefix_tokens"),
            "extracted_records": value("extracted_records"),
            "prefix_tokens": result.config.get("prefix_tokens"),
            "continuation_tokens": result.config.get("continuation_tokens"),
        },
        "n_members": value("members"),
        "n_nonmembers": value("nonmembers"),
        "records_needed": value("records_needed"),
        "roc": {
            c.name.removeprefix("roc:"): [list(p) for p in c.points]
            for c in result.curves
            if c.name.startswith("roc:")
        },
        "notes": result.reason,
    }
