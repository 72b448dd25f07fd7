"""The source n-gram index split into shards, for a source too large for one worker.

Owns the sharded form of :class:`~auditkit.ngram_index.SourceIndex`: the same arrays,
cut two ways so that no worker needs all of them.

* **Gram shards** (``K``): equal-width ranges of the uint64 hash space. Shard ``k``
  holds, for the seed n-grams whose hash falls in its range, the sorted unique hashes,
  their posting blocks, document frequencies and postings (record, position), and the
  exact-n-gram table for the exact-gram hashes in the same range. A gram lives in exactly
  one shard, so its df there is its global df, and its postings are the global ones in
  the same order (record, then position).
* **Record shards** (``R``): contiguous ranges of record ids, cut so each holds about the
  same share of the source (:func:`record_cuts`). Shard ``r`` holds the token hashes and
  character offsets of the records it owns; record ids stay global.

What runs where is :mod:`auditkit.sharded_match`'s business; this module only builds,
saves, loads and answers lookups. It must not know about matching parameters beyond the
df cap a lookup is given.

Building (:meth:`ShardedIndex.build`) never concatenates the whole source. The encoded
records arrive as a stream (the overlap check encodes them in executor jobs); they are
appended to the current record shard until it holds the records :func:`record_cuts`
gives it, which is then concatenated, written to the index folder and memory-mapped, and
its encodings dropped. Then one job per gram shard, through the caller's executor, reads
the record shards one at a time (memory-mapped from their folders on a local pool; the
objects, put in Ray's object store once each, otherwise), hashes their n-grams, keeps
those in its hash range and builds the shard: about 2 x 40 bytes per source token / ``K``
while it sorts, plus one record shard's n-gram hashes (about 16 bytes per token of that
record shard). A local pool worker writes its gram shard into the folder itself; from
Ray the shard comes back to the driver, which writes it and memory-maps it. So the K
builds run in parallel on the workers, and the driver's resident memory is one record
shard being assembled (its encodings and their concatenation: about 2 x 16 bytes per
token of one record shard) or one returned gram shard; the whole index only ever exists
on disk (page cache). Each gram shard job hashes the whole source again: K passes of
n-gram hashing in all, spread over the workers. Without a folder every shard stays in
memory (the index's full size, as unsharded).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from auditkit.ngram_index import (
    Encoded,
    _blocks,
    _corpus_grams,
    _record_counts,
    concatenate,
    frequency,
    load_arrays,
    lookup_sorted,
    save_arrays,
)

#: Size of the n-gram hash space (hashes are uint64).
HASH_SPACE = 1 << 64

#: ``map(fn, jobs)`` of an executor: results in job order.
MapFn = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]


def hash_bounds(shards: int) -> list[int]:
    """Boundaries of ``shards`` equal-width hash ranges: shard k is ``[b[k], b[k + 1])``."""
    if shards < 1:
        raise ValueError("shards must be >= 1")
    return [k * HASH_SPACE // shards for k in range(shards + 1)]


def shard_of(hashes: Any, bounds: list[int]) -> Any:
    """The gram shard of each hash (int64 array), for ``bounds`` from :func:`hash_bounds`."""
    import numpy as np

    inner = np.array(bounds[1:-1], dtype=np.uint64)
    return np.searchsorted(inner, hashes, side="right")


def record_owner(firsts: Any, records: Any) -> Any:
    """The record shard of each global record id, given each shard's first id (ascending)."""
    import numpy as np

    return np.searchsorted(firsts, records, side="right") - 1


def _in_range(hashes: Any, low: int, high: int) -> Any:
    """Mask of the hashes in ``[low, high)`` (``high`` may be 2**64)."""
    import numpy as np

    mask = hashes >= np.uint64(low)
    if high < HASH_SPACE:
        mask &= hashes < np.uint64(high)
    return mask


class _Arrays:
    """Shared behaviour of the two shard kinds: size, and pickling without the file map.

    A shard loaded from disk holds memory-mapped arrays; pickling it (to a Ray object
    store) sends the bytes as plain arrays, so the receiving side needs no file.
    """

    ARRAYS: tuple[str, ...] = ()

    def nbytes(self) -> int:
        """Memory held by the shard's arrays."""
        return sum(getattr(self, name).nbytes for name in self.ARRAYS)

    def __getstate__(self) -> dict[str, Any]:
        import numpy as np

        state = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        return {k: np.asarray(v) if k in self.ARRAYS else v for k, v in state.items()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)


