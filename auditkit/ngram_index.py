"""A read-only n-gram index of the source corpus, in numpy arrays.

Owns turning texts into arrays of stable 64-bit token hashes with character offsets, and
the source index built from them: every n-gram's postings (record, token position) and
its document frequency (in how many distinct source records it occurs). The index is
built once, can be saved as ``.npy`` files and memory-mapped by worker processes, so
every worker shares one read-only copy through the page cache.

Memory: about 42-48 bytes per source token in all: postings (record and position, 8
bytes), per distinct gram its hash, block offsets and df, the exact-gram table, and the
source tokens themselves (8 bytes) with their character offsets (8). Building peaks at
about twice the final size (the gram hashes, their argsort and the postings coexist once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditkit.text import _GRAM_MULT, _fold, tokenize

_MASK = (1 << 64) - 1
#: Token hash: a polynomial over the token's code points, sum(c_k * P**k) mod 2**64 with an
#: odd P (so P is invertible and numpy can hash every token of a text from one prefix sum),
#: xor its length times L, through the splitmix64 finaliser.
_P = 0xC2B2AE3D27D4EB4F
_P_INV = pow(_P, -1, 1 << 64)
_L = 0x165667B19E3779F9
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_POWERS: list[Any] = []  # [P**k, P**-k] for k < some length, grown on demand


def token_hash(token: str) -> int:
    """A stable 64-bit hash of a normalised token (the same in every process and run)."""
    h = 0
    for ch in reversed(token):
        h = (h * _P + ord(ch)) & _MASK
    z = h ^ ((len(token) * _L) & _MASK)
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def _powers(n: int) -> tuple[Any, Any]:
    """P**k and P**-k (mod 2**64) for k in range(n + 1), as uint64 arrays."""
    import numpy as np

    if not _POWERS or len(_POWERS[0]) <= n:
        size = max(n + 1, 2 * len(_POWERS[0]) if _POWERS else 4096)
        forward = np.empty(size, dtype=np.uint64)
        backward = np.empty(size, dtype=np.uint64)
        forward[0] = backward[0] = 1
        forward[1:] = np.uint64(_P)
        backward[1:] = np.uint64(_P_INV)
        np.multiply.accumulate(forward, out=forward)
        np.multiply.accumulate(backward, out=backward)
        _POWERS[:] = [forward, backward]
    return _POWERS[0], _POWERS[1]


def _span_hashes(codes: Any, starts: Any, ends: Any) -> Any:
    """:func:`token_hash` of ``codes[start:end]`` for every span at once (numpy)."""
    import numpy as np

    forward, backward = _powers(len(codes))
    prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
    np.cumsum(codes.astype(np.uint64) * forward[: len(codes)], out=prefix[1:])
    z = (prefix[ends] - prefix[starts]) * backward[starts]
    z ^= (ends - starts).astype(np.uint64) * np.uint64(_L)
    z ^= z >> np.uint64(30)
    z *= np.uint64(_M1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(_M2)
    z ^= z >> np.uint64(31)
    return z


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


# Character classes of the word tokens of :func:`auditkit.text.tokenize`: a token is a run
# of word characters (``[^\W_]``, i.e. ``str.isalnum``), runs joined by one of ``'’-./``.
# Found with numpy over the code points instead of one regex match object per token.
_OTHER, _WORD, _JOIN, _HAZARD = 0, 1, 2, 3
_ASCII_CLASS = bytes(
    _WORD if chr(c).isalnum() else _JOIN if chr(c) in "'-./" else _OTHER for c in range(128)
)
_CLASS_CACHE: dict[int, int] = {}


def _unicode_class(code: int) -> int:
    """Class of a non-ASCII character; a symbol that folds to letters (™) is a hazard."""
    value = _CLASS_CACHE.get(code)
    if value is None:
        ch = chr(code)
        if ch.isalnum():
            value = _WORD
        elif ch == "’":
            value = _JOIN
        elif ch.isspace():
            value = _OTHER
        else:  # a punctuation token: kept by the filter below when its fold is alphanumeric
            folded = _fold(ch)
            value = _HAZARD if folded[:1].isalnum() or folded[-1:].isalnum() else _OTHER
        _CLASS_CACHE[code] = value
    return value


def _token_spans(classes: Any) -> tuple[Any, Any]:
    """Start and end offsets of the tokens, given one class per character (numpy)."""
    import numpy as np

    word = classes == _WORD
    inside = word.copy()
    if len(classes) > 2:  # a joiner counts only between two word characters
        inside[1:-1] |= (classes[1:-1] == _JOIN) & word[:-2] & word[2:]
    edges = np.diff(inside.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    return (
        np.flatnonzero(edges == 1).astype(np.int32),
        np.flatnonzero(edges == -1).astype(np.int32),
    )


def encode(text: str) -> Encoded:
    """Encode the word tokens of ``text`` (punctuation is not a token here).

    The same tokens, offsets and hashes as the word tokens of
    :func:`auditkit.text.tokenize` (see :func:`_encode_tokens`, the reference form), found
    with numpy: tokens that are pure ASCII are lower-cased, the others folded one by one.
    """
    import numpy as np

    ascii_class = np.frombuffer(_ASCII_CLASS, np.uint8)
    if text.isascii():
        codes = np.frombuffer(text.encode("ascii"), np.uint8)
        starts, ends = _token_spans(ascii_class[codes])
        return Encoded(_span_hashes(_lower(codes), starts, ends), starts, ends)
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    classes = ascii_class[np.minimum(codes, 127)]
    high = np.flatnonzero(codes > 127)
    distinct, where = np.unique(codes[high], return_inverse=True)
    table = np.array([_unicode_class(int(c)) for c in distinct], dtype=np.uint8)
    if (table == _HAZARD).any():
        return _encode_tokens(text)
    classes[high] = table[where]
    starts, ends = _token_spans(classes)
    hashes = _span_hashes(_lower(codes), starts, ends)
    # Tokens holding a non-ASCII character are folded (NFKC, casefold) one by one.
    seen = np.zeros(len(codes) + 1, dtype=np.int64)
    np.cumsum(codes > 127, out=seen[1:])
    keep = np.ones(len(hashes), dtype=bool)
    for i in np.flatnonzero(seen[ends] > seen[starts]).tolist():
        folded = _fold(text[starts[i] : ends[i]])
        hashes[i] = token_hash(folded)
        keep[i] = folded[:1].isalnum() or folded[-1:].isalnum()
    if not keep.all():
        hashes, starts, ends = hashes[keep], starts[keep], ends[keep]
    return Encoded(hashes, starts, ends)


def _lower(codes: Any) -> Any:
    """ASCII capitals of a code-point array lower-cased (what folding does to ASCII)."""
    upper = (codes >= 65) & (codes <= 90)
    return codes + (upper * 32).astype(codes.dtype)


def _hashes(words: list[str]) -> Any:
    """The token hashes of ``words`` as a uint64 array."""
    import numpy as np

    return np.fromiter((token_hash(w) for w in words), dtype=np.uint64, count=len(words))


def _encode_tokens(text: str) -> Encoded:
    """The reference form of :func:`encode`, through :func:`auditkit.text.tokenize`."""
    import numpy as np

    toks = [t for t in tokenize(text) if t.text[:1].isalnum() or t.text[-1:].isalnum()]
    return Encoded(
        _hashes([t.text for t in toks]),
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
        """Build the index from encoded source records (in record order).

        Works on the concatenated tokens: one pass of n-gram hashes over all of them (grams
        crossing a record boundary dropped), one stable argsort of the hashes (postings of
        a gram stay in record order), offsets in int32 while they fit. The encodings are
        released as soon as they are concatenated when the caller holds no other reference
        (pass a generator or a temporary list).
        """
        import numpy as np

        tokens, starts, ends, doc_offset, lengths = concatenate(docs)
        total = len(tokens)
        offset_type = np.int32 if total < 2**31 - 1 else np.int64
        record_of = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)

        # n-grams: hash, owning record, position in the record; postings grouped by gram.
        grams, where = _corpus_grams(tokens, doc_offset, n, offset_type)
        order = np.argsort(grams, kind="stable")  # stable: records stay in order per gram
        grams = grams[order]
        where = where[order]
        del order
        post_record = record_of[where]
        post_pos = (where - doc_offset.astype(offset_type)[post_record]).astype(
            np.int32, copy=False
        )
        del where
        block_start, block_end = _blocks(grams, offset_type)
        grams = grams[block_start]
        df = _record_counts(post_record, block_start, block_end)

        del record_of
        # Distinct records per exact n-gram: unique within each record, then count.
        exact, _ = _corpus_grams(tokens, doc_offset, exact_n, offset_type)
        per_record = np.maximum(lengths - exact_n + 1, 0)
        cut = np.cumsum(per_record)
        exact = np.concatenate(
            [np.unique(part) for part in np.split(exact, cut[:-1])] or [np.empty(0, np.uint64)]
        )
        exact.sort()
        exact_block, exact_end = _blocks(exact, offset_type)
        exact_grams = exact[exact_block]
        exact_df = (exact_end - exact_block).astype(np.int32)
        del exact

        return cls(
            n=n, grams=grams, block_start=block_start, block_end=block_end, df=df,
            post_record=post_record, post_pos=post_pos, exact_n=exact_n,
            exact_grams=exact_grams, exact_df=exact_df,
            tokens=tokens, starts=starts, ends=ends, doc_offset=doc_offset,
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
        return lookup_sorted(self.grams, grams)

    def exact_frequency(self, grams: Any) -> Any:
        """For each ``exact_n``-gram: in how many source records it occurs (0 if none)."""
        return frequency(self.exact_grams, self.exact_df, grams)

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
        save_arrays(self, folder, self._ARRAYS, f"{self.n} {self.exact_n}")

    @classmethod
    def load(cls, folder: Path) -> SourceIndex:
        """Memory-map an index written by :meth:`save` (read-only, shared page cache)."""
        n, exact_n = (int(v) for v in (folder / "params.txt").read_text().split())
        return cls(n=n, exact_n=exact_n, **load_arrays(folder, cls._ARRAYS))


def save_arrays(obj: Any, folder: Path, names: tuple[str, ...], params: str) -> None:
    """Write ``obj``'s arrays ``names`` as .npy files and ``params`` as params.txt."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        np.save(folder / f"{name}.npy", getattr(obj, name))
    (folder / "params.txt").write_text(params + "\n")


