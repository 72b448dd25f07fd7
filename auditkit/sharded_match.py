"""Matching against a sharded source index, in phases where each job touches one shard.

Owns the distributed form of :func:`auditkit.overlap_match.match_record` over a
:class:`~auditkit.index_shards.ShardedIndex`; the results are identical, field for
field. The algorithm's steps are the same functions of :mod:`auditkit.overlap_match`;
only where they run changes:

0. **Encode** (one job per synthetic batch): the encodings and every record's seed and
   exact n-gram hashes.
A. **Look up** (one job per batch and gram shard): the batch's n-gram hashes that fall
   in the shard's range, answered from the shard alone: found, df, the postings of the
   grams rare enough to be used (df <= max(``seed_max_df``, ``dcr_df_cap``)), the first
   posting of every gram (a run of common grams is followed in its first n-gram's first
   posting), and the exact-gram df.
B. **Merge** (driver, vectorised per batch): each gram is answered by exactly one shard,
   so the answers are scattered back to their query positions and the postings stably
   sorted by position, which restores the unsharded posting order. Then per record, as
   the unsharded matcher does: the seeds (in source records holding at least
   ``min_seeds``), the DCR candidate records, the runs of common n-grams; each goes as a
   request to the record shard that owns its source record.
C. **Align** (one job per batch and record shard): clustering of the seeds in the
   records the shard owns (clusters never span records, so each shard clusters its part
   exactly as the unsharded matcher does), the alignment of each cluster, the Jaccard of
   its DCR candidates, the extension of its runs. Runs are extended whether or not they
   will turn out to overlap a leak (the leaks are only known after judging, on the
   driver); the driver drops those that do, exactly as the unsharded matcher skips them.
D. **Assemble** (driver): judging, ordering and :class:`RecordOverlap` through the same
   functions as :func:`match_record`.

Every job goes through the caller's ``map`` (an executor's), and carries one shard: the
object itself (Ray puts it in the object store once), or the folder it was saved in,
which a local pool worker memory-maps (:func:`gram_shard_for`, :func:`record_shard_for`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditkit.index_shards import (
    GramShard,
    MapFn,
    RecordShard,
    ShardedIndex,
    record_owner,
    shard_of,
)
from auditkit.ngram_index import Encoded, encode
from auditkit.overlap_match import (
    Match,
    MatchParams,
    RecordOverlap,
    align_cluster,
    closest,
    common_runs,
    dcr_candidates,
    enough_seeds,
    expand_postings,
    extend_run,
    jaccard,
    judge_record,
    leak_ranges,
    overlaps,
    run_match,
    seed_clusters,
    summarise,
)
from auditkit.text import ngram_hashes

#: Batches whose jobs are ordered shard by shard: an executor that groups consecutive jobs
#: into one task (Ray: up to 16) then gives each task one shard, or two where its group
#: crosses a shard boundary, instead of every shard. The driver holds one wave's phase A
#: answers (the postings) at a time.
WAVE = 16

# -- loading shards in workers ---------------------------------------------------------

_LOADED: dict[str, Any] = {}


def _load(ref: Any, kind: type) -> Any:
    """A shard passed as itself, or memory-mapped (once per process) from its folder."""
    if isinstance(ref, kind):
        return ref
    folder = Path(ref)
    if _LOADED and not any(Path(k).parent == folder.parent for k in _LOADED):
        _LOADED.clear()  # a new index: drop the previous run's maps
    if ref not in _LOADED:
        _LOADED[ref] = kind.load(folder)
    return _LOADED[ref]


def gram_shard_for(ref: GramShard | str) -> GramShard:
    """The gram shard a job refers to (object, or saved folder to memory-map)."""
    return _load(ref, GramShard)


def record_shard_for(ref: RecordShard | str) -> RecordShard:
    """The record shard a job refers to (object, or saved folder to memory-map)."""
    return _load(ref, RecordShard)


# -- phase 0: encode -------------------------------------------------------------------


@dataclass(frozen=True)
class QueryBatch:
    """A batch of synthetic records: encodings and their n-gram hashes, concatenated."""

    encodings: list[Encoded]
    unique: list[Any]  # per record: its distinct seed n-gram hashes, sorted (for Jaccard)
    seed: Any  # uint64[S] seed n-gram hashes of every record, in record order
    seed_offset: Any  # int64[B+1] where each record's seed n-grams begin
    exact: Any  # uint64[X] exact n-gram hashes
    exact_offset: Any  # int64[B+1]


def _concat(parts: list[Any]) -> tuple[Any, Any]:
    import numpy as np

    offset = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offset[1:])
    joined = np.concatenate(parts) if parts else np.empty(0, np.uint64)
    return joined.astype(np.uint64, copy=False), offset


def encode_queries(args: tuple[Sequence[str], int, int]) -> QueryBatch:
    """Phase 0 job: encode a batch of texts and hash its seed and exact n-grams."""
    import numpy as np

    texts, seed_n, exact_n = args
    encodings = [encode(t) for t in texts]
    seeds = [ngram_hashes(e.tokens, seed_n) for e in encodings]
    unique = [np.unique(s) for s in seeds]
    seed, seed_offset = _concat(seeds)
    exact, exact_offset = _concat([ngram_hashes(e.tokens, exact_n) for e in encodings])
    return QueryBatch(encodings, unique, seed, seed_offset, exact, exact_offset)


# -- phase A: look up in one gram shard ------------------------------------------------


@dataclass(frozen=True)
class ShardAnswer:
    """A gram shard's answer for the query n-grams in its range."""

    found: Any  # bool[Q]
    df: Any  # int32[Q], 0 where not found
    first_record: Any  # int32[Q] first posting of each found gram (-1 if not found)
    first_pos: Any  # int32[Q]
    wanted: Any  # int32[W] the query grams whose postings are returned (df <= cap)
    counts: Any  # int32[W] how many postings each has (run lengths: no per-posting owner)
    post_record: Any  # int32[P] their postings, gram after gram
    post_pos: Any  # int32[P]
    exact_df: Any  # int32[X] df of each query exact n-gram (0 if none)


