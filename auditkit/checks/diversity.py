"""The ``diversity`` check: is the synthetic corpus as varied as the real notes?

LLMs asked for many reports of one ICD-10 code tend to collapse into near-copies of a
few templates. This check measures lexical diversity (distinct-n, MATTR), redundancy
(gzip compression ratio, self-BLEU) and within-set near-duplicates (MinHash LSH, verified
by exact Jaccard), overall and per primary ICD-10 code.

Absolute diversity numbers depend on how many texts, and how long, are measured, so every
number is also computed on the source corpus **at the same sample size and the same
length distribution** (each sampled source report is cut to the length of a synthetic
one), over several seeded draws. The ratios synthetic / reference are what the policy
gates on: "synthetic distinct-2 is 0.83x the real notes'".
"""

from __future__ import annotations

import bisect
import functools
import gzip
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from auditkit.checks.base import Check, CheckConfig, CheckContext, MetricSpec
from auditkit.corpus import Record
from auditkit.results import CheckResult, Direction, Evidence, Finding, Interval, Metric
from auditkit.results import RecordResult as RR
from auditkit.text import ngram_hashes, ngrams, tokenize

_WORD = re.compile(r"[^\W_]")
HIGHER = Direction.HIGHER_IS_SAFER
LOWER = Direction.LOWER_IS_SAFER
NEUTRAL = Direction.NEUTRAL
OVERALL = None  # the group key of corpus-wide metrics


class DiversityConfig(CheckConfig):
    """Settings of the diversity check (policy key ``checks.diversity``)."""

    distinct_n: tuple[int, ...] = Field(default=(1, 2, 3), min_length=1)
    mattr_window: int = Field(default=50, ge=5)
    self_bleu_sample: int = Field(default=100, ge=2, description="texts per self-BLEU sample")
    reference_draws: int = Field(default=10, ge=1, le=1000)
    max_compare: int = Field(
        default=2000, ge=2, description="largest sample compared with the reference, per group"
    )
    min_group_size: int = Field(default=5, ge=2)
    shingle_words: int = Field(default=3, ge=1, le=10)
    num_perm: int = Field(default=128, ge=16, le=1024)
    near_duplicate_jaccard: float = Field(default=0.7, gt=0, le=1)
    collapse_ratio: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description="a code is collapsed when the upper 95% bound of its distinct-2 ratio is "
        "below this",
    )


def _spec(
    direction: Direction,
    description: str,
    low: float | None = 0,
    high: float | None = None,
    per_group: bool = True,
) -> MetricSpec:
    return MetricSpec(direction, description, per_group=per_group, low=low, high=high)


_BASE_METRICS: dict[str, tuple[Direction, str, float | None]] = {
    "distinct_1": (HIGHER, "unique words / words", 1.0),
    "distinct_2": (HIGHER, "unique word bigrams / bigrams", 1.0),
    "distinct_3": (HIGHER, "unique word trigrams / trigrams", 1.0),
    "mattr": (HIGHER, "moving-average type-token ratio per report, mean", 1.0),
    "self_bleu": (LOWER, "mean BLEU of each sampled report against the others (0-100)", 100.0),
    "compression_ratio": (LOWER, "raw bytes / gzip bytes of the concatenated reports", None),
    "near_duplicate_rate": (LOWER, "share of reports that near-duplicate an earlier one", 1.0),
}


def _declared_metrics() -> dict[str, MetricSpec]:
    specs: dict[str, MetricSpec] = {}
    for name, (direction, desc, high) in _BASE_METRICS.items():
        specs[name] = _spec(direction, desc, high=high)
        specs[f"{name}_reference"] = _spec(
            NEUTRAL, f"{desc}, on length-matched source samples", high=high
        )
        if name != "near_duplicate_rate":
            specs[f"{name}_ratio"] = _spec(
                direction, f"synthetic / reference {name.replace('_', '-')}", high=None
            )
    specs["records"] = _spec(NEUTRAL, "reports in the group", high=None)
    specs["collapsed_codes"] = _spec(
        LOWER, "codes whose distinct-2 ratio is credibly below collapse_ratio", per_group=False
    )
    specs["min_distinct_2_ratio"] = _spec(
        HIGHER,
        "lowest per-code distinct-2 ratio (the most collapsed code)",
        high=None,
        per_group=False,
    )
    return specs


