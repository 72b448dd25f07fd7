"""The on-disk cache of PHI scans: the spans already found in a text by the same detector.

Detection (spaCy + Presidio) is the slow step of the ``phi`` check, about six reports a
second on one CPU, and every audit scans the same source corpus again. Like
:class:`auditkit.embeddings.EmbeddingCache`, this cache lives in ``cache_dir()`` (on the
user's machine only, never in a bundle) and ``AUDITKIT_NO_CACHE=1`` turns it off.

The key is sha256 over a *namespace* and the text. The namespace names everything that
can change what is detected (:func:`scan_namespace`): the spaCy model and the digest of
its weights, a digest of the rules/phi files, the detection settings of the
:class:`~auditkit.phi.engine.EngineSpec`, the presidio-analyzer and spaCy versions, and a
digest of the ``auditkit.phi`` source, so editing a recognizer never serves stale spans.
The value is the spans as compact JSON: offsets, category, score and recognizer. The
text is not stored, and neither is any value (a span is only offsets into the text).

This module imports neither spaCy nor Presidio: a fully cached run never loads them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from auditkit.phi.spans import PhiSpan

if TYPE_CHECKING:
    from auditkit.phi.engine import EngineSpec

#: Bump when the stored value format changes.
FORMAT = "phi-scan-1"
_CHUNK = 500


def _file_digest(paths: Sequence[Path], root: Path) -> str:
    r"""sha256 over sorted ``relative/path\0<sha256 of file>`` lines."""
    outer = hashlib.sha256()
    for p in sorted(paths):
        inner = hashlib.sha256(p.read_bytes()).hexdigest()
        outer.update(f"{p.relative_to(root).as_posix()}\0{inner}\n".encode())
    return outer.hexdigest()


@cache
def rules_digest(folder: str) -> str:
    """Digest of the YAML files that :func:`auditkit.phi.rules.load_rules` reads."""
    root = Path(folder)
    return _file_digest(list(root.glob("*.yaml")), root)


@cache
def code_digest() -> str:
    """Digest of the ``auditkit.phi`` modules (the code recognizers, merging, allow-list)."""
    root = Path(__file__).resolve().parent
    return _file_digest(list(root.glob("*.py")), root)


def scan_namespace(spec: EngineSpec) -> str:
    """Everything that changes detection for ``spec``, as one string (no text)."""
    from importlib.metadata import version as dist_version

    from auditkit.phi.engine import model_info
    from auditkit.phi.rules import load_rules

    info = model_info(spec.model)
    settings = {k: v for k, v in asdict(spec).items() if k not in ("model", "rules_dir")}
    libs = ",".join(f"{d}={dist_version(d)}" for d in ("presidio-analyzer", "spacy"))
    rules = rules_digest(load_rules(spec.rules_dir).folder)
    return (
        f"{FORMAT};model={info.name}@{info.sha256};rules={rules};code={code_digest()};"
        f"settings={json.dumps(settings, sort_keys=True)};{libs}"
    )


def _encode(spans: Sequence[PhiSpan]) -> str:
    return json.dumps(
        [[s.start, s.end, s.type, s.score, s.recognizer] for s in spans],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _decode(value: str) -> list[PhiSpan]:
    return [
        PhiSpan(int(a), int(b), str(t), float(sc), str(r)) for a, b, t, sc, r in json.loads(value)
    ]


class PhiScanCache:
    """Spans already detected, keyed by sha256 of the detector's namespace and the text."""

    def __init__(self, folder: Path, namespace: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(folder / "phi_scans.sqlite", timeout=60)
        self._db.execute("CREATE TABLE IF NOT EXISTS scans (key TEXT PRIMARY KEY, spans TEXT)")
        self._namespace = namespace

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self._namespace}\0{text}".encode()).hexdigest()

    def get_many(self, texts: Sequence[str]) -> dict[int, list[PhiSpan]]:
        """Cached spans, by position in ``texts``."""
        keys = [self._key(t) for t in texts]
        found: dict[str, list[PhiSpan]] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, spans FROM scans WHERE key IN ({marks})"
            for key, value in self._db.execute(query, chunk):
                found[key] = _decode(value)
        return {i: list(found[k]) for i, k in enumerate(keys) if k in found}

    def put_many(self, texts: Sequence[str], spans: Sequence[Sequence[PhiSpan]]) -> None:
        """Store the spans of each text."""
        rows = [(self._key(t), _encode(s)) for t, s in zip(texts, spans, strict=True)]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO scans VALUES (?, ?)", rows)


def open_cache(spec: EngineSpec) -> PhiScanCache | None:
    """The scan cache for ``spec`` in ``cache_dir()``; None when ``AUDITKIT_NO_CACHE`` is set."""
    if os.environ.get("AUDITKIT_NO_CACHE"):
        return None
    from auditkit.embeddings import cache_dir

    return PhiScanCache(cache_dir(), scan_namespace(spec))