def load_arrays(folder: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """Memory-map (read-only) the arrays :func:`save_arrays` wrote."""
    import numpy as np

    return {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in names}


def _gram_hashes(tokens: Any, n: int) -> Any:
    """:func:`auditkit.text.ngram_hashes` of a long array, in place (one n-gram array)."""
    import numpy as np

    count = len(tokens) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    one, mult = np.uint64(1), np.uint64(_GRAM_MULT)
    h = tokens[:count] + one  # the first step of the polynomial: 0 * mult + (id + 1)
    with np.errstate(over="ignore"):
        for k in range(1, n):
            h *= mult
            h += tokens[k : k + count]
            h += one
    return h


def _corpus_grams(tokens: Any, doc_offset: Any, n: int, offset_type: Any) -> tuple[Any, Any]:
    """Hashes and corpus positions of every n-gram that lies inside one record."""
    import numpy as np

    hashes = _gram_hashes(tokens, n)
    valid = np.ones(len(hashes), dtype=bool)
    # The last n - 1 positions of each record start a gram that crosses into the next.
    tail = doc_offset[1:, None] - np.arange(1, n, dtype=np.int64)[None, :]
    tail = tail[(tail >= doc_offset[:-1, None]) & (tail < len(hashes))]
    valid[tail] = False
    where = np.arange(len(hashes), dtype=offset_type)[valid]
    return hashes[valid], where


def _blocks(sorted_values: Any, offset_type: Any) -> tuple[Any, Any]:
    """First and one-past-last index of each run of equal values in a sorted array."""
    import numpy as np

    first = np.ones(len(sorted_values), dtype=bool)
    if len(sorted_values) > 1:
        np.not_equal(sorted_values[1:], sorted_values[:-1], out=first[1:])
    start = np.flatnonzero(first).astype(offset_type)
    end = np.empty_like(start)
    end[:-1] = start[1:]
    if len(end):
        end[-1] = len(sorted_values)
    return start, end


def concatenate(docs: Iterable[Encoded]) -> tuple[Any, Any, Any, Any, Any]:
    """All records' tokens, starts and ends concatenated, with ``doc_offset`` and lengths.

    ``doc_offset[i]`` is where record i's tokens begin (int64[D+1]). The encodings are
    released on return when the caller holds no other reference (a generator or a
    temporary list), so they and the concatenation coexist only while it runs.
    """
    import numpy as np

    docs = list(docs)
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    doc_offset = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=doc_offset[1:])

    def cat(name: str, dtype: Any) -> Any:
        parts = [getattr(d, name) for d in docs]
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)

    return (cat("tokens", np.uint64), cat("starts", np.int32), cat("ends", np.int32),
            doc_offset, lengths)  # fmt: skip


