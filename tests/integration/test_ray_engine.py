"""The Ray engine end to end: the same bundle results as the local engine, byte for byte."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def auditkit(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "auditkit", *args], capture_output=True, text=True, env=env
    )


def test_ray_and_local_write_byte_identical_results(
    tmp_path, fixture_slices, repo_policy, ray_runtime
):
    # No PHI cache: both engines must really scan (a cache hit would skip the executor).
    # Embeddings run on the driver under either engine, so they may come from the cache.
    env = {**os.environ, "AUDITKIT_NO_CACHE": "phi"}
    # A slice of each fixture keeps the two audits short; enough for several batches.
    corpora = fixture_slices(
        tmp_path,
        {"synthetic": ("synthetic_leaky", 24), "source": ("source", 60),
         "holdout": ("holdout", 24)},
    )  # fmt: skip
    common = [
        "--synthetic", str(corpora["synthetic"]),
        "--source", str(corpora["source"]),
        "--holdout", str(corpora["holdout"]),
        "--policy", str(repo_policy), "--seed", "3", "--workers", "2", "--quiet",
    ]  # fmt: skip
    local = auditkit("audit", *common, "--out", str(tmp_path / "local"), env=env)
    # The CLI connects to the test session's runtime as a cluster (--ray-address), so the
    # index goes through the object store exactly as it would to other nodes.
    import ray as ray_module

    address = ray_module.get_runtime_context().gcs_address
    ray = auditkit(
        "audit", *common, "--engine", "ray", "--ray-address", address,
        "--out", str(tmp_path / "ray"), env=env,
    )  # fmt: skip
    assert local.returncode in (0, 1), local.stderr
    assert ray.returncode == local.returncode, ray.stderr
    results = (tmp_path / "local" / "results.json").read_bytes()
    assert (tmp_path / "ray" / "results.json").read_bytes() == results
    checks = {c["check"]: c["status"] for c in json.loads(results)["checks"]}
    # Every check of the shipped policy ran (membership needs --generator: skipped).
    assert checks == {
        "phi": "ok",
        "overlap": "ok",
        "membership": "skipped",
        "diversity": "ok",
        "fidelity": "ok",
    }
    engines = [
        json.loads((tmp_path / name / "manifest.json").read_text())["options"]["engine"]
        for name in ("local", "ray")
    ]
    assert engines == ["local", "ray"]
    assert auditkit("verify", str(tmp_path / "ray")).returncode == 0


@pytest.fixture
def repo_policy(tmp_path, fixtures_dir):
    """The strict policy (phi, overlap, diversity) without the MiniLM embedding test.

    The embeddings run on the driver under either engine; leaving them out keeps the test
    to what the engines distribute. Small batches make several jobs per stage, so Ray
    chunks them and shares the source index through the object store.
    """
    strict = (fixtures_dir.parent / "rules" / "strict.yaml").read_text()
    assert "  overlap:\n" in strict
    policy = tmp_path / "strict-no-embeddings.yaml"
    policy.write_text(
        strict.replace(
            "  overlap:\n", "  overlap:\n    embeddings: false\n    batch_size: 8\n", 1
        ).replace("  phi:\n", "  phi:\n    batch_size: 8\n", 1)
    )
    return policy
