"""End to end on the shipped fixtures: the bundle, its signature, determinism, JUnit."""

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.slow

BUNDLE_FILES = {
    "results.json",
    "manifest.json",
    "signature.json",
    "report.html",
    "report.pdf",
    "release.jsonl",
    "quarantine.jsonl",
    "attestation.intoto.jsonl",
}


def auditkit(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "auditkit", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_leaky_audit_fails_with_exit_1_and_writes_every_file(leaky_bundle):
    out, _, proc = leaky_bundle
    assert proc.returncode == 1, proc.stderr
    assert "FAIL" in proc.stderr and str(out) in proc.stderr  # --summary json: humans on stderr
    assert {p.name for p in out.iterdir()} == BUNDLE_FILES
    assert "THROWAWAY DEMO KEY" in proc.stderr
    assert not list(out.parent.glob(".bundle.tmp-*")), "temporary folder left behind"


def test_release_and_quarantine_partition_the_input(leaky_bundle, fixtures_dir):
    out, _, _ = leaky_bundle
    ids = [json.loads(line)["id"] for line in (fixtures_dir / "synthetic_leaky.jsonl").open()]
    released = [json.loads(line) for line in (out / "release.jsonl").open()]
    quarantined = [json.loads(line) for line in (out / "quarantine.jsonl").open()]
    assert sorted([r["id"] for r in released] + [q["id"] for q in quarantined]) == sorted(ids)
    assert quarantined, "the leaky set has near-duplicate clusters"
    for q in quarantined:
        assert set(q) == {"id", "gates", "reasons", "text_sha256"}, "no text in quarantine"
        assert q["gates"] and q["reasons"]
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"]["outcome"] == "fail"


def test_verify_passes_then_fails_on_any_changed_byte(leaky_bundle, tmp_path):
    out, _, _ = leaky_bundle
    ok = auditkit("verify", str(out))
    assert ok.returncode == 0, ok.stderr
    for name in sorted(BUNDLE_FILES):
        copy = tmp_path / name
        shutil.copytree(out, copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / name).write_bytes(bytes(data))
        bad = auditkit("verify", str(copy))
        assert bad.returncode == 1, name
        assert name in bad.stderr, (name, bad.stderr)


def test_junit_has_one_case_per_gate(leaky_bundle):
    out, junit, _ = leaky_bundle
    results = json.loads((out / "results.json").read_text())
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    gates = results["verdict"]["gates"] + results["verdict"]["record_gates"]
    assert sorted(c.get("name") for c in cases) == sorted(g["id"] for g in gates)
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {g["id"] for g in results["verdict"]["gates"] if g["outcome"] == "fail"}


def test_same_seed_gives_byte_identical_results(leaky_bundle, fixtures_dir, tmp_path):
    out, _, _ = leaky_bundle
    again = tmp_path / "again"
    # A different working directory and worker count must not change a byte.
    proc = auditkit(
        "audit",
        "--synthetic",
        str(fixtures_dir / "synthetic_leaky.jsonl"),
        "--source",
        str(fixtures_dir / "source.jsonl"),
        "--holdout",
        str(fixtures_dir / "holdout.jsonl"),
        "--policy",
        "strict",
        "--seed",
        "7",
        "--workers",
        "1",
        "--out",
        str(again),
        "--quiet",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert (again / "results.json").read_bytes() == (out / "results.json").read_bytes()


def test_manifest_pins_inputs_seed_versions_and_command(leaky_bundle, fixtures_dir):
    out, _, _ = leaky_bundle
    manifest = json.loads((out / "manifest.json").read_text())
    import hashlib

    src = fixtures_dir / "source.jsonl"
    assert manifest["inputs"]["source"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert manifest["seed"] == 7
    assert manifest["command"]["argv"][:2] == ["auditkit", "audit"]
    assert "--seed" in manifest["command"]["argv"]
    assert {"spacy", "torch", "datasketch", "sacrebleu"} <= set(manifest["environment"]["packages"])
    # report.pdf embeds the manifest, so its own PAdES signature pins it instead.
    assert set(manifest["outputs"]) == BUNDLE_FILES - {
        "manifest.json",
        "signature.json",
        "report.pdf",
    }
    assert set(manifest["self_signed_outputs"]) == {"report.pdf"}


def test_outputs_never_contain_report_text(leaky_bundle, fixtures_dir):
    out, _, _ = leaky_bundle
    texts = [json.loads(line)["text"] for line in (fixtures_dir / "synthetic_leaky.jsonl").open()]
    texts += [json.loads(line)["text"] for line in (fixtures_dir / "source.jsonl").open()]
    pdf_text = (
        subprocess.run(
            ["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True
        ).stdout
        if shutil.which("pdftotext")
        else ""
    )
    outputs = {
        name: (out / name).read_text()
        for name in ("results.json", "report.html", "quarantine.jsonl", "manifest.json")
    }
    outputs["report.pdf"] = pdf_text
    for name, content in outputs.items():
        for text in texts:
            words = text.split()
            # any 12-word window of a report would be a verbatim passage
            for i in range(0, max(1, len(words) - 12), 25):
                passage = " ".join(words[i : i + 12])
                assert passage not in content, f"{name} contains report text"


def test_signed_with_own_key_and_trusted(tmp_path, fixtures_dir):
    keys = tmp_path / "keys"
    proc = auditkit("keygen", "--out", str(keys), "--cn", "Example Health Privacy Office")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "bundle"
    proc = auditkit(
        "audit",
        "--synthetic",
        str(fixtures_dir / "synthetic_clean.jsonl"),
        "--source",
        str(fixtures_dir / "source.jsonl"),
        "--key",
        str(keys),
        "--out",
        str(out),
        "--quiet",
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "THROWAWAY" not in proc.stderr
    assert "THROWAWAY" not in (out / "report.html").read_text()
    trusted = auditkit("verify", str(out), "--trust", str(keys / "signing-cert.pem"))
    assert trusted.returncode == 0 and "Example Health Privacy Office" in trusted.stdout
    other = tmp_path / "other"
    auditkit("keygen", "--out", str(other))
    untrusted = auditkit("verify", str(out), "--trust", str(other / "signing-cert.pem"))
    assert untrusted.returncode == 1


def test_report_pdf_renders_pages(leaky_bundle, tmp_path):
    if not shutil.which("pdftoppm"):
        pytest.skip("poppler-utils not installed")
    out, _, _ = leaky_bundle
    subprocess.run(
        ["pdftoppm", "-r", "30", "-png", str(out / "report.pdf"), str(tmp_path / "p")], check=True
    )
    pages = sorted(tmp_path.glob("p-*.png"))
    assert len(pages) >= 2
    from PIL import Image

    for page in pages:
        extrema = Image.open(page).convert("L").getextrema()
        assert extrema[0] < 128, f"{page.name} is blank"
