import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"


@pytest.fixture(scope="session")
def shared_tmp(tmp_path_factory, worker_id) -> Path:
    """A folder of this test run shared by every pytest-xdist worker (its own when serial)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if worker_id != "master" else base


@pytest.fixture(autouse=True, scope="session")
def _isolated_demo_key(shared_tmp):
    """Keep the demo key and the caches of the test run out of the user's cache.

    One cache folder for the whole run, shared by the workers: the demo key is made once
    (under its lock) and a fixture text is PHI-scanned and embedded once, not once per
    worker. Tests of the caches themselves use their own folders.
    """
    cache = shared_tmp / "auditkit-cache"
    cache.mkdir(exist_ok=True)
    old = os.environ.get("AUDITKIT_CACHE_DIR")
    os.environ["AUDITKIT_CACHE_DIR"] = str(cache)
    yield
    if old is None:
        os.environ.pop("AUDITKIT_CACHE_DIR", None)
    else:
        os.environ["AUDITKIT_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def fixture_slices():
    """Write the first ``n`` records of shipped corpora into a folder, one file per role.

    Called as ``fixture_slices(folder, {"synthetic": ("synthetic_leaky", 24), ...})``;
    returns ``{role: path}``. Small slices keep engine and sharding tests short.
    """

    def write(folder: Path, sizes: dict[str, tuple[str, int]]) -> dict[str, Path]:
        out = {}
        for role, (name, n) in sizes.items():
            lines = (FIXTURES / f"{name}.jsonl").read_text().splitlines(keepends=True)
            out[role] = folder / f"{role}.jsonl"
            out[role].write_text("".join(lines[:n]))
        return out

    return write


@pytest.fixture(scope="session")
def leaky_bundle(shared_tmp):
    """One signed bundle of the leaky fixture (strict policy, seed 7), shared by every test.

    Audited once per test run through the CLI with --junit and --summary json; the first
    worker to ask builds it under a file lock (on two worker processes: the other test
    worker is waiting for it) and the others reuse it. Returns the bundle
    folder, the JUnit path and the finished process. Tests must not change the bundle.
    """
    import json
    import subprocess
    import sys

    from filelock import FileLock

    root = shared_tmp / "leaky"
    out, junit, record = root / "bundle", root / "junit.xml", root / "process.json"
    with FileLock(str(shared_tmp / "leaky.lock")):
        if not record.exists():
            root.mkdir(exist_ok=True)
            args = [
                sys.executable, "-m", "auditkit", "audit",
                "--synthetic", str(FIXTURES / "synthetic_leaky.jsonl"),
                "--source", str(FIXTURES / "source.jsonl"),
                "--holdout", str(FIXTURES / "holdout.jsonl"),
                "--policy", "strict", "--seed", "7", "--workers", "2", "--out", str(out),
                "--junit", str(junit), "--summary", "json", "--quiet",
            ]  # fmt: skip
            proc = subprocess.run(args, capture_output=True, text=True)
            done = {"args": args, "returncode": proc.returncode}
            record.write_text(json.dumps({**done, "stdout": proc.stdout, "stderr": proc.stderr}))
    done = json.loads(record.read_text())
    proc = subprocess.CompletedProcess(
        done["args"], done["returncode"], done["stdout"], done["stderr"]
    )
    return out, junit, proc


@pytest.fixture(scope="session")
def ray_runtime():
    """One local Ray runtime (2 CPUs) for the whole test session; RayExecutors reuse it.

    Starting Ray takes a few seconds, so tests share this one; an executor that finds a
    runtime already initialised uses it and leaves it running.
    """
    from auditkit.executor import RayExecutor

    owner = RayExecutor(2)
    owner.start()
    yield owner
    owner.close()
