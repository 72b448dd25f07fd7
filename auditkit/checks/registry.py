"""Stable check ids -> check classes.

Built-in checks register through the ``auditkit.checks`` entry-point group, exactly as a
third-party plugin does (see pyproject.toml). Nothing walks subclasses. Embedding
applications can add a class with :func:`register`.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from auditkit.checks.base import Check
from auditkit.errors import UsageError

ENTRY_POINT_GROUP = "auditkit.checks"

#: The order checks run and appear in, for the built-ins. Plugins follow, by id.
BUILTIN_ORDER = ("phi", "overlap", "membership", "diversity", "fidelity")

_registered: dict[str, type[Check]] = {}


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def register(cls: type[Check]) -> type[Check]:
    """Register a check class under its ``id`` (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Check)):
        raise TypeError(f"{cls!r} is not a Check subclass")
    _registered[cls.id] = cls
    return cls


def ids() -> list[str]:
    """Every known check id, built-ins first in their fixed order."""
    known = set(_entry_points()) | set(_registered)
    builtin = [i for i in BUILTIN_ORDER if i in known]
    return builtin + sorted(known - set(BUILTIN_ORDER))


def get(check_id: str) -> type[Check]:
    """Return the class registered under ``check_id``.

    Raises:
        UsageError: if no check has that id.
    """
    if check_id in _registered:
        return _registered[check_id]
    ep = _entry_points().get(check_id)
    if ep is None:
        raise UsageError(
            f"unknown check {check_id!r}",
            hint=f"known checks: {', '.join(ids()) or '(none installed)'}",
        )
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, Check)) or cls.id != check_id:
        raise UsageError(
            f"entry point {ep.value!r} registered as {check_id!r} is not a Check with that id"
        )
    return cls