@dataclass(eq=False)
class GramShard(_Arrays):
    """The postings and df of the n-grams, and the exact-gram df, of one hash range."""

    shard: int
    low: int  # first hash of the range
    high: int  # one past its last hash (2**64 for the last shard)
    n: int
    exact_n: int
    grams: Any  # uint64[G] sorted unique n-gram hashes in [low, high)
    block_start: Any  # int32|int64[G] first posting of each gram, in this shard's postings
    block_end: Any  # one past its last posting
    df: Any  # int32[G] distinct source records holding the gram (its global df)
    post_record: Any  # int32[P] global record ids
    post_pos: Any  # int32[P]
    exact_grams: Any  # uint64[E] sorted unique exact_n-gram hashes in [low, high)
    exact_df: Any  # int32[E]

    ARRAYS = ("grams", "block_start", "block_end", "df", "post_record", "post_pos",
              "exact_grams", "exact_df")  # fmt: skip

    def lookup(self, grams: Any) -> tuple[Any, Any]:
        """For each query gram (in this range): its index in ``self.grams``, and found."""
        return lookup_sorted(self.grams, grams)

    def exact_frequency(self, grams: Any) -> Any:
        """For each ``exact_n``-gram (in this range): its df, 0 if not in the source."""
        return frequency(self.exact_grams, self.exact_df, grams)

    def save(self, folder: Path) -> None:
        """Write the shard as .npy files for :meth:`load`."""
        params = f"{self.shard} {self.low} {self.high} {self.n} {self.exact_n}"
        save_arrays(self, folder, self.ARRAYS, params)

    @classmethod
    def load(cls, folder: Path) -> GramShard:
        """Memory-map a shard written by :meth:`save` (read-only, shared page cache)."""
        shard, low, high, n, exact_n = (int(v) for v in (folder / "params.txt").read_text().split())
        return cls(shard=shard, low=low, high=high, n=n, exact_n=exact_n,
                   **load_arrays(folder, cls.ARRAYS))  # fmt: skip


@dataclass(eq=False)
class RecordShard(_Arrays):
    """The token arrays of the records ``[first, first + records)``."""

    shard: int
    first: int  # global id of the first record owned
    tokens: Any  # uint64[T] the owned records' tokens, concatenated
    starts: Any  # int32[T]
    ends: Any  # int32[T]
    doc_offset: Any  # int64[D+1] where each owned record's tokens begin in `tokens`

    ARRAYS = ("tokens", "starts", "ends", "doc_offset")

    @property
    def records(self) -> int:
        """Number of records owned."""
        return len(self.doc_offset) - 1

    def owns(self, record: int) -> bool:
        """Whether the global record id ``record`` is in this shard."""
        return self.first <= record < self.first + self.records

    def record_tokens(self, record: int) -> Any:
        """The token hashes of an owned record, by global id (a view, no copy)."""
        local = record - self.first
        return self.tokens[self.doc_offset[local] : self.doc_offset[local + 1]]

    def record_span(self, record: int, start_token: int, end_token: int) -> tuple[int, int]:
        """Character offsets in an owned record of its tokens ``[start_token, end_token)``."""
        base = self.doc_offset[record - self.first]
        return int(self.starts[base + start_token]), int(self.ends[base + end_token - 1])

    def save(self, folder: Path) -> None:
        """Write the shard as .npy files for :meth:`load`."""
        save_arrays(self, folder, self.ARRAYS, f"{self.shard} {self.first}")

    @classmethod
    def load(cls, folder: Path) -> RecordShard:
        """Memory-map a shard written by :meth:`save` (read-only, shared page cache)."""
        shard, first = (int(v) for v in (folder / "params.txt").read_text().split())
        return cls(shard=shard, first=first, **load_arrays(folder, cls.ARRAYS))


