"""Records, corpora and their loaders.

Owns reading user files into :class:`Record` objects, validating them, and hashing the
inputs. A corpus either loads completely or raises a :class:`CorpusError` that names the
file, the line and the field: a record is never dropped silently, so an audit always
certifies every record it was given.

Nothing here knows about checks, policies or reports.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from auditkit.errors import CorpusError, UsageError

Role = Literal["synthetic", "source", "holdout"]
Format = Literal["jsonl", "csv", "txt"]

#: Largest accepted line (JSONL/CSV) or file (.txt folder), in bytes. A clinical report
#: is a few KB; a megabyte line is almost always a broken export (a whole file on one line).
DEFAULT_MAX_RECORD_BYTES = 1_000_000

# ICD-10 (WHO and -CM): letter, digit, digit-or-letter, then an optional dotted extension.
_ICD10_RE = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?$")
_CODE_SPLIT_RE = re.compile(r"[;,|\s]+")


@dataclass(frozen=True)
class FieldMap:
    """Which input fields hold the record id, text and ICD-10 codes."""

    id: str = "id"
    text: str = "text"
    codes: str = "icd10"


@dataclass(frozen=True, eq=False)
class Record:
    """One report: a unique id, its text, its ICD-10 codes and everything else as meta."""

    id: str
    text: str
    codes: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def primary_code(self) -> str | None:
        """The first (conditioning) code, or None when the record has none."""
        return self.codes[0] if self.codes else None


@dataclass(frozen=True, eq=False)
class Corpus:
    """A validated, fully loaded corpus and the digest of the file(s) it came from."""

    role: str
    path: str
    format: str
    sha256: str
    size_bytes: int
    records: tuple[Record, ...]
    fields: FieldMap = FieldMap()

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    @property
    def ids(self) -> list[str]:
        """Record ids in input order."""
        return [r.id for r in self.records]

    def codes(self) -> list[str]:
        """The distinct primary codes present, sorted."""
        return sorted({r.primary_code for r in self.records if r.primary_code})

    def batches(self, size: int) -> Iterator[tuple[Record, ...]]:
        """Yield the records in input order, ``size`` at a time."""
        for i in range(0, len(self.records), size):
            yield self.records[i : i + size]


def normalize_code(raw: str) -> str:
    """Return the canonical form of an ICD-10 code (``f321`` -> ``F32.1``).

    Raises:
        ValueError: if ``raw`` is not shaped like an ICD-10 code.
    """
    code = raw.strip().upper()
    if "." not in code and len(code) > 3:
        code = f"{code[:3]}.{code[3:]}"
    if not _ICD10_RE.match(code):
        raise ValueError(raw)
    return code


def _parse_codes(value: Any, where: tuple[str, int | None], field_name: str) -> tuple[str, ...]:
    path, line = where
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items = [v for v in _CODE_SPLIT_RE.split(value) if v]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise CorpusError(
            path,
            f"codes must be a string or a list of strings, got {type(value).__name__}",
            line=line,
            field=field_name,
        )
    codes: list[str] = []
    for position, item in enumerate(items, start=1):
        try:
            code = normalize_code(item)
        except ValueError:
            # Name the item, not its value: a mis-mapped field could hold report text.
            raise CorpusError(
                path,
                f"code {position} ({len(item)} characters) is not an ICD-10 code",
                line=line,
                field=field_name,
                hint="codes look like F32.1 or F321; use --codes-field to point at another field",
            ) from None
        if code not in codes:
            codes.append(code)
    return tuple(codes)


def _make_record(
    obj: Mapping[str, Any], fields: FieldMap, path: str, line: int | None, *, id_default: str | None
) -> Record:
    where = (path, line)
    raw_id = obj.get(fields.id, id_default)
    if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
        raise CorpusError(
            path,
            "missing record id",
            line=line,
            field=fields.id,
            hint="every record needs a unique id; use --id-field to name the field that holds it",
        )
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
        raise CorpusError(
            path,
            f"id must be a string or an integer, got {type(raw_id).__name__}",
            line=line,
            field=fields.id,
        )
    text = obj.get(fields.text)
    if text is None:
        raise CorpusError(
            path,
            "missing text",
            line=line,
            field=fields.text,
            hint="use --text-field to name the field that holds the report text",
        )
    if not isinstance(text, str):
        raise CorpusError(
            path, f"text must be a string, got {type(text).__name__}", line=line, field=fields.text
        )
    if not text.strip():
        raise CorpusError(
            path,
            "text is empty",
            line=line,
            field=fields.text,
            hint="remove the record or fill in its text; auditkit never skips a record",
        )
    codes = _parse_codes(obj.get(fields.codes), where, fields.codes)
    meta = {k: v for k, v in obj.items() if k not in (fields.id, fields.text, fields.codes)}
    return Record(str(raw_id), text, codes, MappingProxyType(meta))


def _decode_line(raw: bytes, path: str, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            path,
            f"bytes are not valid UTF-8 (byte {exc.start} of the line)",
            line=line,
            hint="re-export the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
        ) from None


def _check_size(n_bytes: int, limit: int, path: str, line: int | None) -> None:
    if n_bytes > limit:
        raise CorpusError(
            path,
            f"record is {n_bytes:,} bytes, over the limit of {limit:,}",
            line=line,
            hint="a line this long is usually a broken export; raise the limit with "
            "--max-record-bytes if the reports really are this long",
        )


def _iter_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(data.split(b"\n"), start=1):
        yield number, raw.rstrip(b"\r")


def _load_jsonl(
    data: bytes, path: str, fields: FieldMap, limit: int
) -> Iterator[tuple[int, Record]]:
    for number, raw in _iter_lines(data):
        if not raw.strip():
            continue
        _check_size(len(raw), limit, path, number)
        line = _decode_line(raw, path, number)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(
                path,
                f"invalid JSON at column {exc.colno}: {exc.msg}",
                line=number,
                hint="each line must be one JSON object",
            ) from None
        if not isinstance(obj, dict):
            raise CorpusError(
                path, f"expected a JSON object, got {type(obj).__name__}", line=number
            )
        yield number, _make_record(obj, fields, path, number, id_default=None)


def _load_csv(data: bytes, path: str, fields: FieldMap, limit: int) -> Iterator[tuple[int, Record]]:
    # Validate encoding and size line by line first, so errors name the physical line.
    for number, raw in _iter_lines(data):
        _check_size(len(raw), limit, path, number)
        _decode_line(raw, path, number)
    text = data.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    if not reader.fieldnames:
        raise CorpusError(path, "the CSV file has no header row", line=1)
    for name in (fields.id, fields.text):
        if name not in reader.fieldnames:
            raise CorpusError(
                path,
                f"the header has no column '{name}' (columns: {', '.join(reader.fieldnames)})",
                line=1,
                field=name,
                hint="use --id-field / --text-field to name the right columns",
            )
    try:
        for row in reader:
            number = reader.line_num
            if None in row:
                raise CorpusError(path, "the row has more cells than the header", line=number)
            yield number, _make_record(row, fields, path, number, id_default=None)
    except csv.Error as exc:
        raise CorpusError(path, f"malformed CSV: {exc}", line=reader.line_num) from None


def _load_txt_folder(
    folder: Path, fields: FieldMap, limit: int
) -> tuple[list[tuple[int | None, Record]], str, int]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".txt")
    digest = hashlib.sha256()
    records: list[tuple[int | None, Record]] = []
    total = 0
    for file in files:
        data = file.read_bytes()
        total += len(data)
        digest.update(file.name.encode() + b"\0" + hashlib.sha256(data).digest())
        _check_size(len(data), limit, str(file), None)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(
                file,
                f"bytes are not valid UTF-8 (byte {exc.start})",
                hint="re-export the file as UTF-8",
            ) from None
        records.append(
            (
                None,
                _make_record(
                    {fields.id: file.stem, fields.text: text},
                    fields,
                    str(file),
                    None,
                    id_default=None,
                ),
            )
        )
    return records, digest.hexdigest(), total


def detect_format(path: Path) -> Format:
    """Guess a corpus format from its path: a folder of .txt, .csv, else JSONL."""
    if path.is_dir():
        return "txt"
    if path.suffix.lower() in {".csv", ".tsv"}:
        return "csv"
    return "jsonl"


def load_corpus(
    path: str | Path,
    role: str = "synthetic",
    *,
    fields: FieldMap | None = None,
    fmt: Format | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Corpus:
    """Load and validate a corpus.

    Args:
        path: a JSONL file, a CSV file with a header, or a folder of ``.txt`` files.
        role: what the corpus is in the audit (``synthetic``, ``source`` or ``holdout``).
        fields: input field names for id, text and codes.
        fmt: force a format instead of guessing it from the path.
        max_record_bytes: largest accepted line or file.

    Raises:
        CorpusError: naming the file, line and field of the first bad record.
        UsageError: if the path does not exist.
    """
    p = Path(path)
    fields = fields or FieldMap()
    if not p.exists():
        raise UsageError(f"{p}: no such file or folder", hint=f"check the --{role} path")
    fmt = fmt or detect_format(p)
    if fmt == "txt":
        if not p.is_dir():
            raise UsageError(f"{p}: the txt format reads a folder of .txt files")
        numbered, sha256, size = _load_txt_folder(p, fields, max_record_bytes)
    else:
        data = p.read_bytes()
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
        loader = _load_jsonl if fmt == "jsonl" else _load_csv
        numbered = list(loader(data, str(p), fields, max_record_bytes))
    records = _unique(numbered, str(p), fields)
    if not records:
        raise CorpusError(
            p,
            "the corpus has no records",
            hint=f"point --{role} at a file with at least one record",
        )
    return Corpus(role, str(p), fmt, sha256, size, tuple(records), fields)


def _unique(
    numbered: Iterable[tuple[int | None, Record]], path: str, fields: FieldMap
) -> list[Record]:
    seen: dict[str, int | None] = {}
    records = []
    for line, record in numbered:
        if record.id in seen:
            first = seen[record.id]
            where = f"line {first}" if first is not None else "another file"
            raise CorpusError(
                path,
                f"duplicate id {record.id[:40]!r} (first seen at {where})",
                line=line,
                field=fields.id,
                hint="ids must be unique within a corpus",
            )
        seen[record.id] = line
        records.append(record)
    return records
