import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"


@pytest.fixture(autouse=True, scope="session")
def _isolated_demo_key(tmp_path_factory):
    """Keep the throwaway demo key of the test run out of the user's cache."""
    cache = tmp_path_factory.mktemp("auditkit-cache")
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
def leaky_bundle(tmp_path_factory):
    """One signed bundle of the leaky fixture (strict policy, seed 7), shared by every test.

    Audited once through the CLI with --junit and --summary json; returns the bundle
    folder, the JUnit path and the finished process.
    """
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("leaky") / "bundle"
    junit = out.parent / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "auditkit", "audit",
         "--synthetic", str(FIXTURES / "synthetic_leaky.jsonl"),
         "--source", str(FIXTURES / "source.jsonl"),
         "--holdout", str(FIXTURES / "holdout.jsonl"),
         "--policy", "strict", "--seed", "7", "--out", str(out),
         "--junit", str(junit), "--summary", "json", "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
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