# ---------------------------------------------------------------------------------------
# Per-record work: pure functions of a batch of texts, run through the executor.


@dataclass(frozen=True)
class Profile:
    """What the corpus-level statistics need to know about one report."""

    words: tuple[str, ...]
    word_ends: tuple[int, ...]  # character offset just after each word
    shingles: frozenset[int]
    minhash: Any  # datasketch.LeanMinHash (picklable, seed and scheme recorded)


def _shingle_hashes(tokens: Sequence[str], k: int) -> frozenset[int]:
    import hashlib

    grams = {" ".join(g) for g in ngrams(tokens, k)} or {" ".join(tokens)}
    return frozenset(
        int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams
    )


def _identity(x: Any) -> Any:
    return x


def profile_batch(args: tuple[Sequence[str], int, int, int]) -> list[Profile]:
    """Tokenise texts and compute their shingle sets and MinHash signatures."""
    import numpy as np
    from datasketch import LeanMinHash, MinHash

    texts, shingle_words, num_perm, seed = args
    out = []
    for text in texts:
        word_tokens = [t for t in tokenize(text) if _WORD.match(t.text)]
        tokens = tuple(t.text for t in word_tokens)
        shingles = _shingle_hashes(tokens, shingle_words)
        # The shingles are already hashed; datasketch's affine32 scheme takes 32-bit values.
        mh = MinHash(num_perm=num_perm, seed=seed, hashfunc=_identity)
        mh.update_batch(
            np.fromiter(
                (h & 0xFFFFFFFF for h in sorted(shingles)), dtype=np.uint64, count=len(shingles)
            )
        )
        out.append(Profile(tokens, tuple(t.end for t in word_tokens), shingles, LeanMinHash(mh)))
    return out


# ---------------------------------------------------------------------------------------
# Corpus-level statistics. Docs are arrays of integer word ids (see ``as_id_arrays``); the
# n-gram statistics are vectorised with numpy because they run once per group per draw.

Docs = Sequence[Any]  # sequences of words, or numpy arrays of word ids


def as_id_arrays(docs: Docs) -> list[Any]:
    """Map docs of words to int64 id arrays (arrays pass through unchanged)."""
    import numpy as np

    vocab: dict[str, int] = {}
    out = []
    for doc in docs:
        if isinstance(doc, np.ndarray):
            out.append(doc)
        else:
            out.append(
                np.fromiter(
                    (vocab.setdefault(w, len(vocab)) for w in doc), np.int64, count=len(doc)
                )
            )
    return out


def distinct_n(docs: Docs, n: int) -> float | None:
    """Unique n-grams / total n-grams over all docs (Li et al., 2016); None if no n-grams."""
    import numpy as np

    grams = [ngram_hashes(d, n) for d in as_id_arrays(docs)]
    total = sum(len(g) for g in grams)
    return len(np.unique(np.concatenate(grams))) / total if total else None


def mattr(doc: Any, window: int) -> float | None:
    """Moving-average type-token ratio (Covington & McFall, 2010); plain TTR if shorter.

    Summed over all windows, the number of distinct words equals the number of (window,
    position) pairs where the position holds the first occurrence of its word inside the
    window; that count has a closed form per position given the previous occurrence of
    the same word, so no window is materialised.
    """
    import numpy as np

    (ids,) = as_id_arrays([doc])
    length = len(ids)
    if length == 0:
        return None
    if length <= window:
        return len(np.unique(ids)) / length
    order = np.argsort(ids, kind="stable")
    prev = np.full(length, -1, dtype=np.int64)
    same = ids[order[1:]] == ids[order[:-1]]
    prev[order[1:][same]] = order[:-1][same]
    pos = np.arange(length)
    last_start = length - window
    lo = np.maximum(prev + 1, pos - window + 1)
    hi = np.minimum(pos, last_start)
    firsts = np.clip(hi - lo + 1, 0, None).sum()
    return float(firsts) / ((last_start + 1) * window)


def compression_ratio(texts: Sequence[str]) -> float | None:
    """Raw UTF-8 bytes / gzip bytes of the texts joined by newlines (higher = more repetitive)."""
    raw = "\n".join(texts).encode("utf-8")
    if not raw:
        return None
    return len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0))


