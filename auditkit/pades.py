"""PAdES signatures on report.pdf (pyHanko) and the evidence files embedded in it.

Owns two things: signing a finished PDF with a :class:`~auditkit.signing.SigningIdentity`
(PAdES baseline B-B, ``ETSI.CAdES.detached``, SHA-256, one signature field covering the
whole file), and validating such a signature later, including that the files embedded in
the PDF are byte-identical to the bundle's. The embedding itself happens when WeasyPrint
writes the PDF (:func:`auditkit.report.pdf.write_pdf`), before signing, so the signature
covers the attachments too.

pyHanko and asn1crypto are imported inside functions: importing auditkit stays light.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from auditkit.errors import SigningError

FIELD_NAME = "auditkit-signature"


@dataclass(frozen=True)
class PdfSignatureCheck:
    """What :func:`validate_pdf` found. ``problems`` is empty when everything held."""

    intact: bool
    valid: bool
    whole_file: bool
    trusted: bool | None
    signer_der: bytes | None
    attachments: dict[str, bytes]
    problems: tuple[str, ...]


def sign_pdf(unsigned: Path, target: Path, identity: Any, *, reason: str) -> None:
    """Sign ``unsigned`` with ``identity`` and write the signed PDF to ``target``.

    Args:
        unsigned: The finished PDF (attachments already embedded).
        target: Where the signed PDF goes (may not be ``unsigned``).
        identity: A :class:`auditkit.signing.SigningIdentity`; its ``chain`` (certificates
            of a PKCS#12 file) is embedded so a reader can build the path to a trusted root.
        reason: The signature's /Reason, shown by PDF readers.

    Raises:
        SigningError: pyHanko refused the key or the PDF.
    """
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    der = serialization.Encoding.DER
    key_der = identity.private_key.private_bytes(
        der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert = asn1_x509.Certificate.load(identity.certificate.public_bytes(der))
    chain = [asn1_x509.Certificate.load(c.public_bytes(der)) for c in identity.chain]
    signer = signers.SimpleSigner(
        signing_cert=cert,
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs([cert, *chain]),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        name=identity.subject,
    )
    try:
        with unsigned.open("rb") as src, target.open("wb") as out:
            writer = IncrementalPdfFileWriter(src, strict=False)
            signers.sign_pdf(writer, meta, signer=signer, output=out)
    except Exception as exc:  # pyHanko raises several unrelated types
        raise SigningError(
            f"{target.name}: PAdES signing failed ({type(exc).__name__}: {exc})"
        ) from exc


def embedded_files(data: bytes) -> dict[str, bytes]:
    """The files embedded in a PDF (EmbeddedFiles name tree), by file name."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(data), strict=False)
    names = reader.root.get("/Names")
    tree = names.get("/EmbeddedFiles") if names is not None else None
    out: dict[str, bytes] = {}
    if tree is None:
        return out
    for node in _name_tree_leaves(tree):
        pairs = node.get("/Names", [])
        for i in range(0, len(pairs) - 1, 2):
            spec = pairs[i + 1].get_object()
            name = str(spec.get("/UF", spec.get("/F", pairs[i])))
            stream = spec["/EF"].get("/F").get_object()
            out[name] = stream.data
    return out


def _name_tree_leaves(node: Any) -> list[Any]:
    node = node.get_object()
    if "/Kids" not in node:
        return [node]
    return [leaf for kid in node["/Kids"] for leaf in _name_tree_leaves(kid)]


def validate_pdf(data: bytes, trusted: x509.Certificate | None = None) -> PdfSignatureCheck:
    """Validate the one PAdES signature of a report.pdf.

    Args:
        data: The PDF bytes.
        trusted: A trust root; without one, trust is not judged (``trusted`` is None).

    Returns:
        The findings; ``problems`` names everything that failed in plain words.
    """
    import logging

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    # pyHanko logs a traceback for every untrusted chain; the outcome is reported instead.
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    problems: list[str] = []
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        sigs = list(reader.embedded_signatures)
    except Exception as exc:  # a damaged file can fail anywhere in the parser
        return PdfSignatureCheck(
            False, False, False, None, None, {}, (f"not a readable PDF ({type(exc).__name__})",)
        )
    if len(sigs) != 1:
        return PdfSignatureCheck(
            False, False, False, None, None, {}, (f"{len(sigs)} signatures, expected 1",)
        )
    sig = sigs[0]
    roots = []
    if trusted is not None:
        from asn1crypto import x509 as asn1_x509

        der = serialization.Encoding.DER
        roots = [asn1_x509.Certificate.load(trusted.public_bytes(der))]
    context = ValidationContext(trust_roots=roots, allow_fetching=False)
    try:
        status = validate_pdf_signature(sig, context)
    except Exception as exc:
        return PdfSignatureCheck(
            False, False, False, None, None, {},
            (f"the signature cannot be validated ({type(exc).__name__})",),
        )  # fmt: skip
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    if not status.intact:
        problems.append("signed bytes changed since signing (digest mismatch)")
    if not status.valid:
        problems.append("the cryptographic signature does not verify")
    if not whole:
        problems.append("the signature does not cover the whole file (bytes were added)")
    is_trusted = None
    if trusted is not None:
        is_trusted = bool(status.trusted)
        if not is_trusted:
            problems.append("the signer's certificate does not chain to the --trust certificate")
    signer_der = status.signing_cert.dump() if status.signing_cert is not None else None
    try:
        attachments = embedded_files(data)
    except Exception as exc:
        attachments = {}
        problems.append(f"embedded files cannot be read ({type(exc).__name__})")
    return PdfSignatureCheck(
        intact=bool(status.intact),
        valid=bool(status.valid),
        whole_file=whole,
        trusted=is_trusted,
        signer_der=signer_der,
        attachments=attachments,
        problems=tuple(problems),
    )
