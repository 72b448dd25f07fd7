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

import json
from collections.abc import Sequence
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from auditkit.cache import KeyedStore, cache_dir, caching_enabled, folder_digest
from auditkit.phi.spans import PhiSpan

if TYPE_CHECKING:
    from auditkit.phi.engine import EngineSpec

#: Bump when the stored value format changes.
FORMAT = "phi-scan-1"


@cache
def rules_digest(folder: str) -> str:
    """Digest of the YAML files that :func:`auditkit.phi.rules.load_rules` reads."""
    root = Path(folder)
    return folder_digest(root, root.glob("*.yaml"))


@cache
def code_digest() -> str:
    """Digest of the ``auditkit.phi`` modules (the code recognizers, merging, allow-list)."""
    root = Path(__file__).resolve().parent
    return folder_digest(root, root.glob("*.py"))


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
        self._store = KeyedStore("phi_scans.sqlite", namespace, folder)

    def close(self) -> None:
        """Close the database connection."""
        self._store.close()

    def get_many(self, texts: Sequence[str]) -> dict[int, list[PhiSpan]]:
        """Cached spans, by position in ``texts``."""
        return {i: _decode(v.decode()) for i, v in self._store.get_many(texts).items()}

    def put_many(self, texts: Sequence[str], spans: Sequence[Sequence[PhiSpan]]) -> None:
        """Store the spans of each text."""
        self._store.put_many(texts, [_encode(s).encode() for s in spans])


def open_cache(spec: EngineSpec) -> PhiScanCache | None:
    """The scan cache for ``spec`` in ``cache_dir()``; None when ``AUDITKIT_NO_CACHE`` is set."""
    if not caching_enabled("phi"):
        return None
    return PhiScanCache(cache_dir(), scan_namespace(spec))
