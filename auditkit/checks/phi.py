"""The ``phi`` check: protected health information in synthetic reports, and source reuse.

Every synthetic report goes through one detector (:mod:`auditkit.phi.engine`): Presidio's
AnalyzerEngine on a local spaCy model, with the clinical recognizers of ``rules/phi/``
(YAML where a pattern and context words suffice, code where a checksum, a calendar or
part-of-speech tags are needed), an allow-list of what is not PHI in mental-health notes
(eponyms, instruments, drugs and doses, scores, codes, bare years, states), and overlap
merging. Each span keeps the recognizer that fired and its score.
Spans already found in a text by the same detector come from the on-disk scan cache
(:mod:`auditkit.phi.cache`; ``AUDITKIT_NO_CACHE=1`` turns it off), so a corpus scanned
before is not scanned again and a fully cached run never loads spaCy or Presidio.

When a source corpus is given, the same detector runs over it and every value is indexed
as a keyed hash of its normalised form (:mod:`auditkit.phi.reuse`, which documents the
rarity rule: strong identifiers are reuse whenever they occur in the source; a single
name word or another weak value only when it occurs in at most ``rare_max_df`` source
records). A synthetic report that repeats an identifier of a real patient is the worst
finding this check can make.

Raw values never leave this module: evidence and findings show ``[TYPE#hash]`` tokens
from the run's Masker, with record ids, offsets, recognizer and score.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from auditkit.checks.base import Check, CheckConfig, CheckContext, MetricSpec
from auditkit.corpus import Record
from auditkit.phi.rules import CATEGORIES
from auditkit.phi.spans import PhiSpan
from auditkit.results import CheckResult, Direction, Evidence, Finding, Metric
from auditkit.results import RecordResult as RR

LOWER = Direction.LOWER_IS_SAFER
NEUTRAL = Direction.NEUTRAL


class PhiConfig(CheckConfig):
    """Settings of the phi check (policy key ``checks.phi``)."""

    model: str | None = Field(
        default=None,
        description="spaCy model package or folder; default: the best English model installed",
    )
    rules_dir: str | None = Field(
        default=None, description="a rules/phi folder replacing the shipped recognizers"
    )
    score_threshold: float = Field(default=0.4, ge=0, le=1)
    rare_max_df: int = Field(
        default=1,
        ge=0,
        description="a weak value (single name word, city, partial date...) is source reuse "
        "only when at most this many source records contain it",
    )
    batch_size: int = Field(default=64, ge=1, le=4096)
    max_findings_per_record: int = Field(default=50, ge=1)
    max_evidence: int = Field(default=25, ge=0)


@dataclass(frozen=True)
class RecordScan:
    """The PHI spans of one record (offsets into its text; no values)."""

    id: str
    spans: tuple[PhiSpan, ...]

    def to_json(self) -> dict[str, Any]:
        """One line of ``auditkit phi`` output."""
        return {"id": self.id, "spans": [s.to_json() for s in self.spans]}


def _metric(name: str, value: Any, direction: Direction, description: str, **kw: Any) -> Metric:
    return Metric(name=name, value=value, direction=direction, description=description, **kw)


class PhiCheck(Check):
    """Protected health information in synthetic text, and reuse of real identifiers."""

    id = "phi"
    title = "Protected health information"
    summary = (
        "Finds PHI (HIPAA Safe Harbor identifiers) in every synthetic report and flags any "
        "identifier repeated from a real patient's report in the source corpus."
    )
    Config = PhiConfig
    requires = ("synthetic",)
    metrics: ClassVar[Mapping[str, MetricSpec]] = {
        "records": MetricSpec(NEUTRAL, "synthetic reports scanned", low=0),
        "records_with_phi": MetricSpec(LOWER, "reports with at least one PHI span", low=0),
        "phi_record_rate": MetricSpec(LOWER, "share of reports with PHI", low=0, high=1),
        "spans": MetricSpec(
            LOWER, "PHI spans found (per category in groups)", per_group=True, low=0
        ),
        "source_reuse_records": MetricSpec(
            LOWER, "reports repeating a PHI value of a real source report", low=0
        ),
        "severe_reuse_records": MetricSpec(
            LOWER,
            "reports repeating a real full name, MRN, SSN, phone/fax or date of birth",
            low=0,
        ),
        "source_reuse_spans": MetricSpec(
            LOWER,
            "PHI spans repeated from the source (per category in groups)",
            per_group=True,
            low=0,
        ),
    }
    record_fields: ClassVar[Mapping[str, str]] = {
        "spans": "PHI spans in the report",
        "source_reuse": "PHI spans repeated from a real source report",
        "severe_reuse": "severe source reuse: full name, MRN, SSN, phone/fax, date of birth",
    }

    def __init__(self, config: CheckConfig | None = None) -> None:
        super().__init__(config)
        self._model: str | None = None

    # -- the engine ------------------------------------------------------------------

    def engine_spec(self) -> Any:
        """The engine specification for this configuration (resolves the model)."""
        from auditkit.phi.engine import EngineSpec, resolve_model

        cfg: PhiConfig = self.config  # type: ignore[assignment]
        self._model = resolve_model(cfg.model)
        return EngineSpec(
            model=self._model, rules_dir=cfg.rules_dir, score_threshold=cfg.score_threshold
        )

    def models(self) -> list[dict[str, Any]]:
        """The spaCy model of the last run: name, version, sha256 of its files, path."""
        if self._model is None:
            return []
        from auditkit.phi.engine import model_info

        return [model_info(self._model).as_manifest()]

    def _detect(
        self, context: CheckContext, records: Sequence[Record], role: str, spec: Any
    ) -> Iterator[tuple[Record, list[PhiSpan]]]:
        """Spans of every record, in order: from the scan cache, else through the executor.

        Cached texts are looked up before any job is sent, so a fully cached corpus never
        builds an engine (spaCy and Presidio are not even imported).
        """
        from auditkit.phi.cache import open_cache

        cfg: PhiConfig = self.config  # type: ignore[assignment]
        texts = [r.text for r in records]
        cache = open_cache(spec)
        try:
            known = cache.get_many(texts) if cache else {}
            missing = [i for i in range(len(records)) if i not in known]
            with context.progress.bar(f"phi: scanning {role}", len(records)) as bar:
                bar.update(len(known))
                if missing:
                    from auditkit.phi.engine import analyze_batch

                    n = cfg.batch_size
                    chunks = [missing[i : i + n] for i in range(0, len(missing), n)]
                    jobs = [(spec, [texts[i] for i in chunk]) for chunk in chunks]
                    results = context.executor.map(analyze_batch, jobs)
                    for chunk, spans in zip(chunks, results, strict=True):
                        if cache:
                            cache.put_many([texts[i] for i in chunk], spans)
                        known.update(zip(chunk, spans, strict=True))
                        bar.update(len(chunk))
        finally:
            if cache:
                cache.close()
        for i, record in enumerate(records):
            yield record, known[i]

    def scan(self, context: CheckContext) -> list[RecordScan]:
        """Detect PHI in every synthetic record and mark spans repeated from the source."""
        from auditkit.phi.reuse import SourceIndex

        cfg: PhiConfig = self.config  # type: ignore[assignment]
        spec = self.engine_spec()
        index = None
        if context.source is not None:
            index = SourceIndex(context.masker.fingerprint)
            for record, spans in self._detect(context, list(context.source), "source", spec):
                index.add(record.id, record.text, spans)
        out = []
        for record, spans in self._detect(context, list(context.synthetic), "synthetic", spec):
            if index is not None:
                spans = [index.lookup(record.text, s, cfg.rare_max_df) for s in spans]
            out.append(RecordScan(record.id, tuple(spans)))
        return out

    # -- the result ------------------------------------------------------------------

    def run(self, context: CheckContext) -> CheckResult:
        """Scan, then summarise into metrics, per-record values and masked evidence."""
        cfg: PhiConfig = self.config  # type: ignore[assignment]
        scans = self.scan(context)
        texts = {r.id: r.text for r in context.synthetic}
        has_source = context.source is not None
        records: dict[str, RR] = {}
        per_category: Counter[str] = Counter()
        reuse_per_category: Counter[str] = Counter()
        with_phi = reuse_records = severe_records = 0
        for scan in scans:
            text = texts[scan.id]
            reused = [s for s in scan.spans if s.in_source]
            severe = [s for s in reused if s.severe]
            per_category.update(s.type for s in scan.spans)
            reuse_per_category.update(s.type for s in reused)
            with_phi += bool(scan.spans)
            reuse_records += bool(reused)
            severe_records += bool(severe)
            ordered = sorted(scan.spans, key=lambda s: (not s.severe, not s.in_source, s.start))
            findings = tuple(
                self._finding(context, text, s) for s in ordered[: cfg.max_findings_per_record]
            )
            records[scan.id] = RR(
                values={
                    "spans": len(scan.spans),
                    "source_reuse": len(reused),
                    "severe_reuse": len(severe),
                },
                findings=findings,
            )
        n = len(scans)
        spec = self.metrics
        metrics = [
            _metric("records", n, NEUTRAL, spec["records"].description, low=0),
            _metric(
                "records_with_phi", with_phi, LOWER, spec["records_with_phi"].description, low=0
            ),
            _metric(
                "phi_record_rate",
                with_phi / n if n else None,
                LOWER,
                spec["phi_record_rate"].description,
                low=0,
                high=1,
            ),
            _metric("spans", sum(per_category.values()), LOWER, spec["spans"].description, low=0),
        ]
        for category in CATEGORIES:
            metrics.append(
                _metric(
                    "spans",
                    per_category[category],
                    LOWER,
                    f"{category} spans found",
                    group=category,
                    low=0,
                )
            )
        reuse_value = lambda v: v if has_source else None  # noqa: E731
        metrics += [
            _metric(
                "source_reuse_records",
                reuse_value(reuse_records),
                LOWER,
                spec["source_reuse_records"].description,
                low=0,
            ),
            _metric(
                "severe_reuse_records",
                reuse_value(severe_records),
                LOWER,
                spec["severe_reuse_records"].description,
                low=0,
            ),
            _metric(
                "source_reuse_spans",
                reuse_value(sum(reuse_per_category.values())),
                LOWER,
                spec["source_reuse_spans"].description,
                low=0,
            ),
        ]
        if has_source:
            for category in CATEGORIES:
                metrics.append(
                    _metric(
                        "source_reuse_spans",
                        reuse_per_category[category],
                        LOWER,
                        f"{category} spans repeated from the source",
                        group=category,
                        low=0,
                    )
                )
        return CheckResult(
            check=self.id,
            status="ok",
            reason=None if has_source else "no --source corpus: source reuse was not checked",
            config=cfg.model_dump(mode="json"),
            metrics=tuple(metrics),
            records=records,
            evidence=tuple(self._evidence(context, scans, texts, cfg.max_evidence)),
        )

    @staticmethod
    def _finding(context: CheckContext, text: str, s: PhiSpan) -> Finding:
        token = context.masker.token(text[s.start : s.end], s.type)
        message = f"{s.type} {token} at {s.start}-{s.end} ({s.recognizer}, score {s.score:.2f})"
        if s.in_source:
            kind = "phi_severe_source_reuse" if s.severe else "phi_source_reuse"
            message += f"; repeats source record(s) {', '.join(s.source_ids)}"
        else:
            kind = "phi"
        return Finding(
            kind=kind,
            message=message,
            rule=s.recognizer,
            score=s.score,
            start=s.start,
            end=s.end,
            related_id=s.source_ids[0] if s.source_ids else None,
        )

    @staticmethod
    def _evidence(
        context: CheckContext, scans: Sequence[RecordScan], texts: dict[str, str], limit: int
    ) -> list[Evidence]:
        """Severe reuse first, then other reuse, then the first span of each category."""
        picked: list[tuple[RecordScan, PhiSpan, str]] = []
        for scan in scans:
            for s in scan.spans:
                if s.severe:
                    picked.append((scan, s, "Severe source reuse"))
        for scan in scans:
            for s in scan.spans:
                if s.in_source and not s.severe:
                    picked.append((scan, s, "Source reuse"))
        seen: set[str] = set()
        for scan in scans:
            for s in scan.spans:
                if not s.in_source and s.type not in seen:
                    seen.add(s.type)
                    picked.append((scan, s, "PHI in synthetic text"))
        out = []
        for scan, s, kind in picked[:limit]:
            token = context.masker.token(texts[scan.id][s.start : s.end], s.type)
            detail = (
                f"record {scan.id}, characters {s.start}-{s.end}: "
                f"{s.recognizer} score {s.score:.2f}"
            )
            if s.in_source:
                detail += f"; the same value occurs in source record(s) {', '.join(s.source_ids)}"
            out.append(
                Evidence(
                    title=f"{kind}: {s.type}",
                    detail=detail,
                    record_id=scan.id,
                    related_id=s.source_ids[0] if s.source_ids else None,
                    excerpt=token,
                    rule=s.recognizer,
                    score=s.score,
                )
            )
        return out


def scan_files(
    synthetic: str,
    *,
    source: str | None = None,
    policy: str = "default",
    model: str | None = None,
    workers: int = 1,
    engine: str = "local",
    ray_address: str | None = None,
    fields: Any = None,
    max_record_bytes: int | None = None,
    progress: bool | None = False,
) -> list[RecordScan]:
    """Scan a corpus file for PHI (what ``auditkit phi`` prints), with optional source reuse.

    The configuration comes from the policy's ``checks.phi`` section when it has one;
    ``model`` overrides its model. Spans carry offsets, category, recognizer, score and
    ``in_source``, never values. A fresh random key hashes the source values of this scan.
    """
    import os

    from auditkit.executor import make_executor
    from auditkit.masking import Masker
    from auditkit.pipeline import load_inputs
    from auditkit.policy import load_policy
    from auditkit.progress import Progress
    from auditkit.resources import resolve_policy

    pol = load_policy(resolve_policy(policy))
    raw = dict(pol.checks.get("phi") or {})
    if model:
        raw["model"] = model
    check = PhiCheck(PhiCheck.configure(raw))
    executor = make_executor(engine, workers, ray_address=ray_address)
    inputs = load_inputs(synthetic, source, fields=fields, max_record_bytes=max_record_bytes)
    with executor:
        context = CheckContext(
            synthetic=inputs.synthetic,
            source=inputs.source,
            seed=0,
            executor=executor,
            masker=Masker(os.urandom(32)),
            progress=Progress(progress),
        )
        return check.scan(context)
