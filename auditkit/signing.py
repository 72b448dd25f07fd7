"""Signing keys, detached signatures over a bundle's manifest, and bundle verification.

Owns the signer's key and certificate files (``keygen``, ``load_identity``, the throwaway
demo key), the content of ``signature.json``, and ``verify_bundle``, which proves that no
byte of an output bundle changed since it was signed. The mask key of
:mod:`auditkit.masking` is derived here from the private key and never written anywhere.

Uses only :mod:`cryptography`. It writes key files, never bundle files; the PAdES signature
in report.pdf is made elsewhere (with pyHanko) from the same key files.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from auditkit.errors import SigningError, UsageError, VerificationError

KEY_FILE = "signing-key.pem"
CERT_FILE = "signing-cert.pem"
SIGNATURE_FORMAT = "auditkit-detached-signature/1"
DEMO_COMMON_NAME = "auditkit THROWAWAY DEMO KEY - not for release"
#: id-kp-documentSigning (RFC 9336): Acrobat accepts it on a PAdES signing certificate.
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
_RESERVED = ("manifest.json", "signature.json")
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_TEXT_FIELDS = ("format", "signed_file", "sha256", "algorithm", "signature", "certificate")
# What cryptography raises on damaged certificate bytes (not all are ValueErrors).
_BAD_CERT = (
    ValueError,
    TypeError,
    InvalidSignature,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)
_PEM = serialization.Encoding.PEM

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class SigningIdentity:
    """A private key with its certificate: who signs a bundle."""

    private_key: PrivateKey = field(repr=False)
    certificate: x509.Certificate
    demo: bool
    source: str
    #: Further certificates (a PKCS#12 file's CA chain), embedded in the PDF signature.
    chain: tuple[x509.Certificate, ...] = ()

    def mask_key(self) -> bytes:
        """Return the 32-byte mask key derived from the private key (never stored)."""
        der = self.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return HKDF(hashes.SHA256(), 32, salt=None, info=b"auditkit mask key v1").derive(der)

    @property
    def subject(self) -> str:
        """The certificate subject as an RFC 4514 string."""
        return self.certificate.subject.rfc4514_string()

    @property
    def key_id(self) -> str:
        """The sha256 hex digest of the DER SubjectPublicKeyInfo."""
        return _key_id(self.certificate)


@dataclass(frozen=True)
class BundleVerification:
    """What :func:`verify_bundle` checked (sorted bundle-relative names) and who signed."""

    files: tuple[str, ...]
    subject: str
    key_id: str
    demo_key: bool
    trusted: bool


def keygen(
    out_dir: str | Path,
    *,
    common_name: str = "auditkit signer",
    organization: str | None = None,
    passphrase: bytes | None = None,
    key_type: Literal["ecdsa-p256", "rsa-3072"] = "ecdsa-p256",
    days: int = 1095,
    force: bool = False,
) -> tuple[Path, Path]:
    """Write ``signing-key.pem`` (mode 0600) and a self-signed ``signing-cert.pem``.

    Args:
        out_dir: Folder for the two files; created if missing.
        common_name: Certificate subject CN, shown by PDF readers as the signer.
        organization: Optional subject O.
        passphrase: Encrypts the key file when given.
        key_type: ``"ecdsa-p256"`` (fast, small) or ``"rsa-3072"``.
        days: Certificate validity from now.
        force: Replace existing files (the old key is lost).

    Returns:
        The key path and the certificate path.

    Raises:
        UsageError: An empty passphrase or name, an unknown key type, or ``days < 1``.
        SigningError: A file exists and ``force`` is false, or the folder is not writable.
    """
    if passphrase == b"":
        raise UsageError("empty key passphrase", hint="give one, or none for an unencrypted key")
    if key_type not in ("ecdsa-p256", "rsa-3072"):
        raise UsageError(f"unknown key type {key_type!r}", hint="use ecdsa-p256 or rsa-3072")
    if days < 1 or not common_name.strip():
        raise UsageError("a certificate needs a common name and at least 1 day of validity")
    out = Path(out_dir)
    key_path, cert_path = out / KEY_FILE, out / CERT_FILE
    for path in (key_path, cert_path):
        if path.exists() and not force:
            raise SigningError(f"{path}: already exists", hint="pass --force to replace the key")
    key = _new_key(key_type)
    _write_identity(out, key, _certificate(key, common_name, organization, days), passphrase)
    return key_path, cert_path


def load_identity(path: str | Path, passphrase: bytes | None = None) -> SigningIdentity:
    """Load a key and its certificate, checking that they belong together and are valid now.

    Args:
        path: A :func:`keygen` folder, or a key PEM file with ``signing-cert.pem`` beside it.
        passphrase: Passphrase of an encrypted key; ignored for an unencrypted one.

    Raises:
        SigningError: Naming the file: missing or unreadable, missing or wrong passphrase,
            unsupported key, certificate of another key, or certificate not valid now.
    """
    given = Path(path)
    key_path = given / KEY_FILE if given.is_dir() else given
    cert_path = key_path.parent / CERT_FILE
    key = _load_private_key(key_path, passphrase)
    cert = _load_certificate(cert_path)
    if _spki(cert.public_key()) != _spki(key.public_key()):
        raise SigningError(
            f"{cert_path}: certificate does not match the private key in {key_path}",
            hint="use the certificate that keygen made with this key",
        )
    now, hint = datetime.now(timezone.utc), "make a new key with `auditkit keygen --force`"
    if now > cert.not_valid_after_utc:
        raise SigningError(
            f"{cert_path}: certificate expired on {cert.not_valid_after_utc}", hint=hint
        )
    if now < cert.not_valid_before_utc:
        raise SigningError(
            f"{cert_path}: certificate is not valid before {cert.not_valid_before_utc}",
            hint="check the system clock",
        )
    return SigningIdentity(key, cert, demo=_is_demo(cert), source=str(key_path))


def load_p12(path: str | Path, passphrase: bytes | None) -> SigningIdentity:
    """Load an organisation's PKCS#12 file (key, certificate and CA chain).

    Args:
        path: The ``.p12``/``.pfx`` file.
        passphrase: Its passphrase (None for an unprotected file).

    Raises:
        SigningError: Naming the file: unreadable, wrong passphrase, no key or certificate,
            an unsupported key, or a certificate not valid now.
    """
    from cryptography.hazmat.primitives.serialization import pkcs12

    p12 = Path(path)
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(_read(p12), passphrase)
    except ValueError as exc:
        raise SigningError(
            f"{p12}: wrong passphrase or not a PKCS#12 file",
            hint="set AUDITKIT_P12_PASSPHRASE to the file's passphrase",
        ) from exc
    if key is None or cert is None:
        raise SigningError(f"{p12}: holds no private key with its certificate")
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)) or (
        isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048
    ):
        raise SigningError(
            f"{p12}: unsupported key ({type(key).__name__}); use ECDSA or RSA >= 2048 bits"
        )
    now = datetime.now(timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SigningError(f"{p12}: the certificate is not valid now (expired or not yet valid)")
    return SigningIdentity(key, cert, demo=False, source=str(p12), chain=tuple(chain))


def demo_identity(cache_dir: str | Path | None = None) -> SigningIdentity:
    """Return the THROWAWAY demo identity, made on first use and cached unencrypted.

    One machine keeps one demo key, so results that depend on the mask key are reproducible
    across demo runs. Missing, corrupt, expired or non-demo cached files are replaced.

    Args:
        cache_dir: Folder holding the demo key files. Default: ``$AUDITKIT_CACHE_DIR/demo-key``,
            else ``$XDG_CACHE_HOME/auditkit/demo-key`` (``~/.cache`` when unset).
    """
    from filelock import FileLock

    from auditkit.cache import cache_dir as default_cache_dir

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "demo-key"
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Concurrent runs (parallel CI jobs, test workers) must agree on one key: without the
    # lock, two of them could each write a key and a certificate and leave a mixed pair.
    with FileLock(str(folder.parent / "demo-key.lock"), timeout=60):
        with contextlib.suppress(SigningError):  # not usable: make a fresh one below
            cached = load_identity(folder)
            if cached.demo:
                return cached
        key = _new_key("ecdsa-p256")
        cert = _certificate(key, DEMO_COMMON_NAME, "auditkit demo", 3650)
        _write_identity(folder, key, cert, None)
    return SigningIdentity(key, cert, demo=True, source="demo")


def signature_document(identity: SigningIdentity, data: bytes, *, signed_file: str) -> dict:
    """Sign ``data`` and return the JSON-able content of ``signature.json``."""
    key = identity.private_key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm, signature = "ecdsa-sha256", key.sign(data, ec.ECDSA(hashes.SHA256()))
    else:
        algorithm, signature = "rsa-pss-sha256", key.sign(data, _PSS, hashes.SHA256())
    return {
        "format": SIGNATURE_FORMAT,
        "signed_file": signed_file,
        "sha256": hashlib.sha256(data).hexdigest(),
        "algorithm": algorithm,
        "signature": base64.b64encode(signature).decode("ascii"),
        "certificate": identity.certificate.public_bytes(_PEM).decode("ascii"),
        "key_id": identity.key_id,
        "subject": identity.subject,
        "demo_key": identity.demo,
    }


def verify_signature_document(
    doc: dict,
    data: bytes,
    *,
    trusted_cert: x509.Certificate | None = None,
    doc_name: str = "signature.json",
) -> None:
    """Check that ``doc`` is an unaltered signature over exactly ``data``.

    Args:
        doc: The parsed signature document.
        data: The bytes of the signed file.
        trusted_cert: When given, the signer must hold this certificate's public key.
        doc_name: How error messages name the signature document.

    Raises:
        VerificationError: The document is malformed or altered, ``data`` changed, the
            signature does not verify, or the signer is not the trusted one.
    """
    _verify(doc, data, trusted_cert, doc_name)


def verify_bundle(
    bundle_dir: str | Path, *, trusted_cert: str | Path | None = None
) -> BundleVerification:
    """Prove that no file of a signed bundle changed, went missing or was added.

    Files the manifest lists under ``self_signed_outputs`` (report.pdf, which embeds the
    manifest) are only allowed to exist here; :func:`auditkit.verify.verify` checks them
    through their own signature. Use that function for a complete verification.

    Args:
        bundle_dir: The bundle folder: ``manifest.json``, ``signature.json`` and outputs.
        trusted_cert: PEM certificate of the expected signer. Without it, verification
            proves the bundle is intact, not who signed it.

    Raises:
        UsageError: ``bundle_dir`` is not a folder.
        SigningError: ``trusted_cert`` is not a readable PEM certificate.
        VerificationError: Naming the offending file, for the first failed check.
    """
    root = Path(bundle_dir)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder", hint="pass the folder an audit wrote")
    trusted = _load_certificate(Path(trusted_cert)) if trusted_cert is not None else None
    try:
        doc = json.loads(_read_bundle_file(root, "signature.json"))
    except ValueError as exc:  # includes UnicodeDecodeError
        raise VerificationError("signature.json: not valid JSON") from exc
    manifest = _read_bundle_file(root, "manifest.json")
    cert = _verify(doc, manifest, trusted, "signature.json")
    if doc["signed_file"] != "manifest.json":
        raise VerificationError(f"signature.json: signs {doc['signed_file']}, not manifest.json")
    outputs = _manifest_outputs(manifest)
    for name in sorted(outputs):
        _check_output(root, name, *outputs[name])
    present = sorted(_bundle_files(root))
    # Outputs that embed the manifest carry their own signature (report.pdf: PAdES), which
    # auditkit.verify checks; here they are only allowed to exist.
    self_signed = _self_signed_outputs(manifest)
    for name in present:
        if name not in outputs and name not in _RESERVED and name not in self_signed:
            raise VerificationError(f"unexpected file {name}: not part of the signed bundle")
    return BundleVerification(
        files=tuple(present),
        subject=cert.subject.rfc4514_string(),
        key_id=_key_id(cert),
        demo_key=doc["demo_key"] or _is_demo(cert),
        trusted=trusted is not None,
    )


# --- keys and certificates ---------------------------------------------------------------


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(key: PrivateKey, cn: str, org: str | None, days: int) -> x509.Certificate:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    name, now = x509.Name(attributes), datetime.now(timezone.utc)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,  # non-repudiation, which document signing asks for
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Back-dated a little so a verifier whose clock runs slightly behind accepts it.
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )


def _write_identity(
    folder: Path, key: PrivateKey, cert: x509.Certificate, passphrase: bytes | None
) -> None:
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase)
    pem = key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, encryption)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_atomic(folder / KEY_FILE, pem, 0o600)
        _write_atomic(folder / CERT_FILE, cert.public_bytes(_PEM), 0o644)
    except OSError as exc:
        raise SigningError(f"{folder}: cannot write key files ({exc.strerror})") from exc


def _load_private_key(key_path: Path, passphrase: bytes | None) -> PrivateKey:
    pem = _read(key_path)
    encrypted = b"ENCRYPTED" in pem  # PKCS8 "ENCRYPTED PRIVATE KEY" or OpenSSL "Proc-Type"
    if encrypted and not passphrase:
        raise SigningError(
            f"{key_path}: the signing key is encrypted and no passphrase was given",
            hint="set AUDITKIT_KEY_PASSPHRASE to the key's passphrase",
        )
    try:
        key = serialization.load_pem_private_key(pem, passphrase if encrypted else None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        if encrypted:
            raise SigningError(
                f"{key_path}: wrong passphrase for the signing key (or the file is damaged)",
                hint="check AUDITKIT_KEY_PASSPHRASE",
            ) from exc
        raise SigningError(f"{key_path}: not a PEM private key") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size >= 3072:
            return key
        kind = f"RSA {key.key_size}-bit"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name in ("secp256r1", "secp384r1"):
            return key
        kind = f"EC {key.curve.name}"
    else:
        kind = type(key).__name__
    raise SigningError(
        f"{key_path}: unsupported key ({kind}); use ECDSA P-256/P-384 or RSA >= 3072 bits",
        hint="make a new key with `auditkit keygen`",
    )


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(path))
    except _BAD_CERT as exc:
        raise SigningError(f"{path}: not a PEM certificate") from exc


def _is_demo(cert: x509.Certificate) -> bool:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return any(n.value == DEMO_COMMON_NAME for n in names)


def _spki(public_key: Any) -> bytes:
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return public_key.public_bytes(der, spki)


def _key_id(cert: x509.Certificate) -> str:
    return hashlib.sha256(_spki(cert.public_key())).hexdigest()


# --- verification ------------------------------------------------------------------------


def _verify(
    doc: Any, data: bytes, trusted: x509.Certificate | None, doc_name: str
) -> x509.Certificate:
    """Verify a signature document; return its certificate. See verify_signature_document."""
    cert = _document_certificate(doc, doc_name)
    signed, valid = doc["signed_file"], _signature_valid(cert, doc, data, doc_name)
    actual = hashlib.sha256(data).hexdigest()
    if actual != doc["sha256"]:
        if valid:  # the signed bytes are intact, so the recorded digest is what changed
            raise VerificationError(f"{doc_name}: its sha256 does not match the signed {signed}")
        raise VerificationError(
            f"{signed} changed since it was signed (sha256 {actual}, signed {doc['sha256']})"
        )
    if not valid:
        raise VerificationError(
            f"{doc_name}: the signature over {signed} does not verify",
            hint=f"{doc_name} was altered, or {signed} was altered and its digest rewritten",
        )
    if trusted is not None and _spki(trusted.public_key()) != _spki(cert.public_key()):
        raise VerificationError(
            f"{signed} was signed by {cert.subject.rfc4514_string()} (key {_key_id(cert)}), "
            f"not by the trusted signer {trusted.subject.rfc4514_string()} (key {_key_id(trusted)})"
        )
    return cert


def _document_certificate(doc: Any, doc_name: str) -> x509.Certificate:
    """Check the document's shape and return its certificate, rejecting any altered field."""
    if not isinstance(doc, dict):
        raise VerificationError(f"{doc_name}: not a JSON object")
    fields = {**dict.fromkeys((*_TEXT_FIELDS, "key_id", "subject"), str), "demo_key": bool}
    for key, kind in fields.items():
        if not isinstance(doc.get(key), kind):
            raise VerificationError(f"{doc_name}: missing or mistyped field {key!r}")
    if doc["format"] != SIGNATURE_FORMAT:
        raise VerificationError(f"{doc_name}: unknown format {doc['format']!r}")
    try:
        cert = x509.load_pem_x509_certificate(doc["certificate"].encode())
        if not _issued_by_another_key(cert):
            cert.verify_directly_issued_by(cert)
    except _BAD_CERT as exc:
        raise VerificationError(f"{doc_name}: the certificate is damaged or altered") from exc
    # Re-encoding catches edits that a lenient PEM/base64 decoder would silently ignore.
    if cert.public_bytes(_PEM).decode() != doc["certificate"]:
        raise VerificationError(f"{doc_name}: the certificate is not in canonical PEM form")
    if doc["key_id"] != _key_id(cert) or doc["subject"] != cert.subject.rfc4514_string():
        raise VerificationError(f"{doc_name}: key_id or subject does not match the certificate")
    if _is_demo(cert) and not doc["demo_key"]:
        raise VerificationError(f"{doc_name}: signed with the demo key but says demo_key false")
    return cert


