"""`auditkit fidelity`: the JSON contract, the table, and a broken rules folder."""

import json
import subprocess
import sys

import pytest

DEPRESSION = [
    "Depressed mood with anhedonia and early morning awakening.",
    "Tearful and hopeless, poor concentration, low energy, feels guilty.",
    "Low mood, loss of interest, insomnia and weight loss.",
    "Sad most days, fatigued, worthless, trouble sleeping.",
]
ALCOHOL = [
    "Drinks vodka daily, withdrawal tremor, craving and tolerance noted.",
    "Alcohol binges with craving, relapse after detox, lost her job.",
    "Drinking more than intended, tried to cut down, DUI last year.",
    "Beer every morning for the shakes, blackouts, tolerance to alcohol.",
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    d = tmp_path_factory.mktemp("fid")
    src = [{"id": f"d{i}", "icd10": "F32.1", "text": t} for i, t in enumerate(DEPRESSION)]
    src += [
        {"id": f"a{i}", "icd10": ["F10.20", "F17.210"], "text": t} for i, t in enumerate(ALCOHOL)
    ]
    syn = [{"id": f"s{i}", "icd10": "F32.1", "text": t} for i, t in enumerate(DEPRESSION[:3])]
    syn += [{"id": f"t{i}", "icd10": "F10.20", "text": t} for i, t in enumerate(ALCOHOL[1:])]
    syn.append({"id": "u1", "icd10": "F99", "text": "Patient seen for follow-up."})
    return d, _write(d / "syn.jsonl", syn), _write(d / "src.jsonl", src)


def auditkit(*args):
    return subprocess.run(
        [sys.executable, "-m", "auditkit", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_json_has_exactly_the_documented_keys(corpora):
    _, syn, src = corpora
    proc = auditkit("fidelity", "--synthetic", syn, "--source", src, "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"agreement", "tstr", "coverage", "detection_auc", "unknown_codes"}
    assert set(out["agreement"]) == {"accuracy", "macro_f1", "ceiling_accuracy", "per_code"}
    assert set(out["agreement"]["per_code"]) == {"F32.1", "F10.20"}
    assert set(out["tstr"]) == {"macro_f1", "trtr_macro_f1"}
    assert set(out["coverage"]) == {"F32.1", "F10.20"}
    assert set(out["coverage"]["F32.1"]) == {"synthetic", "source"}
    assert out["unknown_codes"] == ["F99"]
    assert 0 <= out["detection_auc"] <= 1
    assert 0 <= out["agreement"]["accuracy"] <= 1


@pytest.mark.slow
def test_table_output_names_the_measures(corpora):
    _, syn, src = corpora
    proc = auditkit("fidelity", "-s", syn, "--source", src, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "code agreement, accuracy" in proc.stdout and "F32.1" in proc.stdout
    assert "codes not in rules/icd10: F99" in proc.stdout


def test_broken_rules_folder_is_a_usage_error_naming_file_and_key(corpora):
    d, syn, src = corpora
    rules = d / "rules"
    rules.mkdir()
    (rules / "context.yaml").write_text(
        "triggers:\n  - {phrase: no, category: negated, direction: forward}\n"
    )
    (rules / "codes.yaml").write_text("codes:\n  F32:\n    title: X\n    include: [missing]\n")
    policy = d / "policy.yaml"
    policy.write_text(f"name: t\nchecks:\n  fidelity:\n    rules: {rules}\n")
    proc = auditkit("fidelity", "-s", syn, "--source", src, "--policy", str(policy), "-q")
    assert proc.returncode == 2, proc.stderr
    assert "codes.yaml, field 'codes.F32.include[0]'" in proc.stderr
    assert "unknown criteria set 'missing'" in proc.stderr
    # an audit refuses the policy before reading any corpus
    proc = auditkit("audit", "-s", syn, "--policy", str(policy), "--out", str(d / "b"), "-q")
    assert proc.returncode == 2 and "codes.yaml, field 'codes.F32.include[0]'" in proc.stderr
    assert not (d / "b").exists()
