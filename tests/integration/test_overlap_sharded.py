"""The overlap check with a sharded source index gives what the replicated index gives.

Through :func:`auditkit.pipeline.run_single_check` on fixture slices: metrics, per-record
results and evidence are equal for ``index_shards`` 1 and 3, on the local engine with two
pool workers (shards memory-mapped from their folders) and on Ray (shards through the
object store).
"""

import pytest

from auditkit.checks.overlap import OverlapCheck
from auditkit.pipeline import run_single_check

#: Small batches make several jobs per phase; no embeddings (they run on the driver).
SETTINGS = {"embeddings": False, "batch_size": 8}


@pytest.fixture(scope="module")
def corpora(fixture_slices, tmp_path_factory):
    """Slices of the leaky fixture, the source and the holdout (planted copies included)."""
    return fixture_slices(
        tmp_path_factory.mktemp("sharded"),
        {"synthetic": ("synthetic_leaky", 40), "source": ("source", 120),
         "holdout": ("holdout", 24)},
    )  # fmt: skip


def _run(corpora, shards, **kwargs):
    overrides = {**SETTINGS, "index_shards": shards}
    if shards > 1:
        overrides["record_shards"] = 2
    return run_single_check(
        OverlapCheck, corpora["synthetic"], source=corpora["source"],
        holdout=corpora["holdout"], seed=5, overrides=overrides, **kwargs,
    )  # fmt: skip


def _same(sharded, replicated):
    assert sharded.config["index_shards"] == 3 and replicated.config["index_shards"] == 1
    a, b = sharded, replicated
    assert a.status == b.status == "ok"
    assert a.metrics == b.metrics
    assert a.records == b.records
    assert a.evidence == b.evidence
    assert a.series == b.series


@pytest.fixture(scope="module")
def replicated(corpora):
    result = _run(corpora, 1)
    # The slice must exercise the matcher: leaks with evidence, and the DCR test.
    assert result.metric("records_with_leak").value > 0 and result.evidence
    assert result.metric("dcr_closer_share").value is not None
    return result


def test_sharded_index_on_two_local_workers_equals_the_replicated_index(corpora, replicated):
    _same(_run(corpora, 3, workers=2), replicated)


@pytest.mark.slow
def test_sharded_index_on_ray_equals_the_replicated_index(corpora, replicated, request):
    pytest.importorskip("ray")
    request.getfixturevalue("ray_runtime")
    _same(_run(corpora, 3, workers=2, engine="ray"), replicated)