@dataclass(eq=False)
class ShardedIndex:
    """A source index as ``K`` gram shards by hash range and ``R`` record shards."""

    n: int
    exact_n: int
    gram_shards: tuple[GramShard, ...]
    record_shards: tuple[RecordShard, ...]

    @property
    def bounds(self) -> list[int]:
        """The hash boundaries of the gram shards (``K + 1`` values)."""
        return [s.low for s in self.gram_shards] + [self.gram_shards[-1].high]

    @property
    def records(self) -> int:
        """Number of source records indexed."""
        return sum(s.records for s in self.record_shards)

    def record_firsts(self) -> Any:
        """First global record id of each record shard (int64[R]), for routing."""
        import numpy as np

        return np.array([s.first for s in self.record_shards], dtype=np.int64)

    def record_shard(self, record: int) -> RecordShard:
        """The record shard owning a global record id."""
        shard = self.record_shards[int(record_owner(self.record_firsts(), record))]
        if not shard.owns(record):
            raise IndexError(f"source record {record} is not in the index")
        return shard

    def record_tokens(self, record: int) -> Any:
        """The token hashes of one source record (a view, no copy)."""
        return self.record_shard(record).record_tokens(record)

    def record_span(self, record: int, start_token: int, end_token: int) -> tuple[int, int]:
        """Character offsets in a source record of its tokens ``[start_token, end_token)``."""
        return self.record_shard(record).record_span(record, start_token, end_token)

    def nbytes(self) -> int:
        """Memory held by all shards' arrays (the whole index)."""
        return sum(s.nbytes() for s in (*self.gram_shards, *self.record_shards))

    # -- files -------------------------------------------------------------------------

    @staticmethod
    def gram_folder(folder: Path, shard: int) -> Path:
        """Where gram shard ``shard`` of an index saved in ``folder`` lives."""
        return folder / f"gram-{shard:04d}"

    @staticmethod
    def record_folder(folder: Path, shard: int) -> Path:
        """Where record shard ``shard`` of an index saved in ``folder`` lives."""
        return folder / f"record-{shard:04d}"

    def save(self, folder: Path) -> None:
        """Write every shard, each in its own sub-folder, for :meth:`load`."""
        folder.mkdir(parents=True, exist_ok=True)
        for shard in self.gram_shards:
            shard.save(self.gram_folder(folder, shard.shard))
        for rshard in self.record_shards:
            rshard.save(self.record_folder(folder, rshard.shard))
        self._write_params(folder)

    def _write_params(self, folder: Path) -> None:
        params = f"{self.n} {self.exact_n} {len(self.gram_shards)} {len(self.record_shards)}\n"
        (folder / "params.txt").write_text(params)

    @classmethod
    def load(cls, folder: Path) -> ShardedIndex:
        """Memory-map every shard of an index written by :meth:`save`."""
        n, exact_n, k, r = (int(v) for v in (folder / "params.txt").read_text().split())
        return cls(
            n=n,
            exact_n=exact_n,
            gram_shards=tuple(GramShard.load(cls.gram_folder(folder, i)) for i in range(k)),
            record_shards=tuple(RecordShard.load(cls.record_folder(folder, i)) for i in range(r)),
        )

    # -- building ----------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        docs: Iterable[Encoded],
        n: int,
        exact_n: int,
        gram_shards: int,
        record_shards: int,
        folder: Path | None = None,
        *,
        sizes: Sequence[int] | Any | None = None,
        map_fn: MapFn = map,
        worker_files: bool = False,
        on_shard: Callable[[int], None] | None = None,
    ) -> ShardedIndex:
        """Build the shards from encoded source records (in record order).

        The same arrays as :meth:`SourceIndex.build <auditkit.ngram_index.SourceIndex.build>`
        cut by hash range and record range, in two steps (module docstring):

        1. Record shards from the stream ``docs``, cut by :func:`record_cuts` of ``sizes``
           (one weight per record; the overlap check gives each text's length in
           characters). Each is finalised (with ``folder``: written and memory-mapped) as
           soon as its last record arrives, so at most one record shard is assembled at a
           time. Without ``sizes`` the records are weighed by their tokens, which needs
           them all first: ``docs`` is materialised (small inputs and tests only).
        2. Gram shards, one job each through ``map_fn`` (an executor's ``map``; the
           built-in ``map`` runs them here, one after another). A job reads the record
           shards in record order, one at a time, so each gram's postings keep the global
           (record, position) order. With ``worker_files`` (workers that can open files
           in ``folder``: a local process pool) a job gets the record shards' folders to
           memory-map and writes its gram shard into ``folder`` itself; otherwise it gets
           the record shard objects (Ray puts each in its object store once) and returns
           its gram shard, which is written to ``folder`` and memory-mapped here.
           ``on_shard`` is called with 0 when the jobs start, then with 1 as each gram
           shard is done (a progress bar's ``update``).

        Raises:
            ValueError: shard counts below 1, ``worker_files`` without a folder, or
                ``docs`` holding a different number of records than ``sizes``.
        """
        if gram_shards < 1 or record_shards < 1:
            raise ValueError("gram_shards and record_shards must be >= 1")
        if worker_files and folder is None:
            raise ValueError("worker_files needs a folder to share the shards through")
        if sizes is None:
            docs = list(docs)
            sizes = [len(doc) for doc in docs]
        owners = _record_shards(docs, record_cuts(sizes, record_shards), folder)

        bounds = hash_bounds(gram_shards)
        refs: tuple[RecordShard | str, ...] = tuple(owners)
        outs: list[str | None] = [None] * gram_shards
        if worker_files:
            assert folder is not None
            refs = tuple(str(cls.record_folder(folder, r)) for r in range(record_shards))
            outs = [str(cls.gram_folder(folder, k)) for k in range(gram_shards)]
        jobs = [(k, bounds[k], bounds[k + 1], n, exact_n, outs[k], *refs)
                for k in range(gram_shards)]  # fmt: skip
        shards = []
        if on_shard is not None:
            on_shard(0)
        for k, built in enumerate(map_fn(gram_shard_job, jobs)):
            if isinstance(built, GramShard) and folder is not None:
                built.save(cls.gram_folder(folder, k))
            if folder is not None:
                built = GramShard.load(cls.gram_folder(folder, k))
            shards.append(built)
            del built  # with a folder, only the memory map holds the shard now
            if on_shard is not None:
                on_shard(1)
        index = cls(n=n, exact_n=exact_n, gram_shards=tuple(shards), record_shards=tuple(owners))
        if folder is not None:
            index._write_params(folder)
        return index


