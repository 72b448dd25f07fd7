"""Where per-record work runs.

Checks hand pure functions over batches of records to an :class:`Executor`; they never
create processes themselves. Two engines:

* :class:`LocalExecutor` (``--engine local``, the default): in-process for one worker, a
  spawn-based process pool on this machine otherwise.
* :class:`RayExecutor` (``--engine ray``): Ray tasks on a local Ray runtime or on an
  existing cluster (``--ray-address``). Ray is an optional extra (``auditkit[ray]``).

Results come back in input order whatever the engine, so parallelism never changes a
number. An executor says whether its workers can open files the parent process writes
(:attr:`Executor.local_files`): corpus-level state (the overlap source index) is handed to
workers as a folder path only then, and as the object itself otherwise.
"""

from __future__ import annotations

import itertools
import logging
import math
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from auditkit.errors import UsageError

T = TypeVar("T")
R = TypeVar("R")

ENGINES = ("local", "ray")
RAY_INSTALL = "pip install 'auditkit[ray]'"


class Executor(Protocol):
    """Runs a function over items and yields results in input order."""

    workers: int
    local_files: bool

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Apply ``fn`` to every item; yield results in the order of ``items``."""
        ...

    def close(self) -> None:
        """Release workers (idempotent)."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


class LocalExecutor:
    """In-process for one worker; a spawn-based process pool for more.

    ``spawn`` rather than ``fork``: workers may load torch or spaCy, which are not safe to
    fork once their thread pools have started.
    """

    engine = "local"
    #: Pool workers run on this machine: they can memory-map a folder the parent wrote.
    local_files = True

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


# -- Ray -------------------------------------------------------------------------------


