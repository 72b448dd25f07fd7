"""Progress bars on stderr for long stages; silent when not a TTY or with --quiet."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Bar(Protocol):
    """What a stage can do with a bar."""

    def update(self, n: int) -> None:
        """Advance by ``n`` items."""


class _NullBar:
    def update(self, n: int) -> None:
        pass


class Progress:
    """Makes bars. ``enabled=None`` means: only when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    @contextmanager
    def bar(self, label: str, total: int) -> Iterator[Bar]:
        """A bar for ``total`` items; a no-op when progress is off."""
        if not self.enabled:
            yield _NullBar()
            return
        import click

        with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
            yield bar