def record_cuts(sizes: Sequence[int] | Any, shards: int) -> Any:
    """Record ids cutting the records into ``shards`` contiguous ranges of ~equal size.

    ``sizes`` holds one weight per record, known before any record is encoded, so record
    shards can be cut from the stream of encodings without holding them all. The rule:
    with ``total`` the sum of the sizes, shard ``r`` (r >= 1) begins at the first record
    whose predecessors weigh at least ``total * r / shards``. Returns ``shards + 1``
    non-decreasing ids from 0 to the number of records; a range is empty only when there
    are fewer records than shards or one record outweighs a share.

    The overlap check weighs a record by its characters: the driver holds the texts, so
    the weights cost no pass over the encodings, and a record shard's memory (16 bytes per
    word token) follows its characters closely in prose. Weighing by tokens instead (the
    default of :meth:`ShardedIndex.build` without ``sizes``) needs every record encoded
    first; cutting by record count ignores that reports differ in length. Matching
    results do not depend on the cut: record ids are global and every gram's postings are
    ordered by them whichever shard a record lands in.
    """
    import numpy as np

    weights = np.asarray(sizes, dtype=np.int64)
    if shards < 1:
        raise ValueError("shards must be >= 1")
    if (weights < 0).any():
        raise ValueError("record sizes must be >= 0")
    records = len(weights)
    offset = np.zeros(records + 1, dtype=np.int64)
    np.cumsum(weights, out=offset[1:])
    targets = offset[-1] * np.arange(1, shards, dtype=np.float64) / shards
    inner = np.minimum(np.searchsorted(offset, targets, side="left"), records)
    return np.concatenate([[0], inner, [records]]).astype(np.int64)


