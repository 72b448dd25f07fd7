"""The one tokenizer and normaliser shared by overlap, diversity and fidelity.

Every check that counts words or n-grams goes through here so that "a token" means the
same thing in every number auditkit reports. Tokens keep their character offsets into the
original text, so findings can point back into the user's files.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# A word is a run of letters/digits, optionally joined by an inner apostrophe, hyphen,
# period or slash ("don't", "follow-up", "10.5", "3/14"); any other non-space character
# is a token of its own. Clinical text is full of such joined forms, and splitting them
# would inflate n-gram counts with punctuation.
_TOKEN_RE = re.compile(r"[^\W_]+(?:['’\-./][^\W_]+)*|[^\w\s]", re.UNICODE)
_WORD_RE = re.compile(r"[^\W_]", re.UNICODE)
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Token:
    """A normalised token and the character span it came from."""

    text: str
    start: int
    end: int


def normalize(text: str) -> str:
    """Return the comparison form of ``text``: NFKC, case-folded, single spaces."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _fold(token: str) -> str:
    return unicodedata.normalize("NFKC", token).casefold().replace("’", "'")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into normalised tokens with offsets into the original string."""
    return [Token(_fold(m.group()), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def words(text: str) -> list[str]:
    """Return the normalised word tokens of ``text`` (punctuation dropped)."""
    return [_fold(m.group()) for m in _TOKEN_RE.finditer(text) if _WORD_RE.match(m.group())]


def ngrams(tokens: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    """Yield the contiguous n-grams of ``tokens`` (none when there are fewer than n)."""
    for i in range(len(tokens) - n + 1):
        yield tuple(tokens[i : i + n])


def prefix_end(text: str, n_words: int) -> int:
    """Character offset just after the ``n_words``-th word of ``text``.

    Used to cut a text to a given length in words without splitting a word.
    """
    if n_words <= 0:
        return 0
    count = 0
    for m in _TOKEN_RE.finditer(text):
        if _WORD_RE.match(m.group()):
            count += 1
            if count == n_words:
                return m.end()
    return len(text)


#: Odd 64-bit multiplier of the polynomial n-gram hash (arithmetic wraps mod 2**64).
_GRAM_MULT = 0x9E3779B97F4A7C15


def ngram_hashes(ids: Any, n: int) -> Any:
    """One uint64 per contiguous n-gram of an integer id array (numpy, vectorised).

    A polynomial hash over the ids: equal n-grams get equal hashes, and two different
    n-grams collide with probability about 2**-64, negligible at any corpus size.
    """
    import numpy as np

    count = len(ids) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    values = np.asarray(ids).astype(np.uint64) + np.uint64(1)
    h = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * np.uint64(_GRAM_MULT) + values[k : k + count]
    return h
