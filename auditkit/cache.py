"""auditkit's on-disk cache: where it lives, folder digests, and a keyed result store.

Owns the one cache folder (``$AUDITKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/auditkit``)
that holds the throwaway demo key, cached PHI scans and cached embeddings; the digest of a
folder of files (model weights, rule files, source modules) that those caches key on; and
:class:`KeyedStore`, a sqlite table of values keyed by sha256 of a namespace and a text.
A store never holds text: only the digest of it and the value computed from it.

Nothing here knows what is cached; the PHI and embedding modules encode their values.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

#: Texts looked up per sqlite query (below sqlite's bound-parameter limit).
_CHUNK = 500


def cache_dir() -> Path:
    """Return auditkit's cache folder: $AUDITKIT_CACHE_DIR, else $XDG_CACHE_HOME/auditkit."""
    if os.environ.get("AUDITKIT_CACHE_DIR"):
        return Path(os.environ["AUDITKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "auditkit"


#: The caches ``AUDITKIT_NO_CACHE`` can name one by one.
CACHES = ("phi", "embeddings")


def caching_enabled(kind: str) -> bool:
    """Whether the ``kind`` cache ("phi" or "embeddings") is used.

    ``AUDITKIT_NO_CACHE`` turns caches off: ``1`` (or ``all``) every cache, a
    comma-separated list of names only those (``AUDITKIT_NO_CACHE=phi`` rescans PHI but
    reuses embeddings). An unknown name is an error, so a typo never leaves a cache on.
    """
    if kind not in CACHES:
        raise ValueError(f"unknown cache {kind!r}")
    value = os.environ.get("AUDITKIT_NO_CACHE", "").strip().lower()
    if not value or value in ("0", "false", "no"):
        return True
    if value in ("1", "true", "yes", "all"):
        return False
    names = {n.strip() for n in value.split(",") if n.strip()}
    unknown = sorted(names - set(CACHES))
    if unknown:
        from auditkit.errors import UsageError

        raise UsageError(
            f"AUDITKIT_NO_CACHE={value}: unknown cache {', '.join(unknown)}",
            hint=f"use 1 for every cache, or a comma-separated list of {', '.join(CACHES)}",
        )
    return kind not in names


def folder_digest(root: Path, files: Iterable[Path] | None = None) -> str:
    r"""sha256 over the sorted lines ``relative/path\0<sha256 of file>`` of a folder's files.

    Independent of where the folder is installed and of file-system order. ``files``
    defaults to every file below ``root`` except ``__pycache__`` contents.
    """
    from auditkit.manifest import sha256_file

    if files is None:
        files = (p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    outer = hashlib.sha256()
    for path in sorted(files):
        outer.update(f"{path.relative_to(root).as_posix()}\0{sha256_file(path)}\n".encode())
    return outer.hexdigest()


class KeyedStore:
    """Values computed from texts, keyed by sha256 of ``namespace`` and the text.

    The namespace names everything that changes the value (model digest, rules, library
    versions), so a changed detector never reads another's results.
    """

    def __init__(self, filename: str, namespace: str, folder: Path | None = None) -> None:
        import sqlite3

        folder = folder or cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(folder / filename, timeout=60)
        self._db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB)")
        self._namespace = namespace

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self._namespace}\0{text}".encode()).hexdigest()

    def get_many(self, texts: Sequence[str]) -> dict[int, bytes]:
        """Stored values, by position in ``texts`` (texts not stored are absent)."""
        keys = [self._key(t) for t in texts]
        found: dict[str, bytes] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            query = f"SELECT key, value FROM entries WHERE key IN ({','.join('?' * len(chunk))})"
            for key, value in self._db.execute(query, chunk):
                found[key] = bytes(value)
        return {i: found[k] for i, k in enumerate(keys) if k in found}

    def put_many(self, texts: Sequence[str], values: Sequence[bytes]) -> None:
        """Store one value per text."""
        rows = [(self._key(t), v) for t, v in zip(texts, values, strict=True)]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?)", rows)