def _record_counts(post_record: Any, block_start: Any, block_end: Any) -> Any:
    """Distinct records per block of postings (records ascending within each block).

    Postings minus repeats: the gram again in the same record is adjacent in its block.
    """
    import numpy as np

    repeat = np.zeros(len(post_record), dtype=bool)
    if len(post_record) > 1:
        np.equal(post_record[1:], post_record[:-1], out=repeat[1:])
        repeat[block_start] = False
    counts = (block_end - block_start).astype(np.int32)
    if len(block_start):
        counts -= np.add.reduceat(repeat, block_start, dtype=np.int32)
    return counts


def lookup_sorted(sorted_grams: Any, grams: Any) -> tuple[Any, Any]:
    """For each query gram: its index in ``sorted_grams`` and whether it is there at all."""
    import numpy as np

    loc = np.searchsorted(sorted_grams, grams)
    loc = np.minimum(loc, max(len(sorted_grams) - 1, 0))
    found = (sorted_grams[loc] == grams) if len(sorted_grams) else np.zeros(len(grams), bool)
    return loc, found


def frequency(exact_grams: Any, exact_df: Any, grams: Any) -> Any:
    """For each query gram: its count in the (``exact_grams``, ``exact_df``) table, or 0."""
    import numpy as np

    if not len(exact_grams):
        return np.zeros(len(grams), dtype=np.int32)
    loc = np.minimum(np.searchsorted(exact_grams, grams), len(exact_grams) - 1)
    return np.where(exact_grams[loc] == grams, exact_df[loc], 0)
