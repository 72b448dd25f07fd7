"""The fidelity check: hand-computed numbers on a tiny corpus, and the fixtures."""

import json
import random

import numpy as np
import pytest

from auditkit.checks.base import CheckContext
from auditkit.checks.fidelity import (
    FidelityCheck,
    FidelityConfig,
    _detection,
    auc,
    fidelity_summary,
    macro_f1,
)
from auditkit.corpus import load_corpus
from auditkit.executor import LocalExecutor
from auditkit.masking import Masker
from auditkit.policy import evaluate, load_policy
from auditkit.progress import Progress
from auditkit.resources import resolve_policy
from auditkit.results import canonical_json

SOURCE = [
    # F32.1: 4 and 1 and 3 and 0 criteria -> 2 of 4 reports reach 3
    ("s1", "F32.1", "Reports depressed mood, anhedonia and insomnia. Feels worthless."),
    ("s2", "F32.1", "Low mood for months. Denies anhedonia. Denies insomnia."),
    ("s3", "F32.1", "Tearful, fatigued, poor concentration at work."),
    (
        "s4",
        "F32.1",
        "Her mother has depression. She denies hopelessness, guilt or suicidal ideation.",
    ),
    # F10.20: 4, 2, 4, 1 criteria -> 2 of 4
    ("a1", "F10.20", "Drinks twelve beers daily with craving and tolerance. Withdrawal tremor."),
    ("a2", "F10.20", "Alcohol use with blackouts and a DUI last year."),
    ("a3", "F10.20", "Drinking more than intended, tried to cut down twice, craving alcohol."),
    ("a4", "F10.20", "Denies withdrawal. No craving. Drinks socially."),
]
SYNTHETIC = [
    ("y1", "F32.1", "Depressed mood with anhedonia and early morning awakening."),
    ("y2", "F32.1", "Denies depressed mood, anhedonia, guilt and insomnia."),  # all negated
    ("y3", "F32.1", "Hopeless and tearful, sleeping poorly, low energy, feels guilty."),
    ("z1", "F10.20", "Drinks vodka daily, withdrawal tremor, craving and tolerance noted."),
    ("z2", "F10.20", "Alcohol binges with craving, relapse after detox, lost her job."),
    # conditioned on alcohol dependence, but written as a depression note
    ("z3", "F10.20", "Depressed mood, anhedonia and insomnia, feels worthless and tearful."),
]


def _write(path, rows):
    path.write_text(
        "".join(json.dumps({"id": i, "icd10": c, "text": t}) + "\n" for i, c, t in rows)
    )
    return path


def _context(synthetic, source, holdout=None, seed=0):
    return CheckContext(
        synthetic=synthetic,
        source=source,
        holdout=holdout,
        seed=seed,
        executor=LocalExecutor(1),
        masker=Masker(b"k" * 32),
        progress=Progress(False),
    )


def _run(tmp_path, synthetic_rows, source_rows=SOURCE, **config):
    syn = load_corpus(_write(tmp_path / "syn.jsonl", synthetic_rows), "synthetic")
    src = load_corpus(_write(tmp_path / "src.jsonl", source_rows), "source")
    cfg = FidelityConfig(embeddings=False, bootstrap=200, **config)
    return FidelityCheck(cfg).run(_context(syn, src))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("tiny"), SYNTHETIC)


def test_coverage_per_code_matches_hand_count(tiny):
    value = lambda key: tiny.metric(key).value  # noqa: E731
    assert value("coverage[F32.1]") == pytest.approx(2 / 3)  # y1 (3) and y3 (4); y2 all denied
    assert value("coverage_source[F32.1]") == pytest.approx(2 / 4)
    assert value("coverage[F10.20]") == pytest.approx(2 / 3)  # z1, z2; z3 has none
    assert value("coverage_source[F10.20]") == pytest.approx(2 / 4)
    assert value("coverage") == pytest.approx(4 / 6)
    assert value("coverage_source") == pytest.approx(0.5)  # 3 x 0.5 + 3 x 0.5 over 6
    assert value("coverage_ratio") == pytest.approx((4 / 6) / 0.5)
    table = tiny.tables["coverage"]
    assert table.cell("F32.1", "synthetic_reports") == 3
    assert table.cell("F10.20", "source") == pytest.approx(0.5)
    criteria = tiny.tables["criteria"]
    assert criteria.cell("F32.1:anhedonia", "synthetic") == pytest.approx(1 / 3)  # y1 only
    assert criteria.cell("F32.1:anhedonia", "source") == pytest.approx(1 / 4)  # s1 only


def test_negated_criteria_are_not_counted(tiny):
    assert tiny.records["y2"].values["criteria"] == 0
    assert tiny.records["y1"].values["criteria"] == 3
    assert tiny.records["z3"].values["criteria"] == 0