def _issued_by_another_key(cert: x509.Certificate) -> bool:
    # CAs must include an AuthorityKeyIdentifier (RFC 5280). Without one, or with the cert's
    # own key id, a certificate claims to be self-signed and its own signature must hold, so
    # no edit to a keygen certificate, not even to its issuer name, goes unnoticed.
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return False
    own = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    with contextlib.suppress(x509.ExtensionNotFound):
        own = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    return aki.key_identifier not in (None, own)


def _signature_valid(cert: x509.Certificate, doc: dict, data: bytes, doc_name: str) -> bool:
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
    except ValueError as exc:
        raise VerificationError(f"{doc_name}: the signature is not valid base64") from exc
    if base64.b64encode(signature).decode() != doc["signature"]:  # unused trailing bits
        raise VerificationError(f"{doc_name}: the signature is not canonical base64")
    public_key, algorithm = cert.public_key(), doc["algorithm"]
    try:
        if algorithm == "ecdsa-sha256" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif algorithm == "rsa-pss-sha256" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, _PSS, hashes.SHA256())
        else:
            raise VerificationError(f"{doc_name}: algorithm {algorithm!r} does not fit the key")
    except InvalidSignature:
        return False
    return True


def _manifest_outputs(manifest: bytes) -> dict[str, tuple[str, int]]:
    try:
        outputs = json.loads(manifest)["outputs"]
        parsed = {name: (entry["sha256"], entry["bytes"]) for name, entry in outputs.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise VerificationError("manifest.json: no valid 'outputs' table") from exc
    for name, (digest, size) in parsed.items():
        path = PurePosixPath(name)
        # str(path) != name catches "./a", "a//b" and "a/": one file, several spellings.
        if str(path) != name or path.is_absolute() or ".." in path.parts or "\\" in name:
            raise VerificationError(f"manifest.json: output name {name!r} is not allowed")
        if name in _RESERVED or not isinstance(digest, str) or type(size) is not int:
            raise VerificationError(f"manifest.json: bad entry for output {name!r}")
    return parsed


def _self_signed_outputs(manifest: bytes) -> set[str]:
    names = json.loads(manifest).get("self_signed_outputs", {})
    if not isinstance(names, dict) or not all(
        isinstance(n, str) and "/" not in n and n not in _RESERVED and not n.startswith(".")
        for n in names
    ):
        raise VerificationError("manifest.json: bad 'self_signed_outputs' table")
    return set(names)


def _check_output(root: Path, name: str, digest: str, size: int) -> None:
    path = root / name
    # A symlink anywhere on the path could make us read outside the bundle.
    if path.is_symlink() or not path.resolve().is_relative_to(root.resolve()):
        raise VerificationError(f"{name}: a symbolic link, not a file of the bundle")
    if not path.is_file():
        raise VerificationError(f"{name}: missing (listed in the signed manifest.json)")
    if (actual_size := path.stat().st_size) != size:
        raise VerificationError(
            f"{name}: content changed since signing ({actual_size} bytes, signed {size})"
        )
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    if sha.hexdigest() != digest:
        raise VerificationError(
            f"{name}: content changed since signing (sha256 {sha.hexdigest()}, signed {digest})"
        )


def _bundle_files(root: Path) -> list[str]:
    # os.walk does not enter symlinked folders, so list them as entries: they are unexpected.
    found = []
    for folder, dirs, files in os.walk(root):
        links = [d for d in dirs if Path(folder, d).is_symlink()]
        found += [Path(folder, f).relative_to(root).as_posix() for f in files + links]
    return found


# --- files -------------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SigningError(
            f"{path}: not found", hint="check the path (keygen makes key files)"
        ) from exc
    except OSError as exc:
        raise SigningError(f"{path}: cannot read ({exc.strerror})") from exc


def _read_bundle_file(root: Path, name: str) -> bytes:
    path = root / name
    if path.is_symlink() or not path.is_file():
        raise VerificationError(f"{name}: missing from the bundle {root}")
    return path.read_bytes()


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    # Create the temp file with its final mode, then rename: a reader never sees half a file
    # and a key is never world-readable, not even for an instant.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
