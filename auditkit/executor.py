"""Where per-record work runs.

Checks hand pure functions over batches of records to an :class:`Executor`; they never
create processes themselves. The local executor runs in-process for one worker and in a
process pool otherwise. Results come back in input order, so parallelism never changes a
number.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs a function over items and yields results in input order."""

    workers: int

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Apply ``fn`` to every item; yield results in the order of ``items``."""
        ...


class LocalExecutor:
    """In-process for one worker; a spawn-based process pool for more.

    ``spawn`` rather than ``fork``: workers may load torch or spaCy, which are not safe to
    fork once their thread pools have started.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Apply ``fn`` to each item, in parallel when ``workers > 1``."""
        if self.workers == 1:
            return map(fn, items)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool.map(fn, items)

    def close(self) -> None:
        """Shut the pool down (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