def _clipped_counts(arrays: Sequence[Any], n: int) -> tuple[Any, Any]:
    """Per doc: n-grams matched in the other docs (clipped) and n-grams in total.

    For each n-gram only the largest and second-largest count over all docs matter: a
    doc's best reference count is the largest count among the *other* docs.
    """
    import numpy as np

    n_docs = len(arrays)
    grams = [ngram_hashes(a, n) for a in arrays]
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), [len(g) for g in grams])
    total = np.bincount(doc, minlength=n_docs)
    if not len(doc):
        return np.zeros(n_docs), total
    _, gram_id = np.unique(np.concatenate(grams), return_inverse=True)
    pairs, counts = np.unique(gram_id.ravel() * n_docs + doc, return_counts=True)
    gram, owner = pairs // n_docs, pairs % n_docs  # sorted by gram, then doc
    starts = np.flatnonzero(np.r_[True, gram[1:] != gram[:-1]])
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(gram)]))
    top = np.maximum.reduceat(counts, starts)
    # The first doc (per gram) holding the top count owns it; the runner-up is the
    # largest count once the owner's entry is set aside (equal to top on a tie).
    top_entries = np.flatnonzero(counts == top[group])
    _, first = np.unique(group[top_entries], return_index=True)
    owner_entry = top_entries[first]  # one per gram, in gram order
    without_owner = counts.copy()
    without_owner[owner_entry] = 0
    second = np.maximum.reduceat(without_owner, starts)
    is_owner = np.zeros(len(counts), dtype=bool)
    is_owner[owner_entry] = True
    ref_max = np.where(is_owner, second[group], top[group])
    correct = np.bincount(owner, weights=np.minimum(counts, ref_max), minlength=n_docs)
    return correct, total


def self_bleu(docs: Docs, max_order: int = 4) -> float | None:
    """Mean sentence-BLEU of each doc against all the others as references (Zhu et al., 2018).

    The clipped n-gram counts are computed in one vectorised pass (for each n-gram, the
    largest and second-largest count over the docs), so the cost is linear in the sample,
    not quadratic; the BLEU formula, smoothing and brevity penalty are sacrebleu's own
    (``BLEU.compute_bleu`` with exp smoothing and effective order, as ``sentence_bleu``).
    """
    from sacrebleu.metrics import BLEU

    if len(docs) < 2:
        return None
    arrays = as_id_arrays(docs)
    stats = [_clipped_counts(arrays, n) for n in range(1, max_order + 1)]
    lengths = [len(a) for a in arrays]
    ordered = sorted(lengths)
    scores = []
    for i, hyp_len in enumerate(lengths):
        others = list(ordered)
        others.remove(hyp_len)
        ref_len = min(others, key=lambda r: (abs(r - hyp_len), r))
        score = BLEU.compute_bleu(
            [int(c[i]) for c, _ in stats],
            [int(t[i]) for _, t in stats],
            hyp_len,
            ref_len,
            smooth_method="exp",
            effective_order=True,
            max_ngram_order=max_order,
        )
        scores.append(score.score)
    return sum(scores) / len(scores)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The earlier record stays the representative of the cluster.
            self.parent[max(ra, rb)] = min(ra, rb)


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    """Exact Jaccard similarity of two shingle sets."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@functools.cache
def _lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """Return datasketch's optimal (bands, rows) for a threshold (a slow integration: cached)."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


def near_duplicates(
    profiles: Sequence[Profile], threshold: float, num_perm: int
) -> tuple[list[int], list[tuple[int, float]]]:
    """Cluster near-duplicates: MinHash LSH candidates, kept when exact Jaccard >= threshold.

    Returns each record's cluster representative (the earliest member) and, per record,
    its best verified match ``(index, jaccard)`` among earlier records (``(-1, 0.0)`` if none).
    """
    from datasketch import MinHashLSH

    n = len(profiles)
    uf = _UnionFind(n)
    best: list[tuple[int, float]] = [(-1, 0.0)] * n
    lsh = MinHashLSH(num_perm=num_perm, params=_lsh_bands(threshold, num_perm))
    for i, p in enumerate(profiles):
        mh = p.minhash
        for key in sorted(lsh.query(mh)):
            j = int(key)
            sim = jaccard(p.shingles, profiles[j].shingles)
            if sim >= threshold:
                uf.union(i, j)
                if sim > best[i][1]:
                    best[i] = (j, sim)
        lsh.insert(str(i), mh)
    return [uf.find(i) for i in range(n)], best


