"""One canonical form per PHI value, so the same identifier matches however it is written.

- Numbers (phone, fax, SSN, MRN, ids): digits only when the value is all digits and
  separators, else upper-case letters and digits only. A NANP phone keeps its last ten
  digits (``+1 (614) 555-0182`` == ``614.555.0182``), extensions dropped.
- Dates: ISO ``YYYY-MM-DD``; without a year ``--MM-DD``; month and year ``YYYY-MM``;
  numeric dates are month first (US) unless the first number cannot be a month (14/03);
  a two-digit year below 30 is 20xx, else 19xx (a fixed pivot, so results never
  depend on the day the audit ran). Unparseable dates
  fall back to their folded text.
- Names: titles and credentials dropped, ``LAST, FIRST`` turned round, initials dropped,
  folded to lower case without accents; tokens sorted, so word order does not matter.
- E-mail, URL: lower case; URL without scheme, ``www.`` or trailing slash.
- Everything else (places, facilities): lower case, punctuation removed, single spaces.

This module only computes strings; the reuse index hashes them at once.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

_NUMERIC_CATEGORIES = {
    "PHONE",
    "FAX",
    "SSN",
    "MRN",
    "HEALTH_PLAN_ID",
    "ACCOUNT_NUMBER",
    "LICENSE_NUMBER",
    "VEHICLE_ID",
    "DEVICE_ID",
    "OTHER_ID",
    "IP_ADDRESS",
}
_TITLES = {
    "dr",
    "mr",
    "mrs",
    "ms",
    "mx",
    "miss",
    "prof",
    "rev",
    "judge",
    "md",
    "do",
    "phd",
    "psyd",
    "lcsw",
    "licsw",
    "lisw",
    "lpc",
    "lmhc",
    "lmft",
    "rn",
    "np",
    "pa",
    "aprn",
    "msw",
    "pmhnp",
    "bc",
    "cadc",
    "esq",
    "jr",
    "sr",
    "ii",
    "iii",
    "iv",
}
_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|x|extension)\s*\d{1,5}\s*$")
_NON_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")
_MONTH_NAMES = (
    ("jan", "january"),
    ("feb", "february"),
    ("mar", "march"),
    ("apr", "april"),
    ("may",),
    ("jun", "june"),
    ("jul", "july"),
    ("aug", "august"),
    ("sep", "sept", "september"),
    ("oct", "october"),
    ("nov", "november"),
    ("dec", "december"),
)
_MONTHS = {m: i + 1 for i, names in enumerate(_MONTH_NAMES) for m in names}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize_number(value: str, category: str = "OTHER_ID") -> str:
    """Digits only for numbers, else upper-case alphanumerics (separators dropped)."""
    v = _EXTENSION.sub("", value) if category in ("PHONE", "FAX") else value
    if category == "IP_ADDRESS":
        return v.strip().lower()
    if re.fullmatch(r"[\d\s().+\-/]+", v):
        digits = re.sub(r"\D", "", v)
        if category in ("PHONE", "FAX") and len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        return digits
    return re.sub(r"[^0-9A-Za-z]", "", v).upper()


def normalize_date(value: str) -> str:
    """ISO form of a date: ``YYYY-MM-DD``, ``--MM-DD`` without a year, ``YYYY-MM``."""
    v = _fold(value).strip()
    v = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", v)
    m = re.fullmatch(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})", v)
    if m:
        return _iso(int(m[1]), int(m[2]), int(m[3])) or v
    m = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2}|\d{4}))?", v)
    if m:
        year = _year(m[3]) if m[3] else None
        first, second = int(m[1]), int(m[2])
        # month first (US); day first only when the first number cannot be a month
        return _iso(year, first, second) or (first > 12 and _iso(year, second, first)) or v
    m = re.fullmatch(r"(\d{1,2})[/.-](\d{4})", v)
    if m:
        return f"{int(m[2]):04d}-{int(m[1]):02d}"
    words = re.findall(r"[a-z]+|\d+", v)
    month = next((_MONTHS[w] for w in words if w in _MONTHS), None)
    numbers = [int(w) for w in words if w.isdigit()]
    if month is None:
        return _SPACES.sub(" ", _NON_WORD.sub(" ", v)).strip()
    year = next((n for n in numbers if n >= 1000), None)
    day = next((n for n in numbers if 1 <= n <= 31 and n != year), None)
    if day is None:
        return f"{year:04d}-{month:02d}" if year else f"--{month:02d}"
    return _iso(year, month, day) or v


def _year(text: str) -> int:
    y = int(text)
    if len(text) == 2:
        y += 2000 if y < 30 else 1900
    return y


def _iso(year: int | None, month: int, day: int) -> str | None:
    try:
        date(year or 2000, month, day)  # 2000 is a leap year: 02-29 without a year is valid
    except ValueError:
        return None
    return f"{year:04d}-{month:02d}-{day:02d}" if year else f"--{month:02d}-{day:02d}"


def normalize_name(value: str) -> str:
    """Folded name tokens, titles, credentials and initials dropped, sorted."""
    v = _fold(value)
    v = re.sub(r"['’]s\b", "", v)
    tokens = [t for t in re.split(r"[^\w'-]+", v.replace(",", " ")) if t]
    tokens = [t.strip("'-") for t in tokens if t.strip("'-") not in _TITLES]
    tokens = [t for t in tokens if len(t) > 1]
    return " ".join(sorted(tokens))


def normalize_value(category: str, value: str) -> str:
    """The canonical form of a PHI value of ``category`` (see the module docstring)."""
    if category == "DATE":
        return normalize_date(value)
    if category in _NUMERIC_CATEGORIES:
        return normalize_number(value, category)
    if category == "NAME":
        return normalize_name(value)
    if category == "EMAIL":
        return _fold(value).strip()
    if category == "URL":
        v = _fold(value).strip()
        v = re.sub(r"^[a-z][a-z0-9+.-]*://", "", v)
        v = re.sub(r"^www\.", "", v)
        return v.rstrip("/")
    if category == "AGE_OVER_89":
        digits = re.sub(r"\D", "", value)
        return digits or _fold(value).strip()
    return _SPACES.sub(" ", _NON_WORD.sub(" ", _fold(value))).strip()


def name_token_count(normalised: str) -> int:
    """How many name tokens a normalised name has (1 = a first or last name alone)."""
    return len(normalised.split())