def answer(shard: GramShard, seed: Any, exact: Any, cap: int) -> ShardAnswer:
    """Look the query's n-grams (all in ``shard``'s range) up in the shard."""
    import numpy as np

    loc, found = shard.lookup(seed)
    if len(shard.grams):
        df = np.where(found, np.asarray(shard.df)[loc], 0).astype(np.int32)
        head = np.asarray(shard.block_start)[loc]
        first_record = np.where(found, np.asarray(shard.post_record)[head], -1).astype(np.int32)
        first_pos = np.where(found, np.asarray(shard.post_pos)[head], -1).astype(np.int32)
    else:
        df = np.zeros(len(seed), np.int32)
        first_record = first_pos = np.full(len(seed), -1, np.int32)
    wanted = np.flatnonzero(found & (df <= cap))
    _, post_record, post_pos = expand_postings(shard, loc[wanted])
    counts = np.asarray(shard.block_end)[loc[wanted]] - np.asarray(shard.block_start)[loc[wanted]]
    return ShardAnswer(
        found=found, df=df, first_record=first_record, first_pos=first_pos,
        wanted=wanted.astype(np.int32), counts=counts.astype(np.int32),
        post_record=np.asarray(post_record, np.int32), post_pos=np.asarray(post_pos, np.int32),
        exact_df=np.asarray(shard.exact_frequency(exact), np.int32),
    )  # fmt: skip


def lookup_job(args: tuple[Any, Any, GramShard | str, int]) -> ShardAnswer:
    """Phase A job: (seed hashes, exact hashes, gram shard or its folder, df cap)."""
    seed, exact, ref, cap = args
    return answer(gram_shard_for(ref), seed, exact, cap)


# -- phase B: merge, per synthetic record ----------------------------------------------


def _no_seeds() -> tuple[Any, Any, Any]:
    import numpy as np

    return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int32)


@dataclass
class RecordPlan:
    """What one synthetic record needs from the record shards, and its exact-gram df."""

    exact_df: Any
    # Seeds (synthetic position, source record, source position) in records with at least
    # min_seeds of them, in the unsharded order; clustered on the record shards.
    seeds: tuple[Any, Any, Any] = field(default_factory=_no_seeds)
    dcr: list[int] = field(default_factory=list)  # candidate source records, ascending
    runs: list[tuple[int, int, int, int]] = field(default_factory=list)  # start, end, rec, j


