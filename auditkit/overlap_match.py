"""Passage-level matching of one synthetic record against the source n-gram index.

Owns the algorithm behind the ``overlap`` check, as pure functions of an encoded record
and a read-only :class:`~auditkit.ngram_index.SourceIndex`:

1. **Seeds.** Every ``n``-gram (default 4 words) of the record that occurs in at most
   ``seed_max_df`` source records is a seed; its postings say where. With up to 20% of
   tokens edited, a copied passage still has a run of four untouched words between any
   two edits, so 4-gram seeds survive every edit pattern up to 20%.
2. **Clusters.** Seeds in one source record (records with fewer than ``min_seeds`` seeds
   are not worth aligning) that lie on nearby diagonals (source position - synthetic
   position) and close together form one candidate passage.
3. **Alignment.** The candidate is extended word by word while both sides agree, then
   aligned with rapidfuzz's Levenshtein opcodes over the token sequences; unmatched edges
   are trimmed. Identical passages are *exact* matches; others are *near* matches with
   similarity = 1 - edit distance / length.
4. **Boilerplate.** A passage's *support* is the number of distinct source records that
   hold it (a match covering at least ``support_overlap`` of it). Support >= ``k`` means
   every clinician writes it: it identifies nobody and is discounted, not a leak. Runs of
   n-grams too common to seed from are discounted boilerplate too.

Nothing here reads policy thresholds; the ``leak`` flag applies the check's own
definitions (``min_exact_tokens``, ``near_min_tokens``, ``near_similarity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auditkit.ngram_index import Encoded, SourceIndex
from auditkit.text import ngram_hashes

#: Shortest run of shared words kept at either edge of an aligned passage.
MIN_EDGE_RUN = 2


@dataclass(frozen=True)
class MatchParams:
    """The matching definitions (copied from the check's config)."""

    seed_n: int = 4
    boilerplate_k: int = 5
    seed_max_df: int = 50
    min_seeds: int = 3
    support_overlap: float = 0.8
    support_similarity: float = 0.6
    boilerplate_coverage: float = 0.9
    max_gap: int = 12
    max_shift: int = 8
    min_exact_tokens: int = 20
    near_min_copied: int = 24
    near_similarity: float = 0.8
    max_matches: int = 20
    dcr_df_cap: int = 100
    dcr_candidates: int = 10


@dataclass(frozen=True)
class Match:
    """One copied or near-copied passage: token ranges on both sides and how alike they are."""

    kind: str  # "exact" | "near"
    source: int
    start: int  # synthetic token range [start, end)
    end: int
    source_start: int
    source_end: int
    similarity: float
    exact_run: int
    support: int  # distinct source records holding this passage
    boilerplate: bool
    leak: bool

    @property
    def tokens(self) -> int:
        """Length of the passage in synthetic-side words."""
        return self.end - self.start


@dataclass(frozen=True)
class RecordOverlap:
    """Everything the check reports about one synthetic record."""

    matches: tuple[Match, ...]
    max_exact_tokens: int
    longest_rare_span: int
    exact_fraction: float
    boilerplate_discounted: int
    dcr_similarity: float
    dcr_source: int  # -1 when nothing in the source shares a rare-enough n-gram

    @property
    def leak(self) -> bool:
        """True when any match is a leak."""
        return any(m.leak for m in self.matches)


def expand_postings(index: Any, locs: Any) -> tuple[Any, Any, Any]:
    """For gram indexes ``locs``: (query offset, record, position) of every posting.

    ``index`` is a :class:`SourceIndex` or one gram shard of a sharded index (anything
    with ``block_start``, ``block_end``, ``post_record`` and ``post_pos``).
    """
    import numpy as np

    starts = np.asarray(index.block_start[locs], dtype=np.int64)
    ends = np.asarray(index.block_end[locs], dtype=np.int64)
    counts = ends - starts
    owner = np.repeat(np.arange(len(locs)), counts)
    if not len(owner):
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    flat = starts[owner] + within
    return owner, np.asarray(index.post_record[flat]), np.asarray(index.post_pos[flat])


def seed_clusters(
    si: Any, sr: Any, sj: Any, p: MatchParams
) -> list[tuple[int, list[tuple[int, int]]]]:
    """Group seeds (synthetic pos, record, source pos) into candidate passages per record."""
    import numpy as np

    order = np.lexsort((sj, si, sr))  # by record, then synthetic position
    clusters: list[tuple[int, list[tuple[int, int]]]] = []
    live: list[int] = []  # clusters of the current record that can still grow
    current = -1
    for i, r, j in zip(si[order].tolist(), sr[order].tolist(), sj[order].tolist(), strict=True):
        if r != current:
            current, live = r, []
        live = [c for c in live if i - clusters[c][1][-1][0] <= p.max_gap]
        for c in live:
            last_i, last_j = clusters[c][1][-1]
            same_diagonal = abs((j - i) - (last_j - last_i)) <= p.max_shift
            if same_diagonal and j >= last_j:  # monotone on the source side too
                clusters[c][1].append((i, j))
                break
        else:
            live.append(len(clusters))
            clusters.append((r, [(i, j)]))
    return clusters


def _align(a: list[int], b: list[int]) -> tuple[int, int, int, int, float, int, int]:
    """Trim unmatched edges of an alignment.

    Returns the kept ranges, the similarity, the longest identical run, and the number of
    words the two sides share in the alignment (the amount of copied text).
    """
    from rapidfuzz.distance import Levenshtein

    equal = [op for op in Levenshtein.opcodes(a, b) if op.tag == "equal"]
    # A lone shared word at the far edge ("the", "and") is chance, not copying.
    while len(equal) > 1 and equal[0].src_end - equal[0].src_start < MIN_EDGE_RUN:
        equal = equal[1:]
    while len(equal) > 1 and equal[-1].src_end - equal[-1].src_start < MIN_EDGE_RUN:
        equal = equal[:-1]
    if not equal:
        return 0, 0, 0, 0, 0.0, 0, 0
    first, last = equal[0], equal[-1]
    a0, a1, b0, b1 = first.src_start, last.src_end, first.dest_start, last.dest_end
    similarity = Levenshtein.normalized_similarity(a[a0:a1], b[b0:b1])
    longest = max(op.src_end - op.src_start for op in equal)
    copied = sum(op.src_end - op.src_start for op in equal)
    return a0, a1, b0, b1, similarity, longest, copied


def _candidates(
    tokens: Any, index: SourceIndex, si: Any, sr: Any, sj: Any, p: MatchParams
) -> tuple[list[Match], list[Match], int]:
    """Align every seed cluster.

    Returns the copies (long and alike enough to be leaks if not boilerplate), the looser
    look-alikes (same template, other details: they only count towards a passage's
    support), and the longest identical run seen.
    """
    out: list[Match] = []
    alike: list[Match] = []
    longest = 0
    si, sr, sj = enough_seeds(si, sr, sj, p)
    for record, members in seed_clusters(si, sr, sj, p):
        found, exact_run = align_cluster(tokens, index.record_tokens(record), record, members, p)
        longest = max(longest, exact_run)
        if found is not None:
            (alike if found.kind == "alike" else out).append(found)
    return out, alike, longest


def enough_seeds(si: Any, sr: Any, sj: Any, p: MatchParams) -> tuple[Any, Any, Any]:
    """The seeds in source records holding at least ``min_seeds`` of them.

    A copied passage leaves many seeds in its source record; a record sharing a phrase or
    two with the synthetic one is not worth aligning.
    """
    import numpy as np

    if not len(sr):
        return si, sr, sj
    counts = np.bincount(sr)
    keep = counts[sr] >= p.min_seeds
    return si[keep], sr[keep], sj[keep]


def align_cluster(
    tokens: Any, src: Any, record: int, members: list[tuple[int, int]], p: MatchParams
) -> tuple[Match | None, int]:
    """Extend and align one seed cluster against its source record's tokens ``src``.

    Returns the passage (``kind`` "exact" or "near" for a copy, "alike" for a look-alike
    that only counts towards support; None when nothing is worth keeping) and the longest
    identical run of the alignment. Needs only the two token arrays, so it runs wherever
    the source record's tokens are (the sharded index aligns on the record's shard).
    """
    i0, j0 = members[0]
    i1, j1 = members[-1][0] + p.seed_n, members[-1][1] + p.seed_n
    while i0 > 0 and j0 > 0 and tokens[i0 - 1] == src[j0 - 1]:
        i0, j0 = i0 - 1, j0 - 1
    while i1 < len(tokens) and j1 < len(src) and tokens[i1] == src[j1]:
        i1, j1 = i1 + 1, j1 + 1
    # An edit right at a seed's edge stops exact extension; a margin on both sides lets
    # the alignment carry the passage across it, and trimming drops what is not copied.
    i0, j0 = max(0, i0 - p.max_gap), max(0, j0 - p.max_gap)
    i1, j1 = min(len(tokens), i1 + p.max_gap), min(len(src), j1 + p.max_gap)
    a, b = tokens[i0:i1].tolist(), src[j0:j1].tolist()
    a0, a1, b0, b1, similarity, exact_run, copied = _align(a, b)
    if a1 - a0 <= 0:
        return None, exact_run
    start, end, s_start, s_end = i0 + a0, i0 + a1, j0 + b0, j0 + b1
    identical = a[a0:a1] == b[b0:b1]
    if identical and end - start >= p.min_exact_tokens:
        kind = "exact"
    elif not identical and copied >= p.near_min_copied and similarity >= p.near_similarity:
        kind = "near"
    elif exact_run >= p.min_exact_tokens:
        # Not alike enough as a whole, but it holds a long verbatim run: report that.
        op = _longest_equal(a[a0:a1], b[b0:b1])
        start, end = i0 + a0 + op[0], i0 + a0 + op[1]
        s_start, s_end = j0 + b0 + op[2], j0 + b0 + op[3]
        kind, similarity = "exact", 1.0
    else:
        if similarity >= p.support_similarity and end - start >= p.min_exact_tokens:
            return Match("alike", record, start, end, s_start, s_end, float(similarity),
                         exact_run, 0, False, False), exact_run  # fmt: skip
        return None, exact_run
    return Match(kind, record, start, end, s_start, s_end, float(similarity), exact_run,
                 1, False, True), exact_run  # fmt: skip


def _judge(
    candidates: list[Match], alike: list[Match], covered: Any, p: MatchParams
) -> tuple[list[Match], int]:
    """Split candidate passages into leaks and boilerplate by how many records hold them.

    Longest passages first: a passage's *support* is the number of distinct source
    records holding it, as a copy or as a look-alike (the same template with other
    details, similarity >= ``support_similarity``), over at least ``support_overlap`` of
    its words. Support >= k means the passage is boilerplate or a template: it identifies
    nobody. Otherwise each copy is a leak. Matches inside a judged passage are absorbed.
    """
    judged: list[Match] = []
    boilerplate_passages = 0
    pending = sorted(candidates, key=lambda m: (-m.tokens, -m.similarity, m.source, m.start))
    while pending:
        top = pending[0]

        def covers(m: Match, top: Match = top) -> bool:
            inter = min(m.end, top.end) - max(m.start, top.start)
            return inter >= p.support_overlap * top.tokens

        supporting = [m for m in pending if covers(m)]
        records = {m.source for m in supporting} | {m.source for m in alike if covers(m)}
        stock = covered[top.start : top.end].mean() >= p.boilerplate_coverage
        is_boilerplate = len(records) >= p.boilerplate_k or stock
        if is_boilerplate:
            boilerplate_passages += 1
            judged.append(_with(top, support=len(records), boilerplate=True, leak=False))
        else:
            best: dict[int, Match] = {}
            for m in supporting:
                if m.source not in best:
                    best[m.source] = m
            judged.extend(_with(m, support=len(records), boilerplate=False, leak=True)
                          for m in best.values())  # fmt: skip

        def inside(m: Match, top: Match = top) -> bool:
            inter = min(m.end, top.end) - max(m.start, top.start)
            return inter >= p.support_overlap * m.tokens

        pending = [m for m in pending if not covers(m) and not inside(m)]
    return sorted(judged, key=lambda m: (not m.leak, m.start, m.source)), boilerplate_passages


def _stock_coverage(length: int, exact_df: Any, n: int, p: MatchParams) -> Any:
    """Per token: does it lie inside an ``n``-gram found in at least k source records?

    A passage made (almost) entirely of such stock phrases, e.g. two boilerplate
    sentences in a row, identifies nobody even when the combination itself is rare.
    """
    import numpy as np

    covered = np.zeros(length, dtype=bool)
    for start in np.flatnonzero(exact_df >= p.boilerplate_k):
        covered[start : start + n] = True
    return covered


def _with(m: Match, *, support: int, boilerplate: bool, leak: bool) -> Match:
    return Match(m.kind, m.source, m.start, m.end, m.source_start, m.source_end, m.similarity,
                 m.exact_run, support, boilerplate, leak)  # fmt: skip


def match_record(enc: Encoded, index: SourceIndex, p: MatchParams) -> RecordOverlap:
    """Find every copied or near-copied passage of one synthetic record in the source."""
    import numpy as np

    tokens = enc.tokens
    grams = ngram_hashes(tokens, p.seed_n)
    loc, found = index.lookup(grams)
    df = np.where(found, np.asarray(index.df)[loc] if len(index.df) else 0, 0)
    seeds = np.flatnonzero(found & (df <= p.seed_max_df))
    owner, sr, sj = expand_postings(index, loc[seeds])
    si = seeds[owner] if len(owner) else owner
    candidates, alike, longest_any = _candidates(tokens, index, si, sr, sj, p)
    exact_df = index.exact_frequency(ngram_hashes(tokens, index.exact_n))
    judged, boilerplate_passages = judge_record(
        len(tokens), candidates, alike, exact_df, index.exact_n, p
    )
    leaks = leak_ranges(judged)
    # Phrases too common to seed from (df > seed_max_df) are boilerplate by construction;
    # long runs of them are counted as discounted matches too.
    runs = []
    for start, end in common_runs(found & (df > p.seed_max_df), p):
        if overlaps(start, end, leaks):
            continue
        first = int(loc[start])
        record = int(index.post_record[index.block_start[first]])
        j = int(index.post_pos[index.block_start[first]])
        length = extend_run(tokens, start, end, index.record_tokens(record), j)
        if length >= p.min_exact_tokens:
            runs.append(run_match(record, start, j, length))
    usable = found & (df <= p.dcr_df_cap)
    dcr = 0.0, -1
    if usable.any() and len(grams):
        _, records, _ = expand_postings(index, loc[np.flatnonzero(usable)])
        mine = np.unique(grams)
        top = dcr_candidates(records, p)
        dcr = closest(top, [jaccard(mine, index.record_tokens(r), p) for r in top])
    return summarise(judged, boilerplate_passages, runs, longest_any, exact_df, dcr, p)


def judge_record(
    length: int, candidates: list[Match], alike: list[Match], exact_df: Any, exact_n: int,
    p: MatchParams,
) -> tuple[list[Match], int]:  # fmt: skip
    """:func:`_judge` with the record's stock-phrase coverage from its exact-gram df."""
    return _judge(candidates, alike, _stock_coverage(length, exact_df, exact_n, p), p)


def leak_ranges(judged: list[Match]) -> list[tuple[int, int]]:
    """Synthetic token ranges of the judged leaks (boilerplate runs must stay outside)."""
    return [(m.start, m.end) for m in judged if m.leak]


def overlaps(start: int, end: int, ranges: list[tuple[int, int]]) -> bool:
    """Does ``[start, end)`` intersect any of ``ranges``?"""
    return any(start < e and end > s for s, e in ranges)


def summarise(
    judged: list[Match],
    boilerplate_passages: int,
    runs: list[Match],
    longest_any: int,
    exact_df: Any,
    dcr: tuple[float, int],
    p: MatchParams,
) -> RecordOverlap:
    """The record's result from its judged passages, boilerplate runs and closest record."""
    longest_any = max([longest_any] + [m.tokens for m in runs])
    reported = sorted(judged + runs, key=lambda m: (not m.leak, -m.tokens, m.start))
    fraction = float((exact_df > 0).mean()) if len(exact_df) else 0.0
    rare_spans = [m.exact_run if m.kind == "near" else m.tokens for m in judged if m.leak]
    return RecordOverlap(
        matches=tuple(reported[: p.max_matches]),
        max_exact_tokens=int(longest_any),
        longest_rare_span=int(max(rare_spans, default=0)),
        exact_fraction=fraction,
        boilerplate_discounted=boilerplate_passages + len(runs),
        dcr_similarity=dcr[0],
        dcr_source=dcr[1],
    )


def _longest_equal(a: list[int], b: list[int]) -> tuple[int, int, int, int]:
    from rapidfuzz.distance import Levenshtein

    best = max(
        (op for op in Levenshtein.opcodes(a, b) if op.tag == "equal"),
        key=lambda op: op.src_end - op.src_start,
    )
    return best.src_start, best.src_end, best.dest_start, best.dest_end


def common_runs(common: Any, p: MatchParams) -> list[tuple[int, int]]:
    """Token ranges of the runs of common n-grams (``common`` per position) long enough.

    A run shorter than ``min_exact_tokens`` cannot become a discounted match, so only the
    longer ones are returned (each still to be extended against a source record).
    """
    import numpy as np

    positions = np.flatnonzero(common)
    if not len(positions):
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1)
    run_starts = np.r_[positions[0], positions[breaks + 1]]
    run_ends = np.r_[positions[breaks], positions[-1]] + p.seed_n
    return [
        (start, end)
        for start, end in zip(run_starts.tolist(), run_ends.tolist(), strict=True)
        if end - start >= p.min_exact_tokens
    ]


