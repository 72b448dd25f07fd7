r"""The source-identifier index: which PHI values of the real reports a synthetic one repeats.

The same detector runs over the source corpus. Every detected value is normalised
(:mod:`auditkit.phi.normalize`) and immediately replaced by a keyed hash: HMAC-SHA256
under the run's mask key (``Masker.fingerprint``) of ``CATEGORY\\0normalised value``. The
index holds only these hashes, each with its document frequency (how many source records
contain it) and the first few source record ids. Raw values are never stored and never
written anywhere.

How a synthetic span is judged (``lookup``):

- **Strong identifiers** -- a full name (two or more name words), MRN, SSN, phone, fax,
  e-mail, URL, IP address, health-plan, account, licence, vehicle, device and other ids,
  a full date (day, month and year), a street address -- are reuse whenever their hash
  occurs in the source, however often.
- **Weak identifiers** -- a single name word (a first name or a surname alone), a date
  without a year or day, an age over 89, a city, county or ZIP code, a facility -- are
  reuse only when *rare* in the source: present in at most ``rare_max_df`` source records
  (default 1: a value unique to one real report). A common first name shared by many
  source records is therefore not reuse; a rare surname found in exactly one real report is.
- To let a surname alone match a source full name, each word of a source full name is
  also indexed as a single-word key (weak, with its own document frequency).
- **Severe** reuse: a full name, MRN, SSN, phone or fax number, or a full date written
  as a date of birth (``DOB``, ``born``, ``date of birth`` just before it) in either corpus.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from auditkit.phi.normalize import name_token_count, normalize_value
from auditkit.phi.spans import PhiSpan

#: Categories that are always an identifier of someone when repeated.
STRONG = frozenset(
    {
        "MRN",
        "SSN",
        "PHONE",
        "FAX",
        "EMAIL",
        "URL",
        "IP_ADDRESS",
        "HEALTH_PLAN_ID",
        "ACCOUNT_NUMBER",
        "LICENSE_NUMBER",
        "VEHICLE_ID",
        "DEVICE_ID",
        "OTHER_ID",
    }
)
#: Categories whose reuse is the most severe finding.
SEVERE = frozenset({"MRN", "SSN", "PHONE", "FAX"})
_DOB_BEFORE = re.compile(r"(?i)\b(?:dob|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|born)\W{0,6}$")
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MAX_IDS = 5


@dataclass
class _Entry:
    df: int = 0
    ids: list[str] = field(default_factory=list)
    dob: bool = False


@dataclass(frozen=True)
class Keyed:
    """One span's keyed hash(es) and how strong an identifier it is."""

    key: str
    strong: bool
    severe: bool
    word_keys: tuple[str, ...] = ()


def is_dob(text: str, start: int) -> bool:
    """True when the words just before ``start`` mark a date of birth."""
    return bool(_DOB_BEFORE.search(text[max(0, start - 24) : start]))


def keyed(text: str, span: PhiSpan, fingerprint: Callable[[str], str]) -> Keyed | None:
    """Normalise the span's value and hash it at once; None when nothing is left."""
    value = normalize_value(span.type, text[span.start : span.end])
    if not value:
        return None
    key = fingerprint(f"{span.type}\0{value}")
    if span.type == "NAME":
        words = value.split()
        full = name_token_count(value) >= 2
        word_keys = tuple(fingerprint(f"NAME\0{w}") for w in words) if full else ()
        return Keyed(key, strong=full, severe=full, word_keys=word_keys)
    if span.type == "DATE":
        full = bool(_FULL_DATE.match(value))
        return Keyed(key, strong=full, severe=full and is_dob(text, span.start))
    if span.type == "LOCATION":
        return Keyed(key, strong=any(c.isdigit() for c in value) and " " in value, severe=False)
    return Keyed(key, strong=span.type in STRONG, severe=span.type in SEVERE)


class SourceIndex:
    """Keyed hashes of the source corpus's PHI values, with document frequencies."""

    def __init__(self, fingerprint: Callable[[str], str]) -> None:
        self._fingerprint = fingerprint
        self._entries: dict[str, _Entry] = {}
        self.records = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, record_id: str, text: str, spans: Iterable[PhiSpan]) -> None:
        """Index one source record's detected spans (each value counted once per record)."""
        self.records += 1
        keys: dict[str, bool] = {}
        for s in spans:
            k = keyed(text, s, self._fingerprint)
            if k is None:
                continue
            dob = k.severe and s.type == "DATE"
            keys[k.key] = keys.get(k.key, False) or dob
            for w in k.word_keys:
                keys.setdefault(w, False)
        for key, dob in keys.items():
            entry = self._entries.setdefault(key, _Entry())
            entry.df += 1
            entry.dob = entry.dob or dob
            if len(entry.ids) < _MAX_IDS:
                entry.ids.append(record_id)

    def document_frequency(self, key: str) -> int:
        """In how many source records a keyed value occurs (0 if none)."""
        entry = self._entries.get(key)
        return entry.df if entry else 0

    def lookup(self, text: str, span: PhiSpan, rare_max_df: int) -> PhiSpan:
        """The span, marked ``in_source`` (with source ids, severity) if it is reuse."""
        k = keyed(text, span, self._fingerprint)
        if k is None:
            return span
        entry = self._entries.get(k.key)
        if entry is None:
            return span
        if not k.strong and entry.df > rare_max_df:
            return span
        severe = k.severe or (span.type == "DATE" and k.strong and entry.dob)
        return PhiSpan(
            span.start,
            span.end,
            span.type,
            span.score,
            span.recognizer,
            in_source=True,
            severe=severe,
            source_ids=tuple(entry.ids),
        )