def _record_shards(docs: Iterable[Encoded], cuts: Any, folder: Path | None) -> list[RecordShard]:
    """Record shards assembled from the stream ``docs``, one at a time, at ``cuts``.

    Each shard's encodings are taken from the stream, concatenated and released; with a
    folder the shard is written there and memory-mapped before the next is taken, so the
    driver holds one record shard's encodings and their concatenation at a time.
    """
    stream = iter(docs)
    owners = []
    for r in range(len(cuts) - 1):
        first, want = int(cuts[r]), int(cuts[r + 1] - cuts[r])
        part = list(itertools.islice(stream, want))
        if len(part) < want:
            raise ValueError(
                f"the source ended after {first + len(part)} records; "
                f"its sizes were given for {int(cuts[-1])}"
            )
        tokens, starts, ends, doc_offset, _ = concatenate(part)
        del part
        rshard = RecordShard(shard=r, first=first, tokens=tokens, starts=starts, ends=ends,
                             doc_offset=doc_offset)  # fmt: skip
        del tokens, starts, ends
        if folder is not None:
            rshard.save(ShardedIndex.record_folder(folder, r))
            rshard = RecordShard.load(ShardedIndex.record_folder(folder, r))
        owners.append(rshard)
    if next(stream, None) is not None:
        raise ValueError(
            f"the source holds more than the {int(cuts[-1])} records its sizes were given for"
        )
    return owners


def gram_shard_job(args: tuple[Any, ...]) -> GramShard | str:
    """One gram shard's build, as an executor job.

    ``args``: (shard, low, high, n, exact_n, out, record shard 0, 1, ...), each record
    shard an object or the folder it was saved in (memory-mapped here, one at a time).
    With ``out`` (a folder) the shard is written there and ``out`` returned; otherwise
    the shard itself is returned.
    """
    k, low, high, n, exact_n, out, *refs = args
    owners = (ref if isinstance(ref, RecordShard) else RecordShard.load(Path(ref)) for ref in refs)
    shard = _gram_shard(k, low, high, owners, n, exact_n)
    if out is None:
        return shard
    shard.save(Path(out))
    return str(out)


def _gram_shard(
    k: int, low: int, high: int, owners: Iterable[RecordShard], n: int, exact_n: int
) -> GramShard:
    """Gram shard ``k``: the n-grams (and exact n-grams) of every record in ``[low, high)``.

    The n-gram hashes are computed per record shard (``owners`` in record order, taken one
    at a time), kept only where they fall in the range, and concatenated in record order;
    a stable sort by hash then gives each gram's postings in (record, position) order, as
    in the unsharded index.
    """
    import numpy as np

    seed_parts: list[tuple[Any, Any, Any]] = []
    exact_parts: list[tuple[Any, Any]] = []
    for owner in owners:
        offset_type = np.int32 if len(owner.tokens) < 2**31 - 1 else np.int64
        for seeds, size in ((True, n), (False, exact_n)):
            hashes, where = _corpus_grams(owner.tokens, owner.doc_offset, size, offset_type)
            keep = np.flatnonzero(_in_range(hashes, low, high))
            hashes, where = hashes[keep], where[keep]
            local = np.searchsorted(owner.doc_offset, where, side="right") - 1
            record = (local + owner.first).astype(np.int32)
            if seeds:
                pos = (where - owner.doc_offset[local]).astype(np.int32)
                seed_parts.append((hashes, record, pos))
            else:
                exact_parts.append((hashes, record))
            del hashes, where, local
    grams, post_record, post_pos = (
        np.concatenate([p[i] for p in seed_parts]) if seed_parts else np.empty(0, dt)
        for i, dt in enumerate((np.uint64, np.int32, np.int32))
    )
    del seed_parts
    offset_type = np.int32 if len(grams) < 2**31 - 1 else np.int64
    order = np.argsort(grams, kind="stable")  # stable: records stay in order per gram
    grams, post_record, post_pos = grams[order], post_record[order], post_pos[order]
    del order
    block_start, block_end = _blocks(grams, offset_type)
    df = _record_counts(post_record, block_start, block_end)
    grams = grams[block_start]

    exact = np.concatenate([p[0] for p in exact_parts]) if exact_parts else np.empty(0, np.uint64)
    exact_record = (
        np.concatenate([p[1] for p in exact_parts]) if exact_parts else np.empty(0, np.int32)
    )
    del exact_parts
    order = np.argsort(exact, kind="stable")
    exact, exact_record = exact[order], exact_record[order]
    del order
    exact_start, exact_end = _blocks(exact, offset_type)
    exact_df = _record_counts(exact_record, exact_start, exact_end)
    return GramShard(
        shard=k, low=low, high=high, n=n, exact_n=exact_n, grams=grams,
        block_start=block_start, block_end=block_end, df=df, post_record=post_record,
        post_pos=post_pos, exact_grams=exact[exact_start], exact_df=exact_df,
    )  # fmt: skip
