"""Full verification of a bundle: every signature, every digest, every embedded file.

Owns :func:`verify`, which runs every check independently and collects the outcome of
each, so ``auditkit verify`` can say exactly what failed instead of stopping at the first
problem:

1. ``signature.json`` is a valid signature over ``manifest.json`` (by the ``--trust``
   certificate's key when one is given);
2. every output the manifest lists has its recorded size and sha256, and no other file is
   in the folder;
3. ``report.pdf`` carries one intact, valid PAdES signature covering the whole file, made
   with the same key as ``signature.json`` (and chaining to the trust root when given);
4. the files embedded in ``report.pdf`` are byte-identical to the bundle's;
5. ``attestation.intoto.jsonl`` is a DSSE envelope signed by the same key whose subjects
   are the manifest's synthetic dataset digest and release.jsonl's digest.

Any changed byte in any file fails at least one of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from auditkit import attestation, signing
from auditkit.bundle import PDF_ATTACHMENTS, RELEASE, REPORT_PDF
from auditkit.errors import UsageError, VerificationError


@dataclass(frozen=True)
class Step:
    """One verification step: what was checked, whether it held, and why not."""

    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    """Every step of a verification, and who signed (when that could be established)."""

    steps: list[Step] = field(default_factory=list)
    subject: str | None = None
    demo_key: bool = False
    trusted: bool = False

    @property
    def ok(self) -> bool:
        """True when every step held."""
        return bool(self.steps) and all(s.ok for s in self.steps)

    @property
    def failures(self) -> list[Step]:
        """The steps that failed."""
        return [s for s in self.steps if not s.ok]


def verify(bundle_dir: str | Path, *, trusted_cert: str | Path | None = None) -> Report:
    """Verify a bundle completely; never stops at the first failure.

    Raises:
        UsageError: ``bundle_dir`` is not a folder.
        SigningError: ``trusted_cert`` is not a readable PEM certificate.
    """
    root = Path(bundle_dir)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder", hint="pass the folder an audit wrote")
    trusted = signing._load_certificate(Path(trusted_cert)) if trusted_cert else None
    report = Report(trusted=trusted is not None)
    cert: x509.Certificate | None = None

    def step(name: str, fn: Callable[[], str]) -> None:
        try:
            report.steps.append(Step(name, True, fn()))
        except VerificationError as exc:
            report.steps.append(Step(name, False, exc.message))

    def detached() -> str:
        nonlocal cert
        result = signing.verify_bundle(root, trusted_cert=trusted_cert)
        cert = _signature_certificate(root)
        report.subject, report.demo_key = result.subject, result.demo_key
        return f"{len(result.files)} files match the signed manifest.json"

    step("detached signature and manifest digests", detached)
    if cert is None:  # still learn the signer's key to check the PDF and the attestation
        try:
            cert = _signature_certificate(root)
        except VerificationError:
            cert = None
    step("PAdES signature of report.pdf", lambda: _check_pdf(root, cert, trusted))
    step("files embedded in report.pdf", lambda: _check_attachments(root))
    step("in-toto attestation", lambda: _check_attestation(root, cert))
    return report


def _signature_certificate(root: Path) -> x509.Certificate:
    try:
        doc = json.loads((root / "signature.json").read_text(encoding="utf-8"))
        return x509.load_pem_x509_certificate(doc["certificate"].encode())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VerificationError("signature.json: missing or unreadable") from exc


def _pdf_bytes(root: Path) -> bytes:
    path = root / REPORT_PDF
    if path.is_symlink() or not path.is_file():
        raise VerificationError(f"{REPORT_PDF}: missing")
    return path.read_bytes()


def _check_pdf(root: Path, cert: x509.Certificate | None, trusted: x509.Certificate | None) -> str:
    from auditkit import pades

    check = pades.validate_pdf(_pdf_bytes(root), trusted)
    problems = list(check.problems)
    if cert is not None and check.signer_der is not None:
        if check.signer_der != cert.public_bytes(serialization.Encoding.DER):
            problems.append("signed with another certificate than signature.json")
    elif cert is None:
        problems.append("no signer certificate to compare with (signature.json unreadable)")
    if problems:
        raise VerificationError(f"{REPORT_PDF}: " + "; ".join(problems))
    trust = "trusted signer" if check.trusted else "signer not pinned (no --trust)"
    return f"intact, valid, covers the whole file; {trust}"


def _check_attachments(root: Path) -> str:
    from auditkit import pades

    try:
        embedded = pades.embedded_files(_pdf_bytes(root))
    except VerificationError:
        raise
    except Exception as exc:
        raise VerificationError(f"{REPORT_PDF}: embedded files unreadable") from exc
    wrong = []
    for name in PDF_ATTACHMENTS:
        path = root / name
        if name not in embedded:
            wrong.append(f"{name} is not embedded")
        elif not path.is_file() or path.read_bytes() != embedded[name]:
            wrong.append(f"{name} differs from the copy embedded in {REPORT_PDF}")
    if wrong:
        raise VerificationError("; ".join(wrong))
    return ", ".join(PDF_ATTACHMENTS) + f" equal the copies inside {REPORT_PDF}"


def _check_attestation(root: Path, cert: x509.Certificate | None) -> str:
    path = root / attestation.FILE
    if not path.is_file():
        raise VerificationError(f"{attestation.FILE}: missing")
    if cert is None:
        raise VerificationError("no signer certificate to check the attestation with")
    stmt = attestation.verify_envelope(path.read_text(encoding="utf-8"), cert)
    subjects = attestation.subject_digests(stmt)
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        synthetic = manifest["inputs"]["synthetic"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VerificationError("manifest.json: unreadable, cannot match the subjects") from exc
    expected = {
        Path(synthetic["path"]).name: synthetic["sha256"],
        RELEASE: hashlib.sha256((root / RELEASE).read_bytes()).hexdigest()
        if (root / RELEASE).is_file()
        else "missing",
    }
    if subjects != expected:
        bad = sorted(
            k for k in expected.keys() | subjects.keys() if subjects.get(k) != expected.get(k)
        )
        raise VerificationError(
            f"{attestation.FILE}: subject digests do not match the bundle ({', '.join(bad)})"
        )
    return f"DSSE signature valid; subjects {', '.join(sorted(subjects))} match"
