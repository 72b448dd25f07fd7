"""DSSE envelope and in-toto Statement: spec encoding, round trip, tampering."""

import base64
import json

import pytest

from auditkit import attestation, signing
from auditkit.errors import VerificationError


def test_pae_matches_the_dsse_spec_example():
    # protocol.md of secure-systems-lab/dsse: PAE("http://example.com/HelloWorld", "hello world")
    expected = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert attestation.pae("http://example.com/HelloWorld", b"hello world") == expected


def test_pae_counts_bytes_not_characters():
    assert attestation.pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


@pytest.fixture(scope="module", params=["ecdsa-p256", "rsa-3072"])
def identity(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    signing.keygen(folder, key_type=request.param)
    return signing.load_identity(folder)


def _statement():
    return attestation.statement(
        [("synthetic.jsonl", "a" * 64), ("release.jsonl", "b" * 64)],
        {"verdict": {"outcome": "pass"}},
    )


def test_envelope_round_trip(identity):
    text = attestation.dumps(attestation.envelope(identity, _statement()))
    assert text.count("\n") == 1
    env = json.loads(text)
    assert env["payloadType"] == "application/vnd.in-toto+json"
    assert env["signatures"][0]["keyid"] == identity.key_id
    stmt = attestation.verify_envelope(text, identity.certificate)
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == attestation.PREDICATE_TYPE
    assert attestation.subject_digests(stmt) == {
        "synthetic.jsonl": "a" * 64,
        "release.jsonl": "b" * 64,
    }


def test_changed_payload_or_other_key_fails(identity, tmp_path):
    env = attestation.envelope(identity, _statement())
    forged = _statement()
    forged["predicate"]["verdict"]["outcome"] = "fail"
    body = json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()
    tampered = {**env, "payload": base64.b64encode(body).decode()}
    with pytest.raises(VerificationError, match="no signature verifies"):
        attestation.verify_envelope(attestation.dumps(tampered), identity.certificate)
    signing.keygen(tmp_path)
    other = signing.load_identity(tmp_path)
    with pytest.raises(VerificationError, match="no signature verifies"):
        attestation.verify_envelope(attestation.dumps(env), other.certificate)


def test_wrong_payload_type_is_rejected(identity):
    env = attestation.envelope(identity, _statement())
    env["payloadType"] = "text/plain"
    with pytest.raises(VerificationError, match="payloadType"):
        attestation.verify_envelope(attestation.dumps(env), identity.certificate)
