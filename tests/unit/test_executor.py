"""Executors: order, chunking, shared objects, errors, and the missing-Ray path."""

import sys

import numpy as np
import pytest
from click.testing import CliRunner

from auditkit.errors import UsageError
from auditkit.executor import (
    LocalExecutor,
    RayExecutor,
    _pack,
    _probe,
    _repeated_objects,
    _restore,
    _Shared,
    _substitute,
    make_executor,
)


def square(x):
    return x * x


def sum_with_offset(job):
    array, offset = job
    return float(array.sum()) + offset, array.flags.writeable


def raise_usage(_):
    raise UsageError("bad value in a worker", hint="fix it")


@pytest.fixture(scope="module")
def by_value():
    """Ray workers cannot import this test module: send its functions by value."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_local_executor_keeps_order():
    with LocalExecutor(1) as ex:
        assert list(ex.map(square, range(10))) == [x * x for x in range(10)]
    assert LocalExecutor.local_files and not RayExecutor.local_files


def test_make_executor_validates_engine_and_address():
    assert isinstance(make_executor("local", 1), LocalExecutor)
    with pytest.raises(UsageError, match="unknown engine 'spark'"):
        make_executor("spark")
    with pytest.raises(UsageError, match="--ray-address is only used with --engine ray"):
        make_executor("local", ray_address="ray://head:10001")


def test_repeated_objects_are_shared_once_and_restored_in_place():
    big, params = np.arange(5), {"k": 1}
    jobs = [(["a"], big, params, 3), (["b"], big, params, 3)]
    shared = _repeated_objects(jobs)
    assert [id(o) for o in shared] == [id(big), id(params)]  # not the per-job lists or ints
    slots = {id(o): i for i, o in enumerate(shared)}
    sent = _substitute(jobs[1], slots)
    assert sent[1] == _Shared(0) and sent[2] == _Shared(1) and sent[0] == ["b"]
    assert _restore(sent, shared) == (["b"], big, params, 3)


def test_a_task_gets_only_the_shared_objects_its_jobs_use():
    shards, params = [np.arange(3) + k for k in range(3)], {"k": 1}
    jobs = [(["a"], shards[k], params) for k in (0, 0, 1, 1, 2, 2)]
    shared = _repeated_objects(jobs)
    slots = {id(o): i for i, o in enumerate(shared)}
    refs = [f"ref-{i}" for i in range(len(shared))]  # what ray.put returned, per object
    packed, used = _pack(jobs[2:4], slots, refs)  # the two jobs of shard 1
    assert used == [refs[slots[id(shards[1])]], refs[slots[id(params)]]]
    assert [_restore(job, [shards[1], params]) for job in packed] == jobs[2:4]


@pytest.mark.parametrize(("chunk_size", "in_flight"), [(None, 4), (7, 1), (1, 1)])
def test_ray_executor_keeps_order_across_chunks(ray_runtime, by_value, chunk_size, in_flight):
    ex = RayExecutor(2, chunk_size=chunk_size, in_flight_per_worker=in_flight)
    with ex:
        assert list(ex.map(square, range(50))) == [x * x for x in range(50)]
        assert list(ex.map(square, iter(range(5)))) == [0, 1, 4, 9, 16]
        assert list(ex.map(square, [])) == []
    # The session's runtime was already running: the executor neither owned nor stopped it.
    import ray

    assert ray.is_initialized()


def test_ray_chunks_amortise_tasks(ray_runtime):
    ex = RayExecutor(2)
    ex.start()
    assert ex.chunk_for(8) == 1  # few jobs: one per task, so both workers get some
    assert ex.chunk_for(80) == 10  # about four tasks per worker
    assert ex.chunk_for(100_000) == 16  # bounded, so results stream and memory stays flat


def test_ray_shares_a_large_argument_read_only_through_the_object_store(ray_runtime, by_value):
    big = np.arange(1_000_000, dtype=np.float64)
    jobs = [(big, i) for i in range(6)]
    with RayExecutor(2, chunk_size=2) as ex:
        out = list(ex.map(sum_with_offset, jobs))
    assert [v for v, _ in out] == [float(big.sum()) + i for i in range(6)]
    # Mapped from the object store, not a private copy: workers cannot write to it.
    assert not any(writeable for _, writeable in out)


def test_ray_reraises_the_jobs_own_exception(ray_runtime, by_value):
    with RayExecutor(2) as ex:
        with pytest.raises(ValueError):
            list(ex.map(int, ["1", "x"]))
        with pytest.raises(UsageError, match="bad value in a worker"):
            list(ex.map(raise_usage, [1]))


def test_unreachable_cluster_fails_fast_with_a_usage_error():
    import socket

    with socket.socket() as s:  # a port nobody listens on: bind, then close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UsageError, match="cannot reach a Ray cluster") as err:
        _probe(f"127.0.0.1:{port}", timeout=2)
    assert err.value.exit_code == 2
    _probe("ray://head:10001")  # Ray client addresses are left to Ray


def test_missing_ray_is_a_usage_error_that_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'auditkit\[ray\]'") as err:
        make_executor("ray", 2)
    assert err.value.exit_code == 2


def test_cli_engine_ray_without_ray_exits_2_before_reading_input(monkeypatch, tmp_path):
    from auditkit.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    corpus = tmp_path / "s.jsonl"
    corpus.write_text('{"id": "a", "text": "fine", "icd10": "F32.1"}\n')
    for args in (
        ["audit", "--synthetic", str(corpus), "--out", str(tmp_path / "b")],
        ["phi", str(corpus)],
        ["overlap", "--synthetic", str(corpus), "--source", str(corpus)],
    ):
        result = CliRunner().invoke(main, [*args, "--engine", "ray"])
        assert result.exit_code == 2, (args, result.output)
        assert "pip install 'auditkit[ray]'" in result.output
        assert not (tmp_path / "b").exists()