def import_ray() -> Any:
    """Import Ray, or fail with a usage error that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise UsageError(
            "--engine ray needs the Ray package, which is not installed",
            hint=f"install the optional extra: {RAY_INSTALL} (or use --engine local)",
        ) from exc
    return ray


@dataclass(frozen=True)
class _Shared:
    """Placeholder, inside a job, for an object passed once through the object store."""

    slot: int


_IMMEDIATE = (str, bytes, int, float, bool, type(None))


def _substitute(value: Any, slots: dict[int, int]) -> Any:
    if id(value) in slots:
        return _Shared(slots[id(value)])
    if isinstance(value, tuple):
        return tuple(_substitute(v, slots) for v in value)
    return value


def _pack(
    jobs: Sequence[Any], slots: dict[int, int], refs: Sequence[Any]
) -> tuple[list[Any], list[Any]]:
    """One task's jobs with shared objects replaced by slots, and the references they use.

    Slots are numbered per task, so a task is given (and Ray fetches to its node) only
    the shared objects its own jobs use: with the overlap check's sharded index, the
    shard or two its jobs ask, not every shard.
    """
    used: dict[int, int] = {}  # id of a shared object -> its slot in this task

    def collect(value: Any) -> None:
        if id(value) in slots:
            used.setdefault(id(value), len(used))
        elif isinstance(value, tuple):
            for part in value:
                collect(part)

    for job in jobs:
        collect(job)
    return [_substitute(job, used) for job in jobs], [refs[slots[key]] for key in used]


def _restore(value: Any, shared: Sequence[Any]) -> Any:
    if isinstance(value, _Shared):
        return shared[value.slot]
    if isinstance(value, tuple):
        return tuple(_restore(v, shared) for v in value)
    return value


def _repeated_objects(items: Sequence[Any]) -> list[Any]:
    """Objects that occur (by identity) in more than one job tuple, in first-seen order.

    These are the corpus-level arguments (the source index, an engine spec, parameters)
    that a check passes with every batch; they go to the object store once.
    """
    seen: dict[int, tuple[Any, int]] = {}
    for item in items:
        parts = item if isinstance(item, tuple) else (item,)
        for part in {id(p): p for p in parts if not isinstance(p, _IMMEDIATE)}.values():
            obj, count = seen.get(id(part), (part, 0))
            seen[id(part)] = (obj, count + 1)
    return [obj for obj, count in seen.values() if count > 1]


def run_chunk(fn: Callable[[Any], Any], chunk: Sequence[Any], *shared: Any) -> list[Any]:
    """One Ray task: ``fn`` over a chunk of jobs, shared objects put back in place.

    Ray resolves the top-level ``shared`` object references before the task starts
    (numpy arrays are mapped from the node's object store, read-only, not copied).
    """
    return [fn(_restore(job, shared)) for job in chunk]


class RayExecutor:
    """Ray tasks, in input order: a local Ray runtime, or an existing cluster.

    Without ``address`` a private local runtime with ``num_cpus=workers`` starts on the
    first :meth:`map` (no dashboard, no usage statistics, worker logs not forwarded) and
    :meth:`close` shuts it down. Its processes talk to each other on this machine only;
    Ray itself listens on the machine's address while it runs. With ``address`` the
    driver connects to that cluster and only disconnects on close. A runtime that is
    already initialised in this process (a test session's, an application's) is used as
    it is and left running.

    Jobs are grouped into chunks, one Ray task each, so per-task overhead (scheduling,
    argument transfer: about a millisecond) is amortised over many records; at most a few
    chunks per worker are in flight, so memory stays bounded on any corpus size. An
    object that occurs in more than one job (the overlap source index, a PHI engine spec)
    is put in the object store once, and every task that uses it gets a reference to it.
    """

    engine = "ray"
    #: Workers may run on other machines: never hand them a local path.
    local_files = False

    def __init__(
        self,
        workers: int = 1,
        *,
        address: str | None = None,
        chunk_size: int | None = None,
        in_flight_per_worker: int = 4,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        self._ray = import_ray()
        self.workers = workers
        self.address = address
        self.chunk_size = chunk_size
        self.in_flight_per_worker = in_flight_per_worker
        self._owns_runtime = False
        self._remote: Any = None
        self._parallelism = workers

    # -- runtime -----------------------------------------------------------------------

    def start(self) -> None:
        """Connect to (or start) the Ray runtime; called by the first :meth:`map`."""
        ray = self._ray
        if self._remote is not None:
            return
        if not ray.is_initialized():
            # Usage statistics would be reported over the network; the audit is offline.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "logging_level": logging.ERROR,
                "log_to_driver": False,
                "configure_logging": True,
            }
            if self.address is None:
                kwargs["num_cpus"] = self.workers
            else:
                _probe(self.address)
                kwargs["address"] = self.address
            try:
                ray.init(**kwargs)
            except Exception as exc:  # connection refused, bad address, port in use
                where = self.address or "a local runtime"
                raise UsageError(
                    f"could not start Ray on {where} ({type(exc).__name__})",
                    hint="check --ray-address (ray://host:10001 or host:6379), or use "
                    "--engine local",
                ) from exc
            self._owns_runtime = self.address is None
        if self.address is not None or not self._owns_runtime:
            cpus = int(ray.cluster_resources().get("CPU", self.workers))
            self._parallelism = max(1, cpus)
        # Jobs are pure functions: Ray's default retry of a task lost with its worker or
        # node is safe and changes no result.
        self._remote = ray.remote(num_cpus=1)(run_chunk)

    def close(self) -> None:
        """Shut down the local runtime this executor started (idempotent)."""
        if self._owns_runtime and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_runtime = False
        self._remote = None

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- work ------------------------------------------------------------------------

    def chunk_for(self, n_items: int) -> int:
        """Jobs per task: about four tasks per worker, at most 16 jobs (batches) each."""
        if self.chunk_size is not None:
            return self.chunk_size
        return max(1, min(16, math.ceil(n_items / (4 * self._parallelism))))

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Apply ``fn`` to each item in Ray tasks; yield results in the order of ``items``."""
        self.start()
        jobs = items if isinstance(items, Sequence) else list(items)
        return self._results(fn, jobs)

    def _results(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[Any]:
        ray = self._ray
        shared = _repeated_objects(jobs)
        refs = [ray.put(obj) for obj in shared]
        slots = {id(obj): i for i, obj in enumerate(shared)}
        size = self.chunk_for(len(jobs))
        chunks = (_pack(jobs[i : i + size], slots, refs) for i in range(0, len(jobs), size))
        window = self.in_flight_per_worker * self._parallelism
        pending: deque[Any] = deque()
        try:
            for chunk, used in itertools.islice(chunks, window):
                pending.append(self._remote.remote(fn, chunk, *used))
            while pending:
                results = self._get(pending.popleft())
                for chunk, used in itertools.islice(chunks, 1):
                    pending.append(self._remote.remote(fn, chunk, *used))
                yield from results
        finally:
            for ref in pending:
                ray.cancel(ref)

    def _get(self, ref: Any) -> list[Any]:
        """A task's results; a job's own exception is re-raised as itself, not wrapped.

        So a check fails the same way on either engine (an AuditkitError from a worker
        still maps to its exit code, an unexpected error still names its own type).
        """
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, Exception):
                raise exc.cause from None
            raise


def _probe(address: str, timeout: float = 10.0) -> None:
    """Fail fast on an unreachable ``host:port`` (Ray itself retries for many minutes)."""
    import socket

    if "://" in address or address == "auto" or ":" not in address:
        return  # ray:// clients and "auto" have their own, shorter, failure paths
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"cannot reach a Ray cluster at --ray-address {address} ({type(exc).__name__})",
            hint="give the head node's GCS address (host:6379) or a Ray client address "
            "(ray://host:10001); drop --ray-address to start a local runtime",
        ) from exc


def make_executor(
    engine: str = "local", workers: int = 1, *, ray_address: str | None = None
) -> LocalExecutor | RayExecutor:
    """The executor for ``--engine``/``--workers``/``--ray-address`` (validated here)."""
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}", hint=f"use one of: {', '.join(ENGINES)}")
    if engine == "local":
        if ray_address is not None:
            raise UsageError(
                "--ray-address is only used with --engine ray",
                hint="add --engine ray, or drop --ray-address",
            )
        return LocalExecutor(workers)
    return RayExecutor(workers, address=ray_address)
