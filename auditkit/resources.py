"""Find the data files that ship with auditkit: rules/, report templates, fixtures.

In a source checkout they live at the top of the repository, where people edit them; in
an installed wheel they are mapped into ``auditkit/_data/``. This is the one place that
knows both locations.
"""

from __future__ import annotations

from pathlib import Path

from auditkit.errors import UsageError

_PACKAGE = Path(__file__).resolve().parent
_REPO = _PACKAGE.parent


def _first_existing(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.exists()), None)


def data_dir(name: str) -> Path:
    """Return the shipped folder ``rules``, ``templates`` or ``fixtures``."""
    repo_name = {"templates": Path("reports") / "templates"}.get(name, Path(name))
    found = _first_existing(_PACKAGE / "_data" / name, _REPO / repo_name)
    if found is None:
        raise UsageError(
            f"auditkit's {name} folder was not found next to the package",
            hint="reinstall auditkit, or pass your own copy on the command line",
        )
    return found


def rules_dir() -> Path:
    """The shipped ``rules/`` folder (policies, recognizers, code definitions, prompts)."""
    return data_dir("rules")


def templates_dir() -> Path:
    """The shipped report templates folder."""
    return data_dir("templates")


def fixtures_dir() -> Path:
    """The shipped fictional fixtures."""
    return data_dir("fixtures")


def resolve_policy(spec: str | Path) -> Path:
    """Turn ``default``/``strict`` or a path into a policy file path."""
    p = Path(spec)
    if p.exists():
        return p
    if p.suffix == "" and p.parent == Path("."):
        shipped = rules_dir() / f"{p.name}.yaml"
        if shipped.exists():
            return shipped
    available = sorted(f.stem for f in rules_dir().glob("*.yaml"))
    raise UsageError(
        f"{spec}: no such policy file",
        hint=f"pass a path, or one of the shipped policies: {', '.join(available)}",
    )
