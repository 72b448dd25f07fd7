"""The certificate: PAdES-signed report.pdf with embedded evidence, attestation, full
verify, rerun, CI outputs, and a report free of PHI and copied passages.

Every test here shares the one session-scoped ``leaky_bundle`` (tests/conftest.py).
"""

import io
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.slow


def auditkit(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "auditkit", *args], capture_output=True, text=True, cwd=cwd
    )


def _validate(data: bytes):
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    sig = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures[0]
    return validate_pdf_signature(sig, ValidationContext(trust_roots=[], allow_fetching=False))


def test_pdf_signature_validates_with_pyhanko_and_fails_after_one_byte_change(leaky_bundle):
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    out, _, proc = leaky_bundle
    assert proc.returncode == 1, proc.stderr
    data = (out / "report.pdf").read_bytes()
    status = _validate(data)
    assert status.intact and status.valid
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert "/ETSI.CAdES.detached" in data.decode("latin-1")  # PAdES, not adbe.pkcs7
    changed = bytearray(data)
    changed[len(data) // 3] ^= 0x01  # inside the signed byte range
    assert not _validate(bytes(changed)).intact


def test_attachments_inside_the_pdf_equal_the_bundle_files(leaky_bundle):
    from auditkit.pades import embedded_files

    out, _, _ = leaky_bundle
    embedded = embedded_files((out / "report.pdf").read_bytes())
    assert set(embedded) == {"results.json", "manifest.json", "signature.json"}
    for name, data in embedded.items():
        assert data == (out / name).read_bytes(), name


def test_verify_lists_every_failure(leaky_bundle, tmp_path):
    out, _, _ = leaky_bundle
    ok = auditkit("verify", str(out))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("OK ") == 4
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    with open(bad / "report.pdf", "ab") as f:
        f.write(b"%")  # appended bytes are outside the signed range
    (bad / "release.jsonl").write_text((out / "release.jsonl").read_text() + "\n")
    proc = auditkit("verify", str(bad))
    assert proc.returncode == 1
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 3, proc.stdout  # digests, PDF coverage, attestation subject
    assert "release.jsonl" in proc.stdout and "whole file" in proc.stdout
    assert "3 of 4 checks failed" in proc.stderr


def test_attestation_subjects_are_the_dataset_and_the_release(leaky_bundle, fixtures_dir):
    import hashlib

    from auditkit import attestation

    out, _, _ = leaky_bundle
    doc = json.loads((out / "signature.json").read_text())
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(doc["certificate"].encode())
    stmt = attestation.verify_envelope((out / attestation.FILE).read_text(), cert)
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert attestation.subject_digests(stmt) == {
        "synthetic_leaky.jsonl": sha(fixtures_dir / "synthetic_leaky.jsonl"),
        "release.jsonl": sha(out / "release.jsonl"),
    }
    results = json.loads((out / "results.json").read_text())
    predicate = stmt["predicate"]
    assert predicate["verdict"]["outcome"] == results["verdict"]["outcome"]
    assert [g["id"] for g in predicate["gates"]] == [g["id"] for g in results["verdict"]["gates"]]
    assert predicate["policy"]["sha256"] == results["policy"]["sha256"]
    assert {"auditkit", "pyhanko", "spacy"} <= set(predicate["tools"])


def test_rerun_is_identical_and_refuses_a_changed_input_or_policy(
    leaky_bundle, fixtures_dir, tmp_path
):
    out, _, _ = leaky_bundle
    proc = auditkit("rerun", str(out), "--out", str(tmp_path / "fresh"), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "IDENTICAL" in proc.stdout
    assert (tmp_path / "fresh" / "results.json").read_bytes() == (out / "results.json").read_bytes()

    changed = tmp_path / "synthetic.jsonl"
    lines = (fixtures_dir / "synthetic_leaky.jsonl").read_text().splitlines(keepends=True)
    changed.write_text("".join(lines[:-1]))  # one record fewer
    proc = auditkit("rerun", str(out), "--input", f"synthetic={changed}", "--quiet")
    assert proc.returncode == 1
    assert "synthetic input differs from the audited one" in proc.stderr

    policy = tmp_path / "strict.yaml"
    policy.write_text((fixtures_dir.parent / "rules" / "strict.yaml").read_text() + "\n# edit\n")
    proc = auditkit("rerun", str(out), "--input", f"policy={policy}", "--quiet")
    assert proc.returncode == 1
    assert "policy input differs from the audited one" in proc.stderr


def _planted_strings(fixtures_dir):
    """Every planted PHI value and copied passage of the leaky fixture, and source PHI."""
    texts = {
        r["id"]: r["text"] for r in map(json.loads, (fixtures_dir / "synthetic_leaky.jsonl").open())
    }
    phi, passages = set(), []
    for label in map(json.loads, (fixtures_dir / "synthetic_leaky.labels.jsonl").open()):
        for item in label["planted"]:
            value = texts[label["id"]][item["start"] : item["end"]]
            if "copy" in item["kind"]:
                passages.append(value)
            else:
                phi.add(value)
    for record in map(json.loads, (fixtures_dir / "source_identifiers.jsonl").open()):
        phi |= {i["value"] for i in record["identifiers"]}
    return {v for v in phi if len(v) >= 6}, passages


def test_no_planted_phi_or_copied_passage_in_the_report(leaky_bundle, fixtures_dir):
    import html

    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils not installed")
    out, _, _ = leaky_bundle
    pdf_text = subprocess.run(
        ["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    html_text = html.unescape((out / "report.html").read_text())
    phi, passages = _planted_strings(fixtures_dir)
    assert phi and passages
    results = json.loads((out / "results.json").read_text())
    assert results["checks"][0]["evidence"], "the report has evidence to leak from"
    squash = lambda s: " ".join(s.split())  # noqa: E731  (pdftotext breaks lines)
    for name, content in (("report.pdf", squash(pdf_text)), ("report.html", squash(html_text))):
        for value in phi:
            assert squash(value) not in content, f"{name} shows a planted PHI value"
        for passage in passages:
            words = passage.split()
            for i in range(0, max(1, len(words) - 8)):
                assert " ".join(words[i : i + 8]) not in content, f"{name} shows a copied passage"


def test_junit_has_one_case_per_gate_with_advice(leaky_bundle):
    out, junit, _ = leaky_bundle
    results = json.loads((out / "results.json").read_text())
    cases = ET.parse(junit).getroot().findall(".//testcase")
    gates = results["verdict"]["gates"] + results["verdict"]["record_gates"]
    assert sorted(c.get("name") for c in cases) == sorted(g["id"] for g in gates)
    failures = [c.find("failure") for c in cases if c.find("failure") is not None]
    assert failures
    for failure in failures:
        assert "What to do:" in failure.get("message")


def test_summary_json_is_one_line_on_stdout(leaky_bundle):
    out, _, proc = leaky_bundle
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    summary = json.loads(lines[0])
    results = json.loads((out / "results.json").read_text())
    assert summary["verdict"] == results["verdict"]["outcome"] == "fail"
    assert summary["exit_code"] == proc.returncode == 1
    assert [g["id"] for g in summary["gates"]] == [g["id"] for g in results["verdict"]["gates"]]
    assert summary["bundle"] == str(out)


def test_report_pages_render_and_none_is_blank(leaky_bundle, tmp_path):
    from PIL import Image

    if not shutil.which("pdftoppm"):
        pytest.skip("poppler-utils not installed")
    out, _, _ = leaky_bundle
    subprocess.run(
        ["pdftoppm", "-r", "30", "-gray", "-png", str(out / "report.pdf"), str(tmp_path / "p")],
        check=True,
    )
    pages = sorted(tmp_path.glob("p-*.png"))
    assert len(pages) >= 5
    for page in pages:
        image = Image.open(page).convert("L")
        width, height = image.size
        # The body, without the running header and footer that every page has.
        histogram = image.crop((0, height * 8 // 100, width, height * 92 // 100)).histogram()
        inked = sum(histogram[:230]) / sum(histogram)
        assert inked > 0.02, f"{page.name} has no content ({inked:.2%} inked)"


def test_report_shows_verdict_page_charts_and_reproducibility(leaky_bundle, fixtures_dir):
    import hashlib

    out, _, _ = leaky_bundle
    page = (out / "report.html").read_text()
    sha = hashlib.sha256((fixtures_dir / "synthetic_leaky.jsonl").read_bytes()).hexdigest()
    verdict_page = page[: page.index('id="inputs"')]
    for needle in (sha, "Verdict: FAIL", "signed at", "no-copied-source-passages"):
        assert needle in verdict_page, needle
    assert page.count("<svg") >= 4  # PHI categories, copied span, 2 distance histograms
    for needle in ("auditkit verify", "auditkit rerun", "--seed 7", "pyhanko"):
        assert needle in page, needle
