"""PAdES signing of a PDF with a keygen key and with an organisation's PKCS#12 file."""

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from auditkit import pades, signing
from auditkit.errors import SigningError


@pytest.fixture(scope="module")
def unsigned_pdf(tmp_path_factory):
    from auditkit.report.pdf import write_pdf

    path = tmp_path_factory.mktemp("pdf") / "unsigned.pdf"
    write_pdf("<h1>report</h1>", path, attachments={"results.json": b'{"a": 1}\n'})
    return path


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer, key, issuer_key, ca):
    now = datetime.now(timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    if ca:
        usage = dict(digital_signature=False, content_commitment=False, key_cert_sign=True)
        usage |= dict(crl_sign=True)
    else:
        usage = dict(digital_signature=True, content_commitment=True, key_cert_sign=False)
        usage |= dict(crl_sign=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False
        )
    builder = builder.add_extension(
        x509.KeyUsage(key_encipherment=False, data_encipherment=False, key_agreement=False,
                      encipher_only=False, decipher_only=False, **usage),
        critical=True,
    )  # fmt: skip
    return builder.sign(issuer_key, hashes.SHA256())


def test_keygen_key_signs_and_validates_and_attachments_survive(unsigned_pdf, tmp_path):
    signing.keygen(tmp_path / "keys")
    identity = signing.load_identity(tmp_path / "keys")
    signed = tmp_path / "signed.pdf"
    pades.sign_pdf(unsigned_pdf, signed, identity, reason="test")
    check = pades.validate_pdf(signed.read_bytes(), identity.certificate)
    assert check.problems == () and check.trusted
    assert check.attachments == {"results.json": b'{"a": 1}\n'}


def test_p12_with_ca_chain_signs_and_chains_to_the_ca(unsigned_pdf, tmp_path, monkeypatch):
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _cert("Example Health Root CA", "Example Health Root CA", ca_key, ca_key, ca=True)
    leaf = _cert("Privacy Office", "Example Health Root CA", leaf_key, ca_key, ca=False)
    p12 = tmp_path / "org.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"org", leaf_key, leaf, [ca], serialization.BestAvailableEncryption(b"s3cret")
        )
    )
    with pytest.raises(SigningError, match="wrong passphrase"):
        signing.load_p12(p12, b"nope")
    identity = signing.load_p12(p12, b"s3cret")
    assert identity.chain == (ca,) and not identity.demo
    signed = tmp_path / "signed.pdf"
    pades.sign_pdf(unsigned_pdf, signed, identity, reason="test")
    assert pades.validate_pdf(signed.read_bytes(), ca).trusted
    other = ec.generate_private_key(ec.SECP256R1())
    stranger = _cert("Other CA", "Other CA", other, other, ca=True)
    check = pades.validate_pdf(signed.read_bytes(), stranger)
    assert check.trusted is False and any("does not chain" in p for p in check.problems)
