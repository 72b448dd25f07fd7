"""PHI spans: the typed result of detection, overlap merging and allow-list filtering.

A :class:`PhiSpan` carries offsets into the record's text, its category, and *why* it
was flagged (the recognizer that fired and its score, from Presidio's analysis
explanation). It never carries the value: callers slice the text when they must
(normalising for source matching, masking for evidence) and drop the slice at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from auditkit.phi.rules import AllowList, fold_allow


@dataclass(frozen=True, slots=True)
class PhiSpan:
    """One detected PHI span: where, what category, which recognizer, what score."""

    start: int
    end: int
    type: str
    score: float
    recognizer: str
    in_source: bool = False
    severe: bool = False
    source_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The span as written by ``auditkit phi`` (offsets and reasons, no value)."""
        return {
            "start": self.start,
            "end": self.end,
            "type": self.type,
            "score": round(self.score, 4),
            "recognizer": self.recognizer,
            "in_source": self.in_source,
        }


def merge_spans(spans: Iterable[PhiSpan], precedence: Sequence[str]) -> list[PhiSpan]:
    """Merge overlapping spans so that no two output spans overlap, sorted by offset.

    The strongest span wins first: highest score, then the more specific category
    (earlier in ``precedence``), then the longer span. It grows to the union of the spans
    *of its own category* that overlap it (transitively), and every other span that
    overlaps the result is dropped (a model's "organisation" reading of
    "DOB 08/12/1945 Counselor: Marcus Bell" must not swallow the date or the name). The
    remaining spans are resolved the same way. Spans that merely touch
    (``a.end == b.start``) are kept apart.
    """
    rank = {c: i for i, c in enumerate(precedence)}

    def strength(s: PhiSpan) -> tuple[float, int, int, int]:
        return (round(s.score, 6), -rank.get(s.type, len(rank)), s.end - s.start, -s.start)

    # Ties in strength (two recognizers finding the same span with the same score) go to
    # the recognizer first in name order: a set's order follows string hashes, which
    # differ from one Python process to the next (PYTHONHASHSEED), so it must not decide.
    unique = sorted(set(spans), key=lambda s: (s.start, s.end, s.type, s.recognizer, s.score))
    pending = sorted(unique, key=strength, reverse=True)
    out: list[PhiSpan] = []
    while pending:
        best = pending[0]
        start, end = best.start, best.end
        grew = True
        while grew:
            grew = False
            for s in pending:
                overlaps = s.type == best.type and s.start < end and s.end > start
                if overlaps and (s.start < start or s.end > end):
                    start, end = min(start, s.start), max(end, s.end)
                    grew = True
        out.append(replace(best, start=start, end=end))
        pending = [s for s in pending if s.end <= start or s.start >= end]
    return sorted(out, key=lambda s: (s.start, s.end))


@cache
def _allow_regexes(allow: AllowList) -> tuple[Any, ...]:
    import regex as re2

    out = []
    if allow.phrases:
        alternatives = "|".join(
            re2.escape(p) for p in sorted(set(allow.phrases), key=len, reverse=True)
        )
        out.append(re2.compile(rf"(?<![\w-])(?:{alternatives})(?:['’]s?)?(?![\w-])", re2.I))
    out.extend(re2.compile(rx) for _, rx in allow.patterns)
    return tuple(out)


@cache
def _whole_span_regexes(allow: AllowList) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(rx) for _, rx in allow.whole_span_patterns)


def allowed_ranges(text: str, allow: AllowList) -> list[tuple[int, int]]:
    """Character ranges of ``text`` covered by an allow-listed phrase or pattern."""
    ranges = [m.span() for rx in _allow_regexes(allow) for m in rx.finditer(text)]
    return sorted(r for r in ranges if r[1] > r[0])


_WORDY = frozenset({"NAME", "FACILITY", "LOCATION"})
_LETTERS = re.compile(r"[^\W\d_]+")


def _only_vocabulary(value: str, vocabulary: frozenset[str]) -> bool:
    """True when every word of a span is ordinary clinical vocabulary (no proper noun)."""
    words = _LETTERS.findall(value.casefold())
    return bool(words) and bool(vocabulary) and all(w in vocabulary for w in words)


_EDGE = " \t\r\n.,;:!?()[]{}\"'“”‘’*-–—|/"


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _EDGE:
        # keep an opening parenthesis of an area code: "(614) 555-0182"
        if text[start] == "(" and ")" in text[start:end]:
            break
        start += 1
    while end > start and text[end - 1] in _EDGE:
        # keep a closing parenthesis that belongs to an area code: "(614) 555-0182"
        if text[end - 1] == ")" and "(" in text[start : end - 1]:
            break
        end -= 1
    return start, end


def _split_lines(text: str, spans: Iterable[PhiSpan]) -> Iterable[PhiSpan]:
    """PHI never crosses a line break: a span that does is cut into its lines."""
    for s in spans:
        if "\n" not in text[s.start : s.end]:
            yield s
            continue
        pos = s.start
        for line in text[s.start : s.end].split("\n"):
            if line.strip():
                yield replace(s, start=pos, end=pos + len(line))
            pos += len(line) + 1


def apply_allow_list(
    text: str,
    spans: Iterable[PhiSpan],
    allow: AllowList,
    ranges: list[tuple[int, int]] | None = None,
) -> list[PhiSpan]:
    """Drop or trim spans that the allow-list says are not PHI.

    A span inside an allow-listed range is dropped; a span that overlaps one keeps its
    longest part outside it. A span whose whole text is an allow-listed value (a state, a
    country, a weekday, a role word) or matches a whole-span pattern (a bare year) is
    dropped. Surrounding punctuation and spaces are trimmed from every span. ``ranges``
    is ``allowed_ranges(text, allow)`` when the caller already has it.
    """
    if ranges is None:
        ranges = allowed_ranges(text, allow)
    whole = _whole_span_regexes(allow)
    out = []
    for s in _split_lines(text, spans):
        start, end = _strip(text, s.start, s.end)
        pieces = [(start, end)]
        for a, b in ranges:
            if b <= start or a >= end:
                continue
            nxt = []
            for x, y in pieces:
                if b <= x or a >= y:
                    nxt.append((x, y))
                    continue
                if x < a:
                    nxt.append((x, a))
                if b < y:
                    nxt.append((b, y))
            pieces = nxt
        pieces = [_strip(text, x, y) for x, y in pieces]
        pieces = [(x, y) for x, y in pieces if any(c.isalnum() for c in text[x:y])]
        if not pieces:
            continue
        x, y = max(pieces, key=lambda p: p[1] - p[0])
        value = text[x:y]
        trimmed = len(pieces) > 1 or (x, y) != (start, end)
        if trimmed and s.type in _WORDY and not any(c.isalpha() for c in value):
            continue  # what is left of a trimmed name or place must still contain a word
        folded = fold_allow(value)
        if folded in allow.whole_span or any(rx.match(value) for rx in whole):
            continue
        if s.type in _WORDY and _only_vocabulary(value, allow.vocabulary):
            continue  # a heading such as "Presenting Problem" or "Psychiatric Consult"
        out.append(replace(s, start=x, end=y) if (x, y) != (s.start, s.end) else s)
    return out