@dataclass(frozen=True)
class Request:
    """The work one synthetic record asks of one record shard (indexes into its plan)."""

    record: int  # the synthetic record's position in its batch
    seeds: tuple[Any, Any, Any]  # the plan's seeds in source records the shard owns
    dcr: tuple[int, ...]  # source records to compute the Jaccard with
    runs: tuple[tuple[int, int, int, int, int], ...]  # (number, start, end, source, j)


def merge_batch(
    query: QueryBatch, parts: list[tuple[Any, Any, ShardAnswer]], p: MatchParams
) -> list[RecordPlan]:
    """Scatter the shards' answers back to query positions; plan each record's phase C.

    ``parts`` holds, per gram shard asked, the query positions (seed, exact) it was
    given and its answer.
    """
    import numpy as np

    size = len(query.seed)
    found = np.zeros(size, dtype=bool)
    df = np.zeros(size, dtype=np.int32)
    first_record = np.full(size, -1, dtype=np.int32)
    first_pos = np.full(size, -1, dtype=np.int32)
    exact_df = np.zeros(len(query.exact), dtype=np.int32)
    owners, records, positions = [], [], []
    for seed_at, exact_at, ans in parts:
        found[seed_at], df[seed_at] = ans.found, ans.df
        first_record[seed_at], first_pos[seed_at] = ans.first_record, ans.first_pos
        exact_df[exact_at] = ans.exact_df
        owners.append(np.repeat(seed_at[ans.wanted], ans.counts))
        records.append(ans.post_record)
        positions.append(ans.post_pos)
    owner = np.concatenate(owners) if owners else np.empty(0, np.int64)
    # Stable: a gram's postings come from one shard, already in (record, position) order.
    order = np.argsort(owner, kind="stable")
    owner = owner[order]
    post_record = np.concatenate(records)[order] if records else np.empty(0, np.int32)
    post_pos = np.concatenate(positions)[order] if positions else np.empty(0, np.int32)
    bounds = np.searchsorted(owner, query.seed_offset)

    plans = []
    for i in range(len(query.encodings)):
        s0, s1 = int(query.seed_offset[i]), int(query.seed_offset[i + 1])
        p0, p1 = int(bounds[i]), int(bounds[i + 1])
        x0, x1 = int(query.exact_offset[i]), int(query.exact_offset[i + 1])
        plan = RecordPlan(exact_df=exact_df[x0:x1])
        local_df = df[s0:s1]
        at = owner[p0:p1] - s0
        sr, sj = post_record[p0:p1], post_pos[p0:p1]
        posting_df = local_df[at]
        seed = posting_df <= p.seed_max_df
        plan.seeds = enough_seeds(at[seed], sr[seed], sj[seed], p)
        usable = sr[posting_df <= p.dcr_df_cap]
        if len(usable) and s1 > s0:
            plan.dcr = dcr_candidates(usable, p)
        common = found[s0:s1] & (local_df > p.seed_max_df)
        plan.runs = [
            (start, end, int(first_record[s0 + start]), int(first_pos[s0 + start]))
            for start, end in common_runs(common, p)
        ]
        plans.append(plan)
    return plans


def route(plans: list[RecordPlan], firsts: Any) -> dict[int, list[Request]]:
    """Group the batch's phase C work by the record shard owning each source record.

    ``firsts`` holds each record shard's first record id, ascending
    (:meth:`ShardedIndex.record_firsts`). A record's seeds are split by owner keeping
    their order: clustering is per source record, so each shard clusters its part
    exactly as the unsharded matcher would.
    """
    import numpy as np

    def owner(record: int) -> int:
        return int(record_owner(firsts, record))

    by_shard: dict[int, dict[int, tuple[Any, list[Any], list[Any]]]] = {}
    for i, plan in enumerate(plans):

        def work(shard: int, i: int = i) -> tuple[Any, list[Any], list[Any]]:
            return by_shard.setdefault(shard, {}).setdefault(i, ([], [], []))

        si, sr, sj = plan.seeds
        if len(sr):
            shard_ids = record_owner(firsts, sr)
            for shard in np.unique(shard_ids).tolist():
                mine = shard_ids == shard
                work(shard)[0].append((si[mine], sr[mine], sj[mine]))
        for record in plan.dcr:
            work(owner(record))[1].append(record)
        for r, (start, end, record, j) in enumerate(plan.runs):
            work(owner(record))[2].append((r, start, end, record, j))
    empty = _no_seeds()
    return {
        shard: [
            Request(i, seeds[0] if seeds else empty, tuple(d), tuple(r))
            for i, (seeds, d, r) in sorted(work.items())
        ]
        for shard, work in sorted(by_shard.items())
    }