# ---------------------------------------------------------------------------------------
# The check.


@dataclass(frozen=True)
class _Doc:
    record: Record
    profile: Profile
    ids: Any  # numpy int64 word ids, one vocabulary per run


def _group_stats(
    docs: Sequence[tuple[str, Any]],
    cfg: DiversityConfig,
    rng: Any,
) -> dict[str, float | None]:
    """Every lexical statistic of a sample of (text, word ids) pairs."""
    word_lists = [w for _, w in docs]
    stats: dict[str, float | None] = {
        f"distinct_{n}": distinct_n(word_lists, n) for n in cfg.distinct_n
    }
    values = [v for v in (mattr(w, cfg.mattr_window) for w in word_lists) if v is not None]
    stats["mattr"] = sum(values) / len(values) if values else None
    stats["compression_ratio"] = compression_ratio([t for t, _ in docs])
    sample = word_lists
    if len(sample) > cfg.self_bleu_sample:
        sample = [
            word_lists[i] for i in sorted(rng.sample(range(len(word_lists)), cfg.self_bleu_sample))
        ]
    stats["self_bleu"] = self_bleu(sample)
    return stats


def _length_matched(
    synthetic: Sequence[_Doc], pool: Sequence[_Doc], rng: Any
) -> list[tuple[str, list[str]]]:
    """Draw one source report per synthetic one, cut to the synthetic report's length.

    Each synthetic report (longest first) takes a random unused source report at least as
    long as itself; when none is left it takes the longest unused one (which is then
    shorter). Sampling is without replacement, so the reference has exactly the synthetic
    sample's size.
    """
    available = sorted(range(len(pool)), key=lambda j: (len(pool[j].ids), j))
    lengths = [len(pool[j].ids) for j in available]
    out = []
    for doc in sorted(synthetic, key=lambda d: -len(d.ids)):
        target = len(doc.ids)
        lo = bisect.bisect_left(lengths, target)
        k = rng.randrange(lo, len(available)) if lo < len(available) else len(available) - 1
        j = available.pop(k)
        lengths.pop(k)
        src = pool[j]
        cut = min(target, len(src.ids))
        text = src.record.text[: src.profile.word_ends[cut - 1]] if cut else ""
        out.append((text, src.ids[:cut]))
    return out


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class DiversityCheck(Check):
    """Lexical diversity and within-set near-duplicates, against length-matched real notes."""

    id = "diversity"
    title = "Diversity"
    summary = (
        "Is the synthetic corpus as varied as the real notes, overall and per ICD-10 code, "
        "or has the generator collapsed into near-copies of a few templates?"
    )
    Config = DiversityConfig
    requires = ("synthetic",)
    metrics: Mapping[str, MetricSpec] = _declared_metrics()
    record_fields: Mapping[str, str] = {
        "near_duplicate": "1 if the report near-duplicates an earlier report of the set",
        "cluster_size": "size of the report's near-duplicate cluster (1 = unique)",
        "words": "number of words",
        "mattr": "moving-average type-token ratio of the report",
    }

    def run(self, context: CheckContext) -> CheckResult:
        """Compute diversity metrics; see the module docstring."""
        cfg: DiversityConfig = self.config  # type: ignore[assignment]
        vocab: dict[str, int] = {}  # one word-id space for synthetic and source
        synthetic = self._profile(context, context.synthetic.records, "synthetic", vocab)
        source = (
            self._profile(context, context.source.records, "source", vocab)
            if context.source
            else []
        )
        reps, best = near_duplicates(
            [d.profile for d in synthetic], cfg.near_duplicate_jaccard, cfg.num_perm
        )
        cluster_sizes = Counter(reps)
        metrics: list[Metric] = []
        groups: dict[str | None, list[int]] = {OVERALL: list(range(len(synthetic)))}
        for i, d in enumerate(synthetic):
            if d.record.primary_code:
                groups.setdefault(d.record.primary_code, []).append(i)
        source_groups: dict[str | None, list[_Doc]] = {OVERALL: list(source)}
        for d in source:
            if d.record.primary_code:
                source_groups.setdefault(d.record.primary_code, []).append(d)

        collapsed: list[str] = []
        code_ratios: dict[str, float] = {}
        with context.progress.bar("diversity: groups", len(groups)) as bar:
            for group in sorted(groups, key=lambda g: (g is not None, g or "")):
                members = groups[group]
                group_metrics = self._group_metrics(
                    context,
                    group,
                    [synthetic[i] for i in members],
                    source_groups.get(group, []),
                    [reps[i] != i for i in members],
                )
                metrics.extend(group_metrics)
                ratio = next((m for m in group_metrics if m.name == "distinct_2_ratio"), None)
                if group is not None and ratio is not None and ratio.value is not None:
                    code_ratios[group] = ratio.value
                    upper = ratio.interval.high if ratio.interval else ratio.value
                    if upper < cfg.collapse_ratio:
                        collapsed.append(group)
                bar.update(1)
        spec = self.metrics
        metrics.append(
            Metric(
                name="collapsed_codes",
                value=len(collapsed),
                direction=LOWER,
                description=spec["collapsed_codes"].description,
                low=0,
            )
        )
        metrics.append(
            Metric(
                name="min_distinct_2_ratio",
                value=min(code_ratios.values()) if code_ratios else None,
                direction=HIGHER,
                description=spec["min_distinct_2_ratio"].description,
                low=0,
            )
        )
        records = self._records(synthetic, reps, best, cluster_sizes, cfg)
        evidence = self._evidence(synthetic, reps, best, cluster_sizes, code_ratios, collapsed, cfg)
        reason = None if source else "no --source corpus: reference ratios were not computed"
        return CheckResult(
            check=self.id,
            status="ok",
            reason=reason,
            config=cfg.model_dump(mode="json"),
            metrics=tuple(metrics),
            records=records,
            evidence=tuple(evidence),
        )

    def _profile(
        self, context: CheckContext, records: Sequence[Record], role: str, vocab: dict[str, int]
    ) -> list[_Doc]:
        import numpy as np

        cfg: DiversityConfig = self.config  # type: ignore[assignment]
        seed = context.seed & 0xFFFFFFFF
        batch = 256
        chunks = [records[i : i + batch] for i in range(0, len(records), batch)]
        jobs = [
            ([r.text for r in chunk], cfg.shingle_words, cfg.num_perm, seed) for chunk in chunks
        ]
        out: list[_Doc] = []
        with context.progress.bar(f"diversity: reading {role}", len(records)) as bar:
            for chunk, profiles in zip(
                chunks, context.executor.map(profile_batch, jobs), strict=True
            ):
                for r, p in zip(chunk, profiles, strict=True):
                    ids = np.fromiter(
                        (vocab.setdefault(w, len(vocab)) for w in p.words),
                        np.int64,
                        count=len(p.words),
                    )
                    out.append(_Doc(r, p, ids))
                bar.update(len(chunk))
        return out

    def _group_metrics(
        self,
        context: CheckContext,
        group: str | None,
        docs: list[_Doc],
        pool: list[_Doc],
        redundant: list[bool],
    ) -> list[Metric]:
        cfg: DiversityConfig = self.config  # type: ignore[assignment]
        rng = context.random(f"diversity:{group or '*'}")
        full = _group_stats([(d.record.text, d.ids) for d in docs], cfg, rng)
        full["near_duplicate_rate"] = sum(redundant) / len(docs)
        out = [
            Metric(
                name="records",
                value=len(docs),
                direction=NEUTRAL,
                group=group,
                description="reports in the group",
                low=0,
            )
        ]
        for name, (direction, desc, high) in _BASE_METRICS.items():
            if name.startswith("distinct_") and int(name[-1]) not in cfg.distinct_n:
                continue
            out.append(
                Metric(
                    name=name,
                    value=full.get(name),
                    direction=direction,
                    group=group,
                    description=desc,
                    low=0,
                    high=high,
                )
            )
        n = min(len(docs), len(pool), cfg.max_compare)
        if n < cfg.min_group_size:
            return out
        draws: dict[str, list[float]] = {}
        ratios: dict[str, list[float]] = {}
        for _ in range(cfg.reference_draws):
            sample = docs if n == len(docs) else rng.sample(docs, n)
            syn = (
                full
                if sample is docs
                else _group_stats([(d.record.text, d.ids) for d in sample], cfg, rng)
            )
            ref = _group_stats(_length_matched(sample, pool, rng), cfg, rng)
            # Near-duplication is a relation between whole reports, so the reference draws
            # uncut source reports (same count) and runs the very same LSH + Jaccard test.
            ref_reps, _ = near_duplicates(
                [d.profile for d in rng.sample(pool, n)], cfg.near_duplicate_jaccard, cfg.num_perm
            )
            ref["near_duplicate_rate"] = sum(r != i for i, r in enumerate(ref_reps)) / n
            for name, value in ref.items():
                if value is None:
                    continue
                draws.setdefault(name, []).append(value)
                if name != "near_duplicate_rate" and syn.get(name) is not None and value > 0:
                    ratios.setdefault(name, []).append(syn[name] / value)  # type: ignore[operator]
        for name, (direction, desc, high) in _BASE_METRICS.items():
            if name in draws:
                values = draws[name]
                out.append(
                    Metric(
                        name=f"{name}_reference",
                        value=sum(values) / len(values),
                        direction=NEUTRAL,
                        group=group,
                        description=f"{desc}, on {n} length-matched source reports",
                        low=0,
                        high=high,
                        interval=self._interval(values),
                    )
                )
            if name in ratios:
                values = ratios[name]
                out.append(
                    Metric(
                        name=f"{name}_ratio",
                        value=sum(values) / len(values),
                        direction=direction,
                        group=group,
                        description=f"synthetic / reference {name}, n={n} each",
                        low=0,
                        interval=self._interval(values),
                    )
                )
        return out

    @staticmethod
    def _interval(values: Sequence[float]) -> Interval | None:
        if len(values) < 2:
            return None
        return Interval(
            low=_percentile(values, 0.025),
            high=_percentile(values, 0.975),
            method="percentile over seeded reference draws",
        )

    @staticmethod
    def _records(
        docs: Sequence[_Doc],
        reps: Sequence[int],
        best: Sequence[tuple[int, float]],
        sizes: Mapping[int, int],
        cfg: DiversityConfig,
    ) -> dict[str, RR]:
        out = {}
        for i, d in enumerate(docs):
            dup = reps[i] != i
            findings: tuple[Finding, ...] = ()
            if dup:
                j, sim = best[i] if best[i][0] >= 0 else (reps[i], 0.0)
                match = docs[j].record.id
                findings = (
                    Finding(
                        kind="near_duplicate",
                        message=f"near-duplicate of {match} ({cfg.shingle_words}-word shingle "
                        f"Jaccard {sim:.2f})",
                        rule="minhash-lsh+exact-jaccard",
                        score=sim,
                        related_id=match,
                    ),
                )
            out[d.record.id] = RR(
                values={
                    "near_duplicate": int(dup),
                    "cluster_size": sizes[reps[i]],
                    "words": len(d.profile.words),
                    "mattr": mattr(d.ids, cfg.mattr_window) or 0.0,
                },
                findings=findings,
            )
        return out

    @staticmethod
    def _evidence(
        docs: Sequence[_Doc],
        reps: Sequence[int],
        best: Sequence[tuple[int, float]],
        sizes: Mapping[int, int],
        code_ratios: Mapping[str, float],
        collapsed: Sequence[str],
        cfg: DiversityConfig,
    ) -> list[Evidence]:
        evidence = []
        for code in sorted(collapsed):
            evidence.append(
                Evidence(
                    title=f"Mode collapse in {code}",
                    detail=f"distinct-2 is {code_ratios[code]:.2f}x the length-matched real notes' "
                    f"(collapse below {cfg.collapse_ratio:g}x)",
                    score=code_ratios[code],
                    rule="distinct_2_ratio",
                )
            )
        clusters = sorted((r for r in sizes if sizes[r] > 1), key=lambda r: (-sizes[r], r))
        for rep in clusters[:10]:
            members = [docs[i].record.id for i in range(len(docs)) if reps[i] == rep]
            sims = [best[i][1] for i in range(len(docs)) if reps[i] == rep and i != rep]
            shown = ", ".join(members[:6]) + (" …" if len(members) > 6 else "")
            evidence.append(
                Evidence(
                    title=f"Near-duplicate cluster of {sizes[rep]} reports",
                    detail=f"{shown}; lowest verified Jaccard {min(sims):.2f}",
                    record_id=docs[rep].record.id,
                    rule="minhash-lsh+exact-jaccard",
                    score=min(sims),
                )
            )
        return evidence
