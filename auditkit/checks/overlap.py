"""The ``overlap`` check: passages copied, or copied with small edits, from the source.

For every synthetic record: the longest common word span with any source record, the
fraction of its 8-grams found in the source, and every exact or near copy of a passage
(see :mod:`auditkit.overlap_match` for the algorithm), with boilerplate (phrases found in
at least ``boilerplate_k`` distinct source records) discounted rather than flagged.

Then the calibrated distance-to-closest-record test: each synthetic record's similarity
to its nearest source record (word 4-gram Jaccard, and cosine of all-MiniLM-L6-v2
embeddings), next to the same for each holdout record. Fresh real notes show how close a
note of this distribution sits to the source by chance; the share of synthetic records
closer than the holdout's 5th percentile distance (95th percentile similarity) should be
about 5%, and a much larger share means the generator reproduces its training notes.

The source index is built once in the parent process; with more than one local worker it
is saved as ``.npy`` files in a temporary folder and memory-mapped read-only by every
worker. Under Ray (workers possibly on other machines, which cannot see that folder) the
index object itself is passed, and the executor puts it in the object store once.

With ``index_shards`` > 1 the index is built as shards instead
(:mod:`auditkit.index_shards`: n-gram shards by hash range, record shards by record range),
written to a temporary folder shard by shard: record shards on the driver from the stream
of encoded source batches, cut by the texts' lengths, then one executor job per n-gram
shard. Records are matched in phases where each job touches one shard
(:mod:`auditkit.sharded_match`); results are identical. Each job gets its shard's folder
(local pool workers memory-map it) or, under Ray, the shard object.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import Field

from auditkit.checks.base import Check, CheckConfig, CheckContext, MetricSpec
from auditkit.corpus import Record
from auditkit.index_shards import ShardedIndex
from auditkit.ngram_index import Encoded, SourceIndex, encode_batch
from auditkit.overlap_match import MatchParams, RecordOverlap, match_record
from auditkit.results import CheckResult, Direction, Evidence, Finding, Interval, Metric
from auditkit.results import RecordResult as RR
from auditkit.sharded_match import match_sharded

LOWER = Direction.LOWER_IS_SAFER
NEUTRAL = Direction.NEUTRAL

#: Words of a passage shown, masked, in evidence: enough to recognise, too few to leak.
EXCERPT_WORDS = 3


class OverlapConfig(CheckConfig):
    """Settings of the overlap check (policy key ``checks.overlap``)."""

    ngram: int = Field(default=8, ge=3, le=32, description="n of the exact_fraction n-grams")
    seed_ngram: int = Field(default=4, ge=2, le=16, description="n of the rare seed n-grams")
    boilerplate_k: int = Field(
        default=5, ge=2, description="a phrase in this many source records is boilerplate"
    )
    min_exact_tokens: int = Field(default=20, ge=4, description="shortest verbatim leak, words")
    near_min_copied: int = Field(
        default=24,
        ge=8,
        description="words a near copy must share with its source: 30 words with 20% edited",
    )
    near_similarity: float = Field(default=0.8, gt=0, le=1)
    seed_max_df: int = Field(
        default=50, ge=2, description="n-grams in more source records do not seed a match"
    )
    min_seeds: int = Field(default=3, ge=1, description="seeds a source record needs to align")
    support_overlap: float = Field(default=0.8, gt=0, le=1)
    boilerplate_coverage: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="a passage this much covered by stock 8-grams (in >= k records) is boilerplate",
    )
    max_gap: int = Field(default=12, ge=1)
    max_shift: int = Field(default=8, ge=0)
    max_matches: int = Field(default=20, ge=1)
    embeddings: bool = Field(default=True, description="also run the embedding distance test")
    dcr_df_cap: int = Field(default=100, ge=1)
    embedding_model: str | None = None
    holdout_quantile: float = Field(default=0.05, gt=0, lt=0.5)
    bootstrap: int = Field(default=1000, ge=100, le=100_000)
    batch_size: int = Field(default=128, ge=1)
    index_shards: int = Field(
        default=1,
        ge=1,
        description="n-gram shards of the source index (by hash range); 1 = one replicated "
        "index. Raise it when the index (about 17 KiB per 350-word source report) does not "
        "fit one worker's memory",
    )
    record_shards: int | None = Field(
        default=None,
        ge=1,
        description="record shards (source token arrays, by record range) when "
        "index_shards > 1; default: index_shards",
    )

    def params(self) -> MatchParams:
        """The matching definitions as the pure matching code takes them."""
        return MatchParams(
            seed_n=self.seed_ngram, boilerplate_k=self.boilerplate_k, max_gap=self.max_gap,
            max_shift=self.max_shift, min_exact_tokens=self.min_exact_tokens,
            near_min_copied=self.near_min_copied, near_similarity=self.near_similarity,
            seed_max_df=self.seed_max_df, min_seeds=self.min_seeds,
            support_overlap=self.support_overlap, max_matches=self.max_matches,
            boilerplate_coverage=self.boilerplate_coverage, dcr_df_cap=self.dcr_df_cap,
        )  # fmt: skip


def _spec(direction: Direction, text: str, high: float | None = None) -> MetricSpec:
    return MetricSpec(direction, text, low=0, high=high)


_METRICS: dict[str, MetricSpec] = {
    "records_with_leak": _spec(LOWER, "records with at least one copied or near-copied passage"),
    "leak_rate": _spec(LOWER, "share of records with a leak", 1),
    "exact_copies": _spec(LOWER, "verbatim passages (leaks)"),
    "near_copies": _spec(LOWER, "near-copied passages (leaks)"),
    "longest_rare_span": _spec(LOWER, "longest verbatim run of a leak, in words"),
    "max_exact_tokens": _spec(NEUTRAL, "longest common word span with any source record"),
    "mean_exact_fraction": _spec(LOWER, "mean share of 8-grams also found in the source", 1),
    "boilerplate_discounted": _spec(NEUTRAL, "matches discounted as boilerplate"),
    "dcr_closer_share": _spec(
        LOWER,
        "share of synthetic records closer to the source (word 4-gram Jaccard) than "
        "the holdout's 5th percentile distance",
        1,
    ),
    "dcr_closer_share_embedding": _spec(
        LOWER, "the same with all-MiniLM-L6-v2 cosine similarity", 1
    ),
    "dcr_median_synthetic": _spec(NEUTRAL, "median nearest-source similarity, synthetic", 1),
    "dcr_median_holdout": _spec(NEUTRAL, "median nearest-source similarity, holdout", 1),
    "dcr_median_synthetic_embedding": _spec(NEUTRAL, "the same, embeddings, synthetic", 1),
    "dcr_median_holdout_embedding": _spec(NEUTRAL, "the same, embeddings, holdout", 1),
}

# -- per-record work (picklable, run through the executor) -------------------------------

_LOADED: dict[str, SourceIndex] = {}


def _index_for(ref: SourceIndex | str) -> SourceIndex:
    if isinstance(ref, SourceIndex):
        return ref
    if ref not in _LOADED:
        _LOADED.clear()
        _LOADED[ref] = SourceIndex.load(Path(ref))
    return _LOADED[ref]


def match_batch(args: tuple[Sequence[str], SourceIndex | str, MatchParams]) -> list[Any]:
    """Encode and match a batch of texts; returns ``(encoding, RecordOverlap)`` pairs."""
    texts, ref, params = args
    index = _index_for(ref)
    out = []
    for enc in encode_batch(texts):
        out.append((enc, match_record(enc, index, params)))
    return out


# -- statistics ------------------------------------------------------------------------


def closer_share(
    synthetic: Sequence[float], holdout: Sequence[float], quantile: float, draws: int, rng: Any
) -> tuple[float, Interval, float]:
    """Share of synthetic similarities above the holdout's (1 - quantile) similarity.

    Returns the share, a bootstrap interval (synthetic and holdout resampled together, so
    the threshold's own uncertainty is in it), and the threshold.
    """
    import numpy as np

    syn, hold = np.asarray(synthetic, float), np.asarray(holdout, float)
    threshold = float(np.quantile(hold, 1 - quantile))
    share = float((syn > threshold).mean())
    boots = np.empty(draws)
    for b in range(draws):
        s = syn[rng.integers(0, len(syn), len(syn))]
        h = hold[rng.integers(0, len(hold), len(hold))]
        boots[b] = (s > np.quantile(h, 1 - quantile)).mean()
    low, high = np.quantile(boots, [0.025, 0.975])
    return share, Interval(low=float(low), high=float(high), method="bootstrap"), threshold


def nearest_cosine(queries: Any, corpus: Any, chunk: int = 1024) -> tuple[Any, Any]:
    """Best cosine similarity (rows are L2-normalised) and its row in ``corpus``, per query."""
    import numpy as np

    best = np.full(len(queries), -1.0, dtype=np.float32)
    where = np.full(len(queries), -1, dtype=np.int64)
    for start in range(0, len(corpus), chunk):
        sims = queries @ corpus[start : start + chunk].T
        arg = sims.argmax(axis=1)
        val = sims[np.arange(len(queries)), arg]
        better = val > best
        best[better] = val[better]
        where[better] = arg[better] + start
    return best, where


Matched = list[tuple[Record, Encoded, RecordOverlap]]


@dataclass(frozen=True)
class OverlapAnalysis:
    """The index and every record's matches: what metrics, records and CLI lines come from."""

    index: SourceIndex | ShardedIndex
    source: Sequence[Record]
    synthetic: Matched
    holdout: Matched | None


class OverlapCheck(Check):
    """Copied and near-copied passages against the source, and the calibrated DCR test."""

    id = "overlap"
    title = "Overlap with the source corpus"
    summary = (
        "Does any synthetic report repeat a passage of a real report, verbatim or with small "
        "edits, beyond the boilerplate every clinician writes? Does the synthetic set sit "
        "closer to the real notes than fresh real notes do?"
    )
    Config = OverlapConfig
    requires = ("synthetic", "source")
    metrics: Mapping[str, MetricSpec] = _METRICS
    record_fields: Mapping[str, str] = {
        "leak": "1 if the report contains a copied or near-copied source passage",
        "max_exact_tokens": "longest common word span with any source record",
        "longest_rare_span": "longest verbatim run of a leak, in words",
        "exact_fraction": "share of the report's 8-grams found in the source",
        "matches": "number of leak passages",
        "dcr_similarity": "word 4-gram Jaccard with the nearest source record",
    }

    def __init__(self, config: CheckConfig | None = None) -> None:
        super().__init__(config)
        self._models: list[dict[str, Any]] = []
        self._series: dict[str, tuple[float, ...]] = {}

    def models(self) -> list[dict[str, Any]]:
        """The embedding model, when the embedding distance test ran."""
        return list(self._models)

    def analyse(self, context: CheckContext) -> OverlapAnalysis:
        """Index the source and match every synthetic (and holdout) record against it."""
        cfg: OverlapConfig = self.config  # type: ignore[assignment]
        source = context.source
        assert source is not None  # guaranteed by `requires`
        params = cfg.params()
        if params.boilerplate_k > params.seed_max_df:
            params = replace(params, seed_max_df=params.boilerplate_k)
        if cfg.index_shards > 1:
            return self._analyse_sharded(context, params)
        index = self._build_index(context, source.records)
        with tempfile.TemporaryDirectory(prefix="auditkit-index-") as tmp:
            ref: SourceIndex | str = index
            # Pool workers on this machine memory-map the saved arrays; Ray workers, which
            # may be on other machines, get the object (put once in the object store).
            if context.executor.workers > 1 and context.executor.local_files:
                index.save(Path(tmp))
                ref = tmp
            synthetic = self._match(context, context.synthetic.records, ref, params, "synthetic")
            holdout = (
                self._match(context, context.holdout.records, ref, params, "holdout")
                if context.holdout
                else None
            )
        return OverlapAnalysis(index, source.records, synthetic, holdout)

    def _analyse_sharded(self, context: CheckContext, params: MatchParams) -> OverlapAnalysis:
        """:meth:`analyse` with a sharded index: phased matching, one shard per job.

        The shards are written to a temporary folder as they are built (the driver never
        holds the whole index, nor the concatenated source; the n-gram shards are built in
        executor jobs) and memory-mapped; the folder goes when the index does
        (evidence reads source offsets from the record shards after matching).
        """
        cfg: OverlapConfig = self.config  # type: ignore[assignment]
        source = context.source
        assert source is not None  # guaranteed by `requires`
        folder = Path(tempfile.mkdtemp(prefix="auditkit-shards-"))
        # As unsharded: pool workers memory-map the folders, Ray workers get the objects.
        worker_files = context.executor.workers > 1 and context.executor.local_files
        try:
            index = self._build_shards(context, folder, worker_files)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        weakref.finalize(index, shutil.rmtree, folder, True)
        grams: list[Any] = list(index.gram_shards)
        owners: list[Any] = list(index.record_shards)
        if worker_files:
            grams = [str(index.gram_folder(folder, k)) for k in range(len(grams))]
            owners = [str(index.record_folder(folder, r)) for r in range(len(owners))]
        roles = [("synthetic", context.synthetic.records)]
        if context.holdout:
            roles.append(("holdout", context.holdout.records))
        # One matching pass for both roles, so each shard goes to the object store once.
        batches = [
            records[i : i + cfg.batch_size]
            for _, records in roles
            for i in range(0, len(records), cfg.batch_size)
        ]
        label = " and ".join(role for role, _ in roles)
        total = sum(len(records) for _, records in roles)
        with context.progress.bar(f"overlap: matching {label} (sharded)", total) as bar:
            results = match_sharded(
                [[r.text for r in b] for b in batches], index, grams, owners, params,
                context.executor.map, on_batch=bar.update,
            )  # fmt: skip
        matched = [
            (record, enc, res)
            for batch, pairs in zip(batches, results, strict=True)
            for record, (enc, res) in zip(batch, pairs, strict=True)
        ]
        synthetic = matched[: len(context.synthetic.records)]
        holdout = matched[len(synthetic) :] if context.holdout else None
        return OverlapAnalysis(index, source.records, synthetic, holdout)

    def _build_shards(
        self, context: CheckContext, folder: Path, worker_files: bool
    ) -> ShardedIndex:
        """The sharded index, built into ``folder``: n-gram shards as executor jobs.

        Record shards are cut by the source texts' lengths (known before encoding, so
        they are assembled from the stream of encoded batches).
        """
        import numpy as np

        cfg: OverlapConfig = self.config  # type: ignore[assignment]
        source = context.source
        assert source is not None  # guaranteed by `requires`
        records = source.records
        sizes = np.fromiter((len(r.text) for r in records), dtype=np.int64, count=len(records))
        with contextlib.ExitStack() as stack:
            bars: list[Any] = []

            def shard_done(n: int) -> None:
                # Opened when the n-gram shard jobs start (n = 0), once the source's
                # encoding bar has closed.
                if not bars:
                    label = "overlap: building n-gram shards"
                    bars.append(stack.enter_context(context.progress.bar(label, cfg.index_shards)))
                bars[0].update(n)

            return ShardedIndex.build(
                self._encode(context, records), cfg.seed_ngram, cfg.ngram, cfg.index_shards,
                cfg.record_shards or cfg.index_shards, folder=folder, sizes=sizes,
                map_fn=context.executor.map, worker_files=worker_files, on_shard=shard_done,
            )  # fmt: skip

    def run(self, context: CheckContext) -> CheckResult:
        """Index the source, match every synthetic (and holdout) record, calibrate."""
        cfg: OverlapConfig = self.config  # type: ignore[assignment]
        a = self.analyse(context)
        metrics = self._metrics(a.synthetic)
        reason = None
        self._series = {}
        if a.holdout is None:
            reason = "no --holdout corpus: the calibrated distance test was skipped"
        else:
            metrics += self._distance_test(context, a.synthetic, a.holdout, a.source, cfg)
        records = self._records(a.synthetic, a.source)
        evidence = self._evidence(context, a.synthetic, a.source, a.index)
        return CheckResult(
            check=self.id, status="ok", reason=reason, config=cfg.model_dump(mode="json"),
            metrics=tuple(metrics), records=records, evidence=tuple(evidence),
            series=self._series,
        )  # fmt: skip

    # -- stages ------------------------------------------------------------------------

    def _build_index(self, context: CheckContext, records: Sequence[Record]) -> SourceIndex:
        cfg: OverlapConfig = self.config  # type: ignore[assignment]
        # A generator: the index owns the encodings and frees them once concatenated.
        return SourceIndex.build(self._encode(context, records), cfg.seed_ngram, cfg.ngram)

    def _encode(self, context: CheckContext, records: Sequence[Record]) -> Iterator[Encoded]:
        cfg: OverlapConfig = self.config  # type: ignore[assignment]
        batches = [records[i : i + cfg.batch_size] for i in range(0, len(records), cfg.batch_size)]
        with context.progress.bar("overlap: indexing source", len(records)) as bar:
            for batch, enc in zip(
                batches,
                context.executor.map(encode_batch, [[r.text for r in b] for b in batches]),
                strict=True,
            ):
                yield from enc
                bar.update(len(batch))

    def _match(
        self,
        context: CheckContext,
        records: Sequence[Record],
        ref: SourceIndex | str,
        params: MatchParams,
        role: str,
    ) -> list[tuple[Record, Encoded, RecordOverlap]]:
        cfg: OverlapConfig = self.config  # type: ignore[assignment]
        batches = [records[i : i + cfg.batch_size] for i in range(0, len(records), cfg.batch_size)]
        jobs = [([r.text for r in b], ref, params) for b in batches]
        out = []
        with context.progress.bar(f"overlap: matching {role}", len(records)) as bar:
            for batch, results in zip(
                batches, context.executor.map(match_batch, jobs), strict=True
            ):
                out.extend((r, enc, res) for r, (enc, res) in zip(batch, results, strict=True))
                bar.update(len(batch))
        return out

    def _metrics(self, matched: Sequence[tuple[Record, Encoded, RecordOverlap]]) -> list[Metric]:
        results = [res for _, _, res in matched]
        leaks = [m for res in results for m in res.matches if m.leak]
        values: dict[str, float | int] = {
            "records_with_leak": sum(res.leak for res in results),
            "leak_rate": sum(res.leak for res in results) / len(results),
            "exact_copies": sum(m.kind == "exact" for m in leaks),
            "near_copies": sum(m.kind == "near" for m in leaks),
            "longest_rare_span": max((res.longest_rare_span for res in results), default=0),
            "max_exact_tokens": max((res.max_exact_tokens for res in results), default=0),
            "mean_exact_fraction": sum(res.exact_fraction for res in results) / len(results),
            "boilerplate_discounted": sum(res.boilerplate_discounted for res in results),
        }
        return [
            Metric(name=name, value=value, direction=_METRICS[name].direction,
                   description=_METRICS[name].description, low=0, high=_METRICS[name].high)
            for name, value in values.items()
        ]  # fmt: skip

    def _distance_test(
        self,
        context: CheckContext,
        synthetic: Sequence[tuple[Record, Encoded, RecordOverlap]],
        holdout: Sequence[tuple[Record, Encoded, RecordOverlap]],
        source: Sequence[Record],
        cfg: OverlapConfig,
    ) -> list[Metric]:
        import numpy as np

        rng = context.numpy_rng("overlap:dcr")
        syn = [res.dcr_similarity for _, _, res in synthetic]
        hold = [res.dcr_similarity for _, _, res in holdout]
        out = self._dcr_metrics("", syn, hold, cfg, rng, self._series)
        if cfg.embeddings:
            from auditkit import embeddings

            self._models = [embeddings.model_description(cfg.embedding_model)]
            with context.progress.bar("overlap: embeddings", 3) as bar:
                vectors = []
                for records in (source, [r for r, _, _ in synthetic], [r for r, _, _ in holdout]):
                    vectors.append(embeddings.embed([r.text for r in records], cfg.embedding_model))
                    bar.update(1)
            src_vec, syn_vec, hold_vec = vectors
            syn_e, _ = nearest_cosine(syn_vec, src_vec)
            hold_e, _ = nearest_cosine(hold_vec, src_vec)
            out += self._dcr_metrics(
                "_embedding",
                np.round(syn_e, 6).tolist(),
                np.round(hold_e, 6).tolist(),
                cfg,
                rng,
                self._series,
            )
        return out

    @staticmethod
    def _dcr_metrics(
        suffix: str,
        syn: Sequence[float],
        hold: Sequence[float],
        cfg: OverlapConfig,
        rng: Any,
        series: dict[str, tuple[float, ...]],
    ) -> list[Metric]:
        import numpy as np

        share, interval, threshold = closer_share(
            syn, hold, cfg.holdout_quantile, cfg.bootstrap, rng
        )
        # For the report's histograms: the distributions behind the metrics, sorted.
        series[f"dcr_similarity_synthetic{suffix}"] = tuple(sorted(map(float, syn)))
        series[f"dcr_similarity_holdout{suffix}"] = tuple(sorted(map(float, hold)))
        series[f"dcr_threshold{suffix}"] = (float(threshold),)
        names = {
            f"dcr_closer_share{suffix}": (share, interval),
            f"dcr_median_synthetic{suffix}": (float(np.median(syn)), None),
            f"dcr_median_holdout{suffix}": (float(np.median(hold)), None),
        }
        out = []
        for name, (value, iv) in names.items():
            spec = _METRICS[name]
            description = spec.description
            if name.startswith("dcr_closer_share"):
                description += f" (holdout threshold {threshold:.3f}; expected ≈ "
                description += f"{cfg.holdout_quantile:g} when not memorised)"
            out.append(
                Metric(
                    name=name,
                    value=value,
                    direction=spec.direction,
                    description=description,
                    interval=iv,
                    low=0,
                    high=1,
                )
            )
        return out

    def _records(
        self, matched: Sequence[tuple[Record, Encoded, RecordOverlap]], source: Sequence[Record]
    ) -> dict[str, RR]:
        out = {}
        for record, enc, res in matched:
            findings = []
            for m in res.matches:
                if not m.leak:
                    continue
                src_id = source[m.source].id
                start, end = enc.char_span(m.start, m.end)
                findings.append(Finding(
                    kind=f"{m.kind}_copy",
                    message=f"{m.tokens}-word {'verbatim' if m.kind == 'exact' else 'near'} "
                    f"copy of {src_id} (similarity {m.similarity:.2f}, chars {start}-{end})",
                    rule=f"rare {self.config.seed_ngram}-gram seeds + alignment",  # type: ignore[attr-defined]
                    score=m.similarity, start=start, end=end, related_id=src_id,
                ))  # fmt: skip
            out[record.id] = RR(
                values={
                    "leak": int(res.leak),
                    "max_exact_tokens": res.max_exact_tokens,
                    "longest_rare_span": res.longest_rare_span,
                    "exact_fraction": res.exact_fraction,
                    "matches": sum(m.leak for m in res.matches),
                    "dcr_similarity": res.dcr_similarity,
                },
                findings=tuple(findings),
            )
        return out

    def _evidence(
        self,
        context: CheckContext,
        matched: Sequence[tuple[Record, Encoded, RecordOverlap]],
        source: Sequence[Record],
        index: SourceIndex | ShardedIndex,
    ) -> list[Evidence]:
        leaks = sorted(
            ((record, enc, m) for record, enc, res in matched for m in res.matches if m.leak),
            key=lambda x: (-x[2].tokens, x[0].id),
        )
        out = []
        for record, enc, m in leaks[:20]:
            start, end = enc.char_span(m.start, m.end)
            s_start, s_end = index.record_span(m.source, m.source_start, m.source_end)
            out.append(Evidence(
                title=f"{'Verbatim' if m.kind == 'exact' else 'Near'} copy, {m.tokens} words",
                detail=f"{record.id} chars {start}-{end} ~ {source[m.source].id} chars "
                f"{s_start}-{s_end}; similarity {m.similarity:.2f}, longest verbatim run "
                f"{m.exact_run} words",
                record_id=record.id, related_id=source[m.source].id,
                excerpt=masked_excerpt(context, record.text, enc, m.start, m.end),
                rule="rare n-gram seeds + Levenshtein alignment", score=m.similarity,
            ))  # fmt: skip
        return out


def masked_excerpt(context: CheckContext, text: str, enc: Encoded, start: int, end: int) -> str:
    """The first few words of a passage, each replaced by a keyed token, then its length.

    Shows that two findings are the same passage without showing the passage.
    """
    shown = range(start, min(end, start + EXCERPT_WORDS))
    words = [text[int(enc.starts[i]) : int(enc.ends[i])] for i in shown]
    masked = " ".join(context.masker.token(w, "W") for w in words)
    passage = text[slice(*enc.char_span(start, end))]
    return f"{masked} … ({end - start} words; passage #{context.masker.fingerprint(passage)})"


def overlap_record_json(
    record_id: str,
    enc: Encoded,
    res: RecordOverlap,
    source: Sequence[Record],
    index: SourceIndex | ShardedIndex,
) -> dict[str, Any]:
    """The ``auditkit overlap`` JSON line of one record: offsets and ids, never text."""
    matches = []
    for m in res.matches:
        start, end = enc.char_span(m.start, m.end)
        s_start, s_end = index.record_span(m.source, m.source_start, m.source_end)
        matches.append({
            "kind": m.kind, "source_id": source[m.source].id, "start": start, "end": end,
            "source_start": s_start, "source_end": s_end,
            "similarity": round(m.similarity, 6), "boilerplate": m.boilerplate,
        })  # fmt: skip
    return {
        "id": record_id, "leak": res.leak, "max_exact_tokens": res.max_exact_tokens,
        "exact_fraction": round(res.exact_fraction, 6), "matches": matches,
    }  # fmt: skip


def scan_files(
    synthetic: str | Path,
    source: str | Path,
    *,
    holdout: str | Path | None = None,
    policy: str | Path = "default",
    seed: int = 0,
    workers: int = 1,
    engine: str = "local",
    ray_address: str | None = None,
    fields: Any = None,
    max_record_bytes: int | None = None,
    progress: bool | None = False,
) -> tuple[list[dict[str, Any]], str]:
    """The ``auditkit overlap`` command: one JSON-able dict per synthetic record, and a summary.

    The check's settings come from the policy's ``checks.overlap`` section when present.
    """
    from auditkit import signing
    from auditkit.executor import make_executor
    from auditkit.pipeline import load_inputs, make_context
    from auditkit.policy import load_policy
    from auditkit.resources import resolve_policy

    pol = load_policy(resolve_policy(policy))
    executor = make_executor(engine, workers, ray_address=ray_address)
    inputs = load_inputs(synthetic, source, holdout, fields=fields,
                         max_record_bytes=max_record_bytes)  # fmt: skip
    check = OverlapCheck(pol.check_config("overlap") if "overlap" in pol.checks else None)
    cfg: OverlapConfig = check.config  # type: ignore[assignment]
    with executor:
        context = make_context(inputs, seed, executor, signing.demo_identity(), progress)
        a = check.analyse(context)
        metrics = check._metrics(a.synthetic)
        if a.holdout is not None:
            metrics += check._distance_test(context, a.synthetic, a.holdout, a.source, cfg)
    lines = [
        overlap_record_json(record.id, enc, res, a.source, a.index)
        for record, enc, res in a.synthetic
    ]
    values = {m.name: m.value for m in metrics}
    summary = (
        f"{len(lines)} records, {values['records_with_leak']} with a leak "
        f"({values['exact_copies']} verbatim, {values['near_copies']} near copies); "
        f"{values['boilerplate_discounted']} boilerplate matches discounted"
    )
    if "dcr_closer_share" in values:
        summary += (
            f"; closer to the source than the holdout's 5th percentile: "
            f"{values['dcr_closer_share']:.3f} (4-gram Jaccard)"
        )
        if "dcr_closer_share_embedding" in values:
            summary += f", {values['dcr_closer_share_embedding']:.3f} (embeddings)"
    return lines, summary
