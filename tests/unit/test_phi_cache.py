"""The on-disk PHI scan cache: same results with and without it, no engine when warm,
no text or value stored, and a namespace that moves with everything detection depends on."""

import dataclasses
import sqlite3

import pytest

from auditkit.phi.cache import PhiScanCache, scan_namespace
from auditkit.phi.spans import PhiSpan
from auditkit.results import canonical_json

SOURCE = [
    ("s1", "Patient: Lourdes Cadena, DOB 09/19/1981, MRN 5849858906, cell 614-555-0182."),
    ("s2", "Seen with her sister Marisol. Address: 77 Beacon Ct., East Venton, PA 19312."),
    ("s3", "No identifiers here, only a PHQ-9 of 14."),
]
SYNTHETIC = [
    ("y1", "Lourdes Cadena (MRN 5849858906) reports better sleep."),
    ("y2", "Client lives in Dayton; seen by Dr. Okafor on March 14, 2024."),
    ("y3", "No identifiers here, only a PHQ-9 of 14."),
]


def _context(source, synthetic):
    from auditkit.checks.base import CheckContext
    from auditkit.corpus import Corpus, Record
    from auditkit.executor import LocalExecutor
    from auditkit.masking import Masker
    from auditkit.progress import Progress

    def corpus(role, rows):
        records = tuple(Record(id=i, text=t) for i, t in rows)
        return Corpus(
            role=role, path=role, format="jsonl", sha256="0", size_bytes=0, records=records
        )

    return CheckContext(
        synthetic=corpus("synthetic", synthetic),
        source=corpus("source", source),
        seed=0,
        executor=LocalExecutor(1),
        masker=Masker(b"k" * 32),
        progress=Progress(False),
    )


@pytest.mark.slow
def test_cached_run_is_identical_and_builds_no_engine(tmp_path, monkeypatch):
    import auditkit.phi.engine as engine
    from auditkit.checks.phi import PhiCheck

    monkeypatch.setenv("AUDITKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("AUDITKIT_NO_CACHE", raising=False)
    check = PhiCheck(PhiCheck.configure({}))
    first = check.run(_context(SOURCE, SYNTHETIC))
    assert (tmp_path / "phi_scans.sqlite").exists()

    def no_engine(*args, **kwargs):
        raise AssertionError("a fully cached run must not build or run the engine")

    with monkeypatch.context() as patched:
        for name in ("get_engine", "analyze_batch", "PhiEngine"):
            patched.setattr(engine, name, no_engine)
        second = PhiCheck(PhiCheck.configure({})).run(_context(SOURCE, SYNTHETIC))
    assert canonical_json(second) == canonical_json(first)
    # Source reuse still comes from the cached source spans and the source texts.
    reused = [f for r in second.records.values() for f in r.findings if "source" in f.kind]
    assert reused

    monkeypatch.setenv("AUDITKIT_NO_CACHE", "1")  # the real engine, no cache: the same
    fresh = PhiCheck(PhiCheck.configure({})).run(_context(SOURCE, SYNTHETIC))
    assert canonical_json(fresh) == canonical_json(first)


@pytest.mark.slow
def test_partly_cached_run_scans_only_the_new_texts(tmp_path, monkeypatch):
    import auditkit.phi.engine as engine
    from auditkit.checks.phi import PhiCheck

    monkeypatch.setenv("AUDITKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("AUDITKIT_NO_CACHE", raising=False)
    PhiCheck(PhiCheck.configure({})).run(_context(SOURCE, SYNTHETIC[:1]))
    seen = []
    real = engine.analyze_batch

    def counting(args):
        seen.extend(args[1])
        return real(args)

    monkeypatch.setattr(engine, "analyze_batch", counting)
    PhiCheck(PhiCheck.configure({})).run(_context(SOURCE, SYNTHETIC))
    assert seen == [SYNTHETIC[1][1]]  # y3 has the same text as s3, y1 was scanned before


def test_store_holds_offsets_not_text(tmp_path):
    text = "Patient: Lourdes Cadena, cell 614-555-0182"
    spans = [
        PhiSpan(9, 23, "NAME", 0.8, "LabelledNameRecognizer"),
        PhiSpan(30, 42, "PHONE", 1 / 3, "NanpPhoneRecognizer:x"),
    ]
    cache = PhiScanCache(tmp_path, "ns")
    cache.put_many([text], [spans])
    assert cache.get_many([text, "other"]) == {0: spans}  # exact floats round-trip
    assert PhiScanCache(tmp_path, "other-ns").get_many([text]) == {}
    cache.close()
    dump = "\n".join(sqlite3.connect(tmp_path / "phi_scans.sqlite").iterdump())
    for value in ("Lourdes", "Cadena", "614-555-0182", "Patient"):
        assert value not in dump


def test_namespace_changes_with_detection_settings(tmp_path):
    from auditkit.phi.engine import EngineSpec, resolve_model
    from auditkit.phi.rules import default_rules_dir

    spec = EngineSpec(model=resolve_model())
    base = scan_namespace(spec)
    assert scan_namespace(spec) == base
    assert scan_namespace(dataclasses.replace(spec, score_threshold=0.5)) != base
    assert scan_namespace(dataclasses.replace(spec, propagate_names=False)) != base
    rules = tmp_path / "phi"
    rules.mkdir()
    for f in default_rules_dir().glob("*.yaml"):
        (rules / f.name).write_text(f.read_text())
    (rules / "names.yaml").write_text((rules / "names.yaml").read_text() + "\n# edited\n")
    assert scan_namespace(dataclasses.replace(spec, rules_dir=str(rules))) != base
    for part in ("presidio-analyzer=", "spacy=", "model=", "rules=", "code="):
        assert part in base


def test_no_cache_switch(monkeypatch):
    from auditkit.phi.cache import open_cache
    from auditkit.phi.engine import EngineSpec

    monkeypatch.setenv("AUDITKIT_NO_CACHE", "1")
    assert open_cache(EngineSpec(model="unused")) is None
