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