# -- phase C: align in one record shard ------------------------------------------------

#: Per request: aligned clusters in cluster order (passage or None, longest identical
#: run), Jaccards (source record, similarity), extended runs (number, length).
Aligned = tuple[list[tuple[Match | None, int]], list[tuple[int, float]], list[tuple[int, int]]]


def align_requests(
    shard: RecordShard,
    tokens: Sequence[Any],
    unique: Sequence[Any],
    requests: Sequence[Request],
    p: MatchParams,
) -> list[Aligned]:
    """Do the requests' alignments, Jaccards and run extensions with the shard's records.

    ``tokens`` and ``unique`` hold, per synthetic record of the batch, its token hashes
    and its distinct seed n-grams.
    """
    out = []
    for req in requests:
        mine = tokens[req.record]
        clusters = [
            align_cluster(mine, shard.record_tokens(rec), rec, members, p)
            for rec, members in seed_clusters(*req.seeds, p)
        ]
        grams = unique[req.record]
        jaccards = [(rec, jaccard(grams, shard.record_tokens(rec), p)) for rec in req.dcr]
        runs = [
            (r, extend_run(mine, start, end, shard.record_tokens(rec), j))
            for r, start, end, rec, j in req.runs
        ]
        out.append((clusters, jaccards, runs))
    return out


def align_job(
    args: tuple[Sequence[Any], Sequence[Any], Sequence[Request], RecordShard | str, MatchParams],
) -> list[Aligned]:
    """Phase C job: the batch's tokens and distinct seed n-grams, requests, shard, params.

    The shard is the record shard itself or the folder it was saved in.
    """
    tokens, unique, requests, ref, p = args
    return align_requests(record_shard_for(ref), tokens, unique, requests, p)


# -- phase D: assemble -----------------------------------------------------------------


def assemble(
    enc: Encoded, plan: RecordPlan, aligned: list[Aligned], exact_n: int, p: MatchParams
) -> RecordOverlap:
    """One record's result from its plan and the record shards' answers (phase D).

    ``aligned`` is in record shard order: shards own ascending record ranges and cluster
    per record, so their clusters in that order are the unsharded cluster order.
    """
    similarity: dict[int, float] = {}
    lengths: dict[int, int] = {}
    candidates: list[Match] = []
    alike: list[Match] = []
    longest_any = 0
    for done, jaccards, runs in aligned:
        similarity.update(jaccards)
        lengths.update(runs)
        for found, exact_run in done:
            longest_any = max(longest_any, exact_run)
            if found is not None:
                (alike if found.kind == "alike" else candidates).append(found)
    judged, boilerplate_passages = judge_record(
        len(enc.tokens), candidates, alike, plan.exact_df, exact_n, p
    )
    leaks = leak_ranges(judged)
    runs = []
    for r, (start, end, record, j) in enumerate(plan.runs):
        if overlaps(start, end, leaks) or lengths[r] < p.min_exact_tokens:
            continue
        runs.append(run_match(record, start, j, lengths[r]))
    dcr = closest(plan.dcr, [similarity[r] for r in plan.dcr]) if plan.dcr else (0.0, -1)
    return summarise(judged, boilerplate_passages, runs, longest_any, plan.exact_df, dcr, p)


# -- the driver ------------------------------------------------------------------------


