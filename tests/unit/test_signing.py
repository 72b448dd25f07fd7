"""Tests of auditkit.signing: keys, detached signatures and bundle verification."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from auditkit.errors import SigningError, UsageError, VerificationError
from auditkit.signing import (
    CERT_FILE,
    DEMO_COMMON_NAME,
    KEY_FILE,
    SigningIdentity,
    demo_identity,
    keygen,
    load_identity,
    signature_document,
    verify_bundle,
    verify_signature_document,
)

# One key for the whole module: key generation would otherwise dominate the run time.
_SHARED_KEY = ec.generate_private_key(ec.SECP256R1())


def _cert(key, *, cn="test signer", not_before=None, not_after=None) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _write_pair(folder: Path, key, cert: x509.Certificate) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (folder / KEY_FILE).write_bytes(pem)
    (folder / CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return folder


SHARED = SigningIdentity(_SHARED_KEY, _cert(_SHARED_KEY), demo=False, source="test")


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# --- keygen and loading ------------------------------------------------------------------


@pytest.fixture(scope="module", params=["ecdsa-p256", "rsa-3072"])
def made_keys(request, tmp_path_factory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp(request.param)
    keygen(out, common_name="Data Office", organization="Example Clinic", key_type=request.param)
    return request.param, out


def test_keygen_writes_private_key_and_document_signing_cert(made_keys):
    key_type, out = made_keys
    key_path, cert_path = out / KEY_FILE, out / CERT_FILE
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.version == x509.Version.v3
    assert cert.subject == cert.issuer
    assert cert.subject.rfc4514_string() == "O=Example Clinic,CN=Data Office"
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == timedelta(days=1095, minutes=5)

    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [oid.dotted_string for oid in eku] == ["1.3.6.1.5.5.7.3.36"]  # documentSigning
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)

    identity = load_identity(out)
    expected = {"ecdsa-p256": ec.EllipticCurvePrivateKey, "rsa-3072": rsa.RSAPrivateKey}
    assert isinstance(identity.private_key, expected[key_type])
    assert identity.demo is False
    assert identity.source == str(key_path)
    assert identity.subject == "O=Example Clinic,CN=Data Office"
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert identity.key_id == hashlib.sha256(spki).hexdigest()
    # A key file path works as well as its folder.
    assert load_identity(key_path).key_id == identity.key_id


def test_passphrase_round_trip(tmp_path):
    key_path, _ = keygen(tmp_path, passphrase=b"correct horse")
    assert key_path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    identity = load_identity(tmp_path, passphrase=b"correct horse")
    assert identity.subject == "CN=auditkit signer"


@pytest.mark.parametrize(
    ("passphrase", "message"),
    [
        (None, r"signing-key\.pem: the signing key is encrypted and no passphrase was given"),
        (b"", r"encrypted and no passphrase"),
        (b"wrong", r"signing-key\.pem: wrong passphrase"),
    ],
)
def test_encrypted_key_needs_the_right_passphrase(tmp_path, passphrase, message):
    keygen(tmp_path, passphrase=b"correct horse")
    with pytest.raises(SigningError, match=message) as raised:
        load_identity(tmp_path, passphrase=passphrase)
    assert "AUDITKIT_KEY_PASSPHRASE" in str(raised.value)


def test_passphrase_is_ignored_for_an_unencrypted_key(tmp_path):
    keygen(tmp_path)
    assert load_identity(tmp_path, passphrase=b"unused").demo is False


def test_keygen_refuses_to_overwrite_without_force(tmp_path):
    keygen(tmp_path)
    before = load_identity(tmp_path).key_id
    with pytest.raises(SigningError, match=r"signing-key\.pem: already exists") as raised:
        keygen(tmp_path)
    assert "--force" in str(raised.value)
    assert load_identity(tmp_path).key_id == before
    keygen(tmp_path, force=True)
    assert load_identity(tmp_path).key_id != before
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"passphrase": b""}, "empty key passphrase"),
        ({"days": 0}, "at least 1 day"),
        ({"common_name": " "}, "common name"),
        ({"key_type": "dsa"}, "unknown key type 'dsa'"),
    ],
)
def test_keygen_rejects_bad_options(tmp_path, kwargs, message):
    with pytest.raises(UsageError, match=message):
        keygen(tmp_path, **kwargs)
    assert not (tmp_path / KEY_FILE).exists()


def _expired(folder: Path) -> Path:
    past = datetime.now(timezone.utc) - timedelta(days=30)
    cert = _cert(_SHARED_KEY, not_before=past, not_after=past + timedelta(days=1))
    return _write_pair(folder, _SHARED_KEY, cert)


def _not_yet_valid(folder: Path) -> Path:
    future = datetime.now(timezone.utc) + timedelta(days=30)
    cert = _cert(_SHARED_KEY, not_before=future, not_after=future + timedelta(days=1))
    return _write_pair(folder, _SHARED_KEY, cert)


def _mismatched(folder: Path) -> Path:
    return _write_pair(folder, _SHARED_KEY, _cert(ec.generate_private_key(ec.SECP256R1())))


def _rsa_2048(folder: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _write_pair(folder, key, _cert(key))


def _p521(folder: Path) -> Path:
    key = ec.generate_private_key(ec.SECP521R1())
    return _write_pair(folder, key, _cert(key))


def _no_cert(folder: Path) -> Path:
    _write_pair(folder, _SHARED_KEY, _cert(_SHARED_KEY))
    (folder / CERT_FILE).unlink()
    return folder


def _no_key(folder: Path) -> Path:
    folder.mkdir()
    return folder


def _garbage_key(folder: Path) -> Path:
    _write_pair(folder, _SHARED_KEY, _cert(_SHARED_KEY))
    (folder / KEY_FILE).write_text("not a key")
    return folder


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_expired, r"signing-cert\.pem: certificate expired on"),
        (_not_yet_valid, r"signing-cert\.pem: certificate is not valid before"),
        (_mismatched, r"signing-cert\.pem: certificate does not match the private key"),
        (_rsa_2048, r"signing-key\.pem: unsupported key \(RSA 2048-bit\)"),
        (_p521, r"signing-key\.pem: unsupported key \(EC secp521r1\)"),
        (_no_cert, r"signing-cert\.pem: not found"),
        (_no_key, r"signing-key\.pem: not found"),
        (_garbage_key, r"signing-key\.pem: not a PEM private key"),
    ],
)
def test_load_identity_errors_name_the_file(tmp_path, make, message):
    folder = make(tmp_path / "keys")
    with pytest.raises(SigningError, match=message):
        load_identity(folder)


def test_load_identity_accepts_p384(tmp_path):
    key = ec.generate_private_key(ec.SECP384R1())
    identity = load_identity(_write_pair(tmp_path, key, _cert(key)))
    doc = signature_document(identity, b"data", signed_file="x")
    assert doc["algorithm"] == "ecdsa-sha256"
    verify_signature_document(doc, b"data")


# --- demo key and mask key ---------------------------------------------------------------


def test_demo_identity_is_cached_labelled_and_stable(tmp_path):
    first = demo_identity(tmp_path / "demo")
    second = demo_identity(tmp_path / "demo")
    assert first.demo and second.demo
    assert first.key_id == second.key_id
    assert first.mask_key() == second.mask_key()
    assert first.subject == f"O=auditkit demo,CN={DEMO_COMMON_NAME}"
    assert stat.S_IMODE((tmp_path / "demo" / KEY_FILE).stat().st_mode) == 0o600
    assert not [p for p in (tmp_path / "demo").iterdir() if p.name.endswith(".tmp")]
    # Loading the cached files directly still marks the identity as the demo key.
    assert load_identity(tmp_path / "demo").demo


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AUDITKIT_CACHE_DIR": "ak"}, "ak/demo-key"),
        ({"XDG_CACHE_HOME": "xdg"}, "xdg/auditkit/demo-key"),
        ({"HOME": "home"}, "home/.cache/auditkit/demo-key"),
    ],
)
def test_demo_identity_default_cache_folder(tmp_path, monkeypatch, env, expected):
    for name in ("AUDITKIT_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(tmp_path / value))
    identity = demo_identity()
    assert (tmp_path / expected / KEY_FILE).exists()
    assert demo_identity().key_id == identity.key_id


@pytest.mark.parametrize("damage", ["garbage", "missing cert", "not a demo key"])
def test_demo_identity_replaces_a_bad_cache(tmp_path, damage):
    folder = tmp_path / "demo"
    old = demo_identity(folder)
    if damage == "garbage":
        (folder / KEY_FILE).write_bytes(b"\x00garbage")
    elif damage == "missing cert":
        (folder / CERT_FILE).unlink()
    else:
        _write_pair(folder, _SHARED_KEY, _cert(_SHARED_KEY))
    new = demo_identity(folder)
    assert new.demo and new.key_id != old.key_id
    assert demo_identity(folder).key_id == new.key_id


def test_mask_key_is_deterministic_and_differs_between_keys(tmp_path):
    keygen(tmp_path / "a")
    keygen(tmp_path / "b")
    a1, a2 = load_identity(tmp_path / "a"), load_identity(tmp_path / "a")
    assert len(a1.mask_key()) == 32
    assert a1.mask_key() == a2.mask_key()
    assert a1.mask_key() != load_identity(tmp_path / "b").mask_key()
    assert a1.mask_key() not in (tmp_path / "a" / KEY_FILE).read_bytes()


def test_private_key_is_not_in_repr():
    assert "private_key" not in repr(SHARED)


# --- signature documents -----------------------------------------------------------------


def test_signature_document_fields():
    doc = signature_document(SHARED, b"hello", signed_file="manifest.json")
    assert json.loads(json.dumps(doc)) == doc
    assert doc["format"] == "auditkit-detached-signature/1"
    assert doc["signed_file"] == "manifest.json"
    assert doc["sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert doc["algorithm"] == "ecdsa-sha256"
    assert doc["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert doc["key_id"] == SHARED.key_id
    assert (doc["subject"], doc["demo_key"]) == ("CN=test signer", False)


def test_signature_round_trip_per_key_type(made_keys):
    key_type, out = made_keys
    doc = signature_document(load_identity(out), b"payload", signed_file="manifest.json")
    expected = {"ecdsa-p256": "ecdsa-sha256", "rsa-3072": "rsa-pss-sha256"}[key_type]
    assert doc["algorithm"] == expected
    verify_signature_document(doc, b"payload")
    with pytest.raises(VerificationError, match=r"manifest\.json changed since it was signed"):
        verify_signature_document(doc, b"payloae")


@settings(max_examples=50, deadline=None)
@given(data=st.binary(min_size=1, max_size=2048), choice=st.data())
def test_sign_verify_round_trip_and_any_flipped_byte_fails(data, choice):
    doc = signature_document(SHARED, data, signed_file="blob.bin")
    verify_signature_document(doc, data)
    index = choice.draw(st.integers(min_value=0, max_value=len(data) - 1), label="index")
    with pytest.raises(VerificationError, match=r"blob\.bin changed since it was signed"):
        verify_signature_document(doc, _flip(data, index))


def _altered(field, value):
    def alter(doc):
        doc[field] = value
        return doc

    return alter


def _without(field):
    def alter(doc):
        del doc[field]
        return doc

    return alter


def _swap_signature(doc):
    other = signature_document(SHARED, b"something else", signed_file="manifest.json")
    doc["signature"] = other["signature"]
    return doc


def _wrong_algorithm(doc):
    doc["algorithm"] = "rsa-pss-sha256"
    return doc


@pytest.mark.parametrize(
    ("alter", "message"),
    [
        (_without("signature"), "signature.json: missing or mistyped field 'signature'"),
        (_altered("demo_key", "no"), "missing or mistyped field 'demo_key'"),
        (_altered("format", "other/2"), "unknown format 'other/2'"),
        (_altered("signature", "not base64!"), "signature is not valid base64"),
        (_altered("certificate", "-----BEGIN CERTIFICATE-----\n"), "certificate is damaged"),
        (_altered("key_id", "0" * 64), "key_id or subject does not match"),
        (_altered("subject", "CN=someone else"), "key_id or subject does not match"),
        (_altered("sha256", "0" * 64), r"signature.json: its sha256 does not match the signed"),
        (_swap_signature, "signature.json: the signature over manifest.json does not verify"),
        (_wrong_algorithm, "algorithm 'rsa-pss-sha256' does not fit"),
    ],
)
def test_altered_signature_document_fails(alter, message):
    doc = alter(signature_document(SHARED, b"manifest", signed_file="manifest.json"))
    with pytest.raises(VerificationError, match=message):
        verify_signature_document(doc, b"manifest")


def test_non_object_document_fails():
    with pytest.raises(VerificationError, match="not a JSON object"):
        verify_signature_document([], b"x")  # type: ignore[arg-type]


def test_demo_signature_cannot_claim_not_demo(tmp_path):
    doc = signature_document(demo_identity(tmp_path), b"x", signed_file="manifest.json")
    assert doc["demo_key"] is True
    doc["demo_key"] = False
    with pytest.raises(VerificationError, match="signed with the demo key"):
        verify_signature_document(doc, b"x")


def test_trusted_cert_must_match():
    doc = signature_document(SHARED, b"x", signed_file="manifest.json")
    verify_signature_document(doc, b"x", trusted_cert=SHARED.certificate)
    other = _cert(ec.generate_private_key(ec.SECP256R1()), cn="Release Board")
    with pytest.raises(
        VerificationError, match=r"signed by CN=test signer .*not by the trusted signer CN=Release"
    ):
        verify_signature_document(doc, b"x", trusted_cert=other)


# --- bundles -----------------------------------------------------------------------------

BUNDLE_FILES = {
    "report.html": b"<html><body>verdict: pass</body></html>\n",
    "results.json": b'{"verdict": "pass", "metrics": [1, 2, 3]}\n',
    "figures/diversity.png": bytes(range(256)),
}


def _make_bundle(root: Path, files=BUNDLE_FILES, listed=None, identity=SHARED) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    outputs = {
        name: {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
        for name, content in (listed or files).items()
    }
    manifest = json.dumps({"tool": "auditkit", "outputs": outputs}, indent=2).encode()
    (root / "manifest.json").write_bytes(manifest)
    doc = signature_document(identity, manifest, signed_file="manifest.json")
    (root / "signature.json").write_text(json.dumps(doc, indent=2))
    return root


def test_verify_bundle_passes(tmp_path):
    result = verify_bundle(_make_bundle(tmp_path))
    assert result.files == (
        "figures/diversity.png",
        "manifest.json",
        "report.html",
        "results.json",
        "signature.json",
    )
    assert (result.subject, result.key_id) == ("CN=test signer", SHARED.key_id)
    assert (result.demo_key, result.trusted) == (False, False)


def test_verify_bundle_reports_demo_key(tmp_path):
    bundle = _make_bundle(tmp_path / "b", identity=demo_identity(tmp_path / "demo"))
    assert verify_bundle(bundle).demo_key is True


@pytest.mark.parametrize(
    "name", [*BUNDLE_FILES, "manifest.json", "signature.json"], ids=lambda name: name
)
def test_flipped_byte_in_any_file_fails_naming_it(tmp_path, name):
    bundle = _make_bundle(tmp_path)
    path = bundle / name
    content = path.read_bytes()
    path.write_bytes(_flip(content, len(content) // 2))
    with pytest.raises(VerificationError) as raised:
        verify_bundle(bundle)
    assert name in str(raised.value).splitlines()[0]
    if name in BUNDLE_FILES:
        assert str(raised.value).startswith(f"{name}: content changed since signing (sha256 ")
    if name == "manifest.json":
        assert str(raised.value).startswith("manifest.json changed since it was signed")


# Some flips give a negative certificate serial, which cryptography warns about before the
# self-signature check rejects the certificate.
@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_every_single_byte_flip_in_signature_json_fails(tmp_path):
    bundle = _make_bundle(tmp_path)
    original = (bundle / "signature.json").read_bytes()
    for index in range(len(original)):
        (bundle / "signature.json").write_bytes(_flip(original, index))
        with pytest.raises(VerificationError, match=r"signature\.json|manifest\.json"):
            verify_bundle(bundle)


def test_changed_size_is_reported(tmp_path):
    bundle = _make_bundle(tmp_path)
    (bundle / "report.html").write_bytes(b"short")
    with pytest.raises(VerificationError, match=r"^report.html: content changed .*5 bytes"):
        verify_bundle(bundle)


@pytest.mark.parametrize("name", ["extra.txt", "figures/extra.png", ".hidden"])
def test_extra_file_fails_naming_it(tmp_path, name):
    bundle = _make_bundle(tmp_path)
    (bundle / name).write_bytes(b"x")
    with pytest.raises(VerificationError, match=f"unexpected file {name}: not part of the signed"):
        verify_bundle(bundle)


@pytest.mark.parametrize("name", [*BUNDLE_FILES, "manifest.json", "signature.json"])
def test_missing_file_fails_naming_it(tmp_path, name):
    bundle = _make_bundle(tmp_path)
    (bundle / name).unlink()
    with pytest.raises(VerificationError, match=f"^{name}: missing"):
        verify_bundle(bundle)


def test_trusted_cert_file(tmp_path):
    bundle = _make_bundle(tmp_path / "bundle")
    trusted = tmp_path / "trusted.pem"
    trusted.write_bytes(SHARED.certificate.public_bytes(serialization.Encoding.PEM))
    assert verify_bundle(bundle, trusted_cert=trusted).trusted is True
    keygen(tmp_path / "other", common_name="Release Board")
    with pytest.raises(VerificationError, match="not by the trusted signer CN=Release Board"):
        verify_bundle(bundle, trusted_cert=tmp_path / "other" / CERT_FILE)
    with pytest.raises(SigningError, match=r"nowhere\.pem: not found"):
        verify_bundle(bundle, trusted_cert=tmp_path / "nowhere.pem")


@pytest.mark.parametrize(
    "name", ["../secret.txt", "figures/../../secret.txt", "/etc/hostname", "./report.html"]
)
def test_listed_name_outside_the_bundle_fails(tmp_path, name):
    (tmp_path / "secret.txt").write_bytes(b"secret")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    listed = {**BUNDLE_FILES, name: b"secret"}
    _make_bundle(bundle, listed=listed)
    with pytest.raises(VerificationError, match=r"manifest\.json: output name .* is not allowed"):
        verify_bundle(bundle)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinked_folder_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "diversity.png").write_bytes(BUNDLE_FILES["figures/diversity.png"])
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    _make_bundle(bundle)
    shutil.rmtree(bundle / "figures")
    (bundle / "figures").symlink_to(outside, target_is_directory=True)
    with pytest.raises(VerificationError, match=r"figures/diversity\.png: a symbolic link"):
        verify_bundle(bundle)


def test_signature_over_another_file_fails(tmp_path):
    bundle = _make_bundle(tmp_path)
    manifest = (bundle / "manifest.json").read_bytes()
    doc = signature_document(SHARED, manifest, signed_file="other.json")
    (bundle / "signature.json").write_text(json.dumps(doc))
    with pytest.raises(VerificationError, match=r"signature\.json: signs other\.json"):
        verify_bundle(bundle)


def test_not_a_folder(tmp_path):
    with pytest.raises(UsageError, match="not a folder"):
        verify_bundle(tmp_path / "missing")