def extend_run(tokens: Any, start: int, end: int, src: Any, j: int) -> int:
    """Words of ``tokens[start:end]`` equal to ``src`` from position ``j`` on, in a row.

    The run is followed in the source record holding its first n-gram's first posting.
    """
    length = 0
    while (
        start + length < end
        and j + length < len(src)
        and (tokens[start + length] == src[j + length])
    ):
        length += 1
    return length


def run_match(record: int, start: int, j: int, length: int) -> Match:
    """A run of common n-grams as a discounted (boilerplate, never leak) exact match."""
    return Match("exact", record, start, start + length, j, j + length, 1.0, length, 0, True, False)


def dcr_candidates(records: Any, p: MatchParams) -> list[int]:
    """Distance to closest record, step 1: the candidate source records, ascending.

    ``records`` holds the record of every posting of the query's n-grams that occur in
    at most ``dcr_df_cap`` records (very common n-grams say nothing about which record is
    closest and would make every record a candidate); the candidates are the
    ``dcr_candidates`` records sharing the most of them (ties to the lower record id).
    """
    import numpy as np

    ids, counts = np.unique(records, return_counts=True)
    top = ids[np.argsort(-counts, kind="stable")[: p.dcr_candidates]]
    return sorted(int(r) for r in top)


def jaccard(mine: Any, src: Any, p: MatchParams) -> float:
    """Step 2: exact Jaccard of the query's unique n-grams ``mine`` and a source record's."""
    import numpy as np

    theirs = np.unique(ngram_hashes(src, p.seed_n))
    inter = len(np.intersect1d(mine, theirs, assume_unique=True))
    return inter / (len(mine) + len(theirs) - inter)


def closest(candidates: list[int], similarities: list[float]) -> tuple[float, int]:
    """Step 3: the best Jaccard and its record (the lowest id on a tie; -1 if all are 0)."""
    best, best_record = 0.0, -1
    for record, similarity in zip(candidates, similarities, strict=True):
        if similarity > best:
            best, best_record = similarity, record
    return float(best), best_record