def match_sharded(
    batches: Sequence[Sequence[str]],
    index: ShardedIndex,
    gram_refs: Sequence[GramShard | str],
    record_refs: Sequence[RecordShard | str],
    p: MatchParams,
    map_fn: MapFn,
    on_batch: Callable[[int], None] | None = None,
) -> list[list[tuple[Encoded, RecordOverlap]]]:
    """Match batches of texts against a sharded index; per batch, ``(encoding, result)``.

    The same pairs :func:`auditkit.checks.overlap.match_batch` returns with the unsharded
    index. ``gram_refs[k]`` / ``record_refs[r]`` is what a job gets for shard k / r: the
    shard, or its saved folder. ``on_batch`` is called with each batch's size as it is
    assembled (progress).
    """
    queries = list(map_fn(encode_queries, [(list(b), index.n, index.exact_n) for b in batches]))
    bounds = index.bounds
    shards = len(index.gram_shards)
    cap = max(p.seed_max_df, p.dcr_df_cap)
    waves = [range(w, min(w + WAVE, len(queries))) for w in range(0, len(queries), WAVE)]

    # Phase A: one job per (batch, gram shard) the batch has n-grams in, shard by shard
    # within each wave of batches.
    splits = [
        (_split(shard_of(q.seed, bounds), shards), _split(shard_of(q.exact, bounds), shards))
        for q in queries
    ]
    meta: list[tuple[int, int, Any, Any]] = []
    jobs = []
    for w, wave in enumerate(waves):
        for k in range(shards):
            for b in wave:
                seed_at, exact_at = splits[b][0][k], splits[b][1][k]
                if len(seed_at) or len(exact_at):
                    meta.append((w, b, seed_at, exact_at))
                    query = queries[b]
                    jobs.append((query.seed[seed_at], query.exact[exact_at], gram_refs[k], cap))
    del splits
    answers: list[list[tuple[Any, Any, ShardAnswer]]] = [[] for _ in queries]
    plans: list[list[RecordPlan]] = []

    def merge_wave(w: int) -> None:
        for b in waves[w]:
            plans.append(merge_batch(queries[b], answers[b], p))
            answers[b] = []

    done = 0
    for (w, b, seed_at, exact_at), ans in zip(meta, map_fn(lookup_job, jobs), strict=True):
        while done < w:  # every earlier wave has all its answers: merge it
            merge_wave(done)
            done += 1
        answers[b].append((seed_at, exact_at, ans))
    for w in range(done, len(waves)):
        merge_wave(w)
    del meta, jobs

    # Phase C: one job per (batch, record shard) the batch's plans ask something of, shard
    # by shard within each wave. A record's answers thus arrive in record shard order.
    firsts = index.record_firsts()
    routes = [route(batch_plans, firsts) for batch_plans in plans]
    # One object each per batch, shared by its jobs (Ray puts each in its store once).
    tokens = [[e.tokens for e in q.encodings] for q in queries]
    c_meta: list[tuple[int, int, list[Request]]] = []
    c_jobs = []
    for w, wave in enumerate(waves):
        for r in range(len(index.record_shards)):
            for b in wave:
                if r in routes[b]:
                    c_meta.append((w, b, routes[b][r]))
                    c_jobs.append((tokens[b], queries[b].unique, routes[b][r], record_refs[r], p))
    del routes
    aligned: list[list[list[Aligned]]] = [[[] for _ in q.encodings] for q in queries]
    out: list[list[tuple[Encoded, RecordOverlap]]] = []

    def finish_wave(w: int) -> None:
        for b in waves[w]:
            query = queries[b]
            out.append([
                (enc, assemble(enc, plan, got, index.exact_n, p))
                for enc, plan, got in zip(query.encodings, plans[b], aligned[b], strict=True)
            ])  # fmt: skip
            aligned[b] = []
            if on_batch is not None:
                on_batch(len(query.encodings))

    done = 0
    for (w, b, requests), got in zip(c_meta, map_fn(align_job, c_jobs), strict=True):
        while done < w:
            finish_wave(done)
            done += 1
        for req, res in zip(requests, got, strict=True):
            aligned[b][req.record].append(res)
    for w in range(done, len(waves)):
        finish_wave(w)
    return out


def _split(shard_ids: Any, shards: int) -> list[Any]:
    """Positions of each shard's entries (ascending), from a shard id per entry."""
    import numpy as np

    order = np.argsort(shard_ids, kind="stable")
    cuts = np.cumsum(np.bincount(shard_ids, minlength=shards))[:-1]
    return np.split(order, cuts)
