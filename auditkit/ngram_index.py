"""A read-only n-gram index of the source corpus, in numpy arrays.

Owns turning texts into arrays of stable 64-bit token hashes with character offsets, and
the source index built from them: every n-gram's postings (record, token position) and
its document frequency (in how many distinct source records it occurs). The index is
built once, can be saved as ``.npy`` files and memory-mapped by worker processes, so
every worker shares one read-only copy through the page cache.

Memory: about 16 bytes per source token for the postings (hash, record, position), plus
8 bytes per token for the source tokens themselves and 8 for their offsets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditkit.text import ngram_hashes, tokenize

_WORD_CACHE: dict[str, int] = {}


def token_hash(token: str) -> int:
    """A stable 64-bit hash of a normalised token (the same in every process and run)."""
    value = _WORD_CACHE.get(token)
    if value is None:
        value = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        if len(_WORD_CACHE) < 2_000_000:
            _WORD_CACHE[token] = value
    return value


@dataclass(frozen=True)
class Encoded:
    """A text as word-token hashes with the character span of each token."""

    tokens: Any  # uint64[n]
    starts: Any  # int32[n]
    ends: Any  # int32[n]

    def __len__(self) -> int:
        return len(self.tokens)

    def char_span(self, start: int, end: int) -> tuple[int, int]:
        """Character offsets in the text of its tokens ``[start, end)``."""
        return int(self.starts[start]), int(self.ends[end - 1])


def encode(text: str) -> Encoded:
    """Encode the word tokens of ``text`` (punctuation is not a token here)."""
    import numpy as np

    toks = [t for t in tokenize(text) if t.text[:1].isalnum() or t.text[-1:].isalnum()]
    return Encoded(
        np.fromiter((token_hash(t.text) for t in toks), dtype=np.uint64, count=len(toks)),
        np.fromiter((t.start for t in toks), dtype=np.int32, count=len(toks)),
        np.fromiter((t.end for t in toks), dtype=np.int32, count=len(toks)),
    )


def encode_batch(texts: Sequence[str]) -> list[Encoded]:
    """Picklable batch form of :func:`encode` for executors."""
    return [encode(t) for t in texts]


@dataclass
class SourceIndex:
    """Postings and document frequencies of the source corpus's ``n``-grams."""

    n: int
    grams: Any  # uint64[G] sorted unique n-gram hashes
    block_start: Any  # int64[G] first posting of each gram
    block_end: Any  # int64[G] one past its last posting
    df: Any  # int32[G] distinct source records containing the gram
    post_record: Any  # int32[P] postings, grouped by gram
    post_pos: Any  # int32[P]
    exact_n: int
    exact_grams: Any  # uint64[E] sorted unique exact_n-gram hashes
    exact_df: Any  # int32[E] distinct source records containing each
    tokens: Any  # uint64[T] all source tokens, concatenated
    starts: Any  # int32[T]
    ends: Any  # int32[T]
    doc_offset: Any  # int64[D+1] where each record's tokens begin in `tokens`

    @classmethod
    def build(cls, docs: Iterable[Encoded], n: int, exact_n: int) -> SourceIndex:
        """Build the index from encoded source records (in record order)."""
        import numpy as np

        docs = list(docs)
        lengths = np.array([len(d) for d in docs], dtype=np.int64)
        doc_offset = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        empty_u64 = np.empty(0, dtype=np.uint64)
        gram_lists = [ngram_hashes(d.tokens, n) for d in docs]
        counts = np.array([len(g) for g in gram_lists], dtype=np.int64)
        all_grams = np.concatenate(gram_lists) if gram_lists else empty_u64
        record = np.repeat(np.arange(len(docs), dtype=np.int32), counts)
        position = (
            np.concatenate([np.arange(c, dtype=np.int32) for c in counts])
            if len(counts)
            else np.empty(0, dtype=np.int32)
        )
        order = np.argsort(all_grams, kind="stable")  # stable: records stay in order per gram
        sorted_grams = all_grams[order]
        post_record = record[order]
        post_pos = position[order]
        grams, block_start = np.unique(sorted_grams, return_index=True)
        block_start = block_start.astype(np.int64)
        block_end = np.r_[block_start[1:], len(sorted_grams)].astype(np.int64)
        # A posting repeats its record when the gram occurs twice in one record.
        repeat = np.zeros(len(sorted_grams), dtype=np.int32)
        if len(sorted_grams) > 1:
            repeat[1:] = (sorted_grams[1:] == sorted_grams[:-1]) & (
                post_record[1:] == post_record[:-1]
            )
        df = (block_end - block_start).astype(np.int32)
        if len(grams):
            df -= np.add.reduceat(repeat, block_start).astype(np.int32)
        # Distinct records per exact n-gram: unique within each record, then count.
        exact = [np.unique(ngram_hashes(d.tokens, exact_n)) for d in docs]
        if exact:
            exact_grams, exact_df = np.unique(np.concatenate(exact), return_counts=True)
        else:
            exact_grams, exact_df = empty_u64, np.empty(0, dtype=np.int64)

        def cat(field: str, dtype: Any) -> Any:
            parts = [getattr(d, field) for d in docs]
            return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype=dtype)

        return cls(
            n=n, grams=grams, block_start=block_start, block_end=block_end, df=df,
            post_record=post_record, post_pos=post_pos, exact_n=exact_n,
            exact_grams=exact_grams, exact_df=exact_df.astype(np.int32),
            tokens=cat("tokens", np.uint64),
            starts=cat("starts", np.int32), ends=cat("ends", np.int32), doc_offset=doc_offset,
        )  # fmt: skip

    @property
    def records(self) -> int:
        """Number of source records indexed."""
        return len(self.doc_offset) - 1

    def record_tokens(self, record: int) -> Any:
        """The token hashes of one source record (a view, no copy)."""
        return self.tokens[self.doc_offset[record] : self.doc_offset[record + 1]]

    def record_span(self, record: int, start_token: int, end_token: int) -> tuple[int, int]:
        """Character offsets in a source record of its tokens ``[start_token, end_token)``."""
        base = self.doc_offset[record]
        return int(self.starts[base + start_token]), int(self.ends[base + end_token - 1])

    def lookup(self, grams: Any) -> tuple[Any, Any]:
        """For each query gram: its index in ``self.grams`` and whether it occurs at all."""
        import numpy as np

        loc = np.searchsorted(self.grams, grams)
        loc = np.minimum(loc, max(len(self.grams) - 1, 0))
        found = (self.grams[loc] == grams) if len(self.grams) else np.zeros(len(grams), bool)
        return loc, found

    def exact_frequency(self, grams: Any) -> Any:
        """For each ``exact_n``-gram: in how many source records it occurs (0 if none)."""
        import numpy as np

        if not len(self.exact_grams):
            return np.zeros(len(grams), dtype=np.int32)
        loc = np.minimum(np.searchsorted(self.exact_grams, grams), len(self.exact_grams) - 1)
        return np.where(self.exact_grams[loc] == grams, self.exact_df[loc], 0)

    def nbytes(self) -> int:
        """Memory held by the index arrays."""
        return sum(
            getattr(self, f).nbytes
            for f in ("grams", "block_start", "block_end", "df", "post_record", "post_pos",
                      "exact_grams", "exact_df", "tokens", "starts", "ends", "doc_offset")
        )  # fmt: skip

    # -- sharing with worker processes -------------------------------------------------

    _ARRAYS = ("grams", "block_start", "block_end", "df", "post_record", "post_pos",
               "exact_grams", "exact_df", "tokens", "starts", "ends", "doc_offset")  # fmt: skip

    def save(self, folder: Path) -> None:
        """Write the arrays as .npy files for :meth:`load` (memory-mapped) in workers."""
        import numpy as np

        folder.mkdir(parents=True, exist_ok=True)
        for name in self._ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, name))
        (folder / "params.txt").write_text(f"{self.n} {self.exact_n}\n")

    @classmethod
    def load(cls, folder: Path) -> SourceIndex:
        """Memory-map an index written by :meth:`save` (read-only, shared page cache)."""
        import numpy as np

        n, exact_n = (int(v) for v in (folder / "params.txt").read_text().split())
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in cls._ARRAYS}
        return cls(n=n, exact_n=exact_n, **arrays)