def test_agreement_per_code_matches_hand_count(tiny):
    value = lambda key: tiny.metric(key).value  # noqa: E731
    # The classifier reads z3 (an alcohol code written as depression) as F32.1.
    assert value("agreement_accuracy") == pytest.approx(5 / 6)
    assert value("agreement_accuracy[F32.1]") == pytest.approx(1.0)
    assert value("agreement_accuracy[F10.20]") == pytest.approx(2 / 3)
    # F1: F32.1 tp 3, 3 true, 4 predicted -> 6/7; F10.20 tp 2, 3 true, 2 predicted -> 4/5
    assert value("agreement_f1[F32.1]") == pytest.approx(6 / 7)
    assert value("agreement_macro_f1") == pytest.approx((6 / 7 + 4 / 5) / 2)
    confusion = tiny.tables["confusion"]
    assert confusion.rows == ("F10.20", "F32.1")
    assert confusion.cell("F10.20", "F32.1") == 1 and confusion.cell("F10.20", "F10.20") == 2
    assert confusion.cell("F32.1", "F32.1") == 3
    assert tiny.metric("ceiling_accuracy").value is not None
    assert tiny.metric("agreement_accuracy").interval is not None


def test_off_code_record_field(tiny):
    off = {rid for rid, r in tiny.records.items() if r.values["off_code"]}
    assert off == {"z3"}
    z3 = tiny.records["z3"]
    assert z3.values["code_agrees"] == 0 and z3.values["scored"] == 1
    assert "predicts F32.1" in z3.findings[0].message
    assert any(e.record_id == "z3" for e in tiny.evidence)


def test_unknown_codes_are_reported_not_fatal(tmp_path):
    rows = [*SYNTHETIC, ("u1", "F99", "Depressed mood and anhedonia, insomnia.")]
    result = _run(tmp_path, rows)
    assert result.status == "ok"
    assert result.metric("unknown_codes").value == 1
    assert result.metric("codes_not_in_source").value == 1
    assert fidelity_summary(result)["unknown_codes"] == ["F99"]
    assert result.records["u1"].values["scored"] == 0
    assert result.metric("coverage[F99]") is None
    assert any("F99" in e.detail for e in result.evidence)


def test_same_seed_same_bytes(tmp_path, tiny):
    again = _run(tmp_path, SYNTHETIC)
    assert canonical_json(again) == canonical_json(tiny)


def test_macro_f1_and_auc_agree_with_sklearn():
    from sklearn.metrics import f1_score, roc_auc_score

    rng = np.random.default_rng(3)
    t, p = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    assert macro_f1(t, p, range(5)) == pytest.approx(f1_score(t, p, average="macro"))
    y, s = rng.integers(0, 2, 300), rng.normal(size=300)
    s[:5] = s[5]  # ties
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_detection_auc_separates_shifted_clouds_only():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 8)), rng.normal(size=(60, 8))
    cfg = FidelityConfig(bootstrap=200)
    same = _detection(a, b, cfg, 1, rng)
    shifted = _detection(a + 1.5, b, cfg, 1, rng)
    assert same[0] < 0.7
    assert shifted[0] > 0.95 and shifted[1].low > 0.9


# --- The fixtures ---------------------------------------------------------------------

GATES = (
    "fidelity-code-agreement",
    "fidelity-criteria-coverage",
    "fidelity-train-synthetic-test-real",
)


def _gates(result, n_records):
    policy = load_policy(resolve_policy("default"))
    verdict = evaluate([result], policy, [])
    return {g.id: g.outcome for g in verdict.gates if g.id in GATES}


def _fixture_run(fixtures_dir, tmp_path, shuffle):
    syn = load_corpus(fixtures_dir / "synthetic_clean.jsonl", "synthetic")
    if shuffle:
        rows = [json.loads(line) for line in (fixtures_dir / "synthetic_clean.jsonl").open()]
        codes = [r["icd10"] for r in rows]
        random.Random(7).shuffle(codes)
        for r, c in zip(rows, codes, strict=True):
            r["icd10"] = c
        path = tmp_path / "shuffled.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        syn = load_corpus(path, "synthetic")
    src = load_corpus(fixtures_dir / "source.jsonl", "source")
    hold = load_corpus(fixtures_dir / "holdout.jsonl", "holdout")
    cfg = FidelityConfig(embeddings=False, bootstrap=200, cv_folds=3)
    return FidelityCheck(cfg).run(_context(syn, src, hold))


def test_clean_fixture_passes_and_shuffled_codes_fail(fixtures_dir, tmp_path):
    clean = _fixture_run(fixtures_dir, tmp_path, shuffle=False)
    assert _gates(clean, 0) == dict.fromkeys(GATES, "pass")
    shuffled = _fixture_run(fixtures_dir, tmp_path, shuffle=True)
    outcomes = _gates(shuffled, 0)
    assert outcomes["fidelity-code-agreement"] == "warn"
    assert outcomes["fidelity-criteria-coverage"] == "warn"
    assert shuffled.metric("agreement_accuracy").value < 0.3
    assert shuffled.metric("coverage").value < clean.metric("coverage").value - 0.2
    assert shuffled.metric("undercovered_codes").value > 0
