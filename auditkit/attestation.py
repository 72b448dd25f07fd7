"""The in-toto attestation of a bundle: an in-toto Statement v1 in a DSSE envelope.

Owns ``attestation.intoto.jsonl``: one line, one DSSE envelope
(https://github.com/secure-systems-lab/dsse, protocol v1) whose payload is an in-toto
Statement (https://in-toto.io/Statement/v1). The subjects are the certified dataset file
and ``release.jsonl`` with their sha256 digests; the predicate (type
:data:`PREDICATE_TYPE`) carries the verdict, every gate result, the policy digest and the
tool versions. The envelope is signed with the bundle's signing key: ECDSA P-256/P-384
signatures are DER-encoded (as sigstore and in-toto tooling expect), RSA uses PSS/SHA-256.

Verification here proves the envelope is intact and signed by a given certificate; the
caller (:mod:`auditkit.verify`) compares the subjects with the bundle.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from auditkit.errors import VerificationError

FILE = "attestation.intoto.jsonl"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://auditkit.dev/attestation/synthetic-text-audit/v1"
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: what is actually signed.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, lengths as ASCII decimal byte
    counts.
    """
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement(subjects: Sequence[tuple[str, str]], predicate: Mapping[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1 over ``(name, sha256)`` subjects."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in subjects],
        "predicateType": PREDICATE_TYPE,
        "predicate": dict(predicate),
    }


def predicate(run: Any, *, tools: Mapping[str, str], models: Sequence[Mapping[str, Any]]) -> dict:
    """The audit predicate: verdict, gate results, policy digest, tool and model versions."""
    verdict = run.verdict
    return {
        "verdict": {
            "outcome": verdict.outcome,
            "exit_code": verdict.exit_code,
            "summary": verdict.summary,
            "released": verdict.released,
            "quarantined": verdict.quarantined,
        },
        "gates": [
            {
                "id": g.id,
                "metric": g.metric,
                "value": g.value,
                "op": g.op,
                "threshold": g.threshold,
                "severity": g.severity,
                "outcome": g.outcome,
            }
            for g in verdict.gates
        ],
        "record_gates": [
            {"id": g.id, "failed": g.failed, "evaluated": g.evaluated, "outcome": g.outcome}
            for g in verdict.record_gates
        ],
        "policy": {"name": run.policy.name, "sha256": run.policy.sha256},
        "seed": run.seed,
        "inputs": {i.role: {"sha256": i.sha256, "records": i.records} for i in run.inputs},
        "tools": dict(tools),
        "models": [dict(m) for m in models],
    }


def envelope(identity: Any, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Sign a statement into a DSSE envelope with ``identity``'s key."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    message = pae(PAYLOAD_TYPE, body)
    key = identity.private_key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(message, ec.ECDSA(hashes.SHA256()))
    else:
        sig = key.sign(message, _PSS, hashes.SHA256())
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(body).decode("ascii"),
        "signatures": [{"keyid": identity.key_id, "sig": base64.b64encode(sig).decode("ascii")}],
    }


def dumps(env: Mapping[str, Any]) -> str:
    """The attestation file's text: one JSON line per envelope."""
    return json.dumps(env, sort_keys=True, separators=(",", ":")) + "\n"


def verify_envelope(text: str, cert: x509.Certificate) -> dict[str, Any]:
    """Check the one envelope of an attestation file against ``cert``; return the statement.

    Raises:
        VerificationError: Malformed file, wrong payload type, no signature by ``cert``'s
            key, or a payload that is not an auditkit in-toto Statement.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise VerificationError(f"{FILE}: expected one envelope line, found {len(lines)}")
    try:
        env = json.loads(lines[0])
        body = base64.b64decode(env["payload"], validate=True)
        sigs = [base64.b64decode(s["sig"], validate=True) for s in env["signatures"]]
        payload_type = env["payloadType"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"{FILE}: not a DSSE envelope") from exc
    if payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"{FILE}: payloadType {payload_type!r}, not {PAYLOAD_TYPE}")
    message = pae(payload_type, body)
    if not any(_valid(cert, sig, message) for sig in sigs):
        raise VerificationError(f"{FILE}: no signature verifies with the bundle's signing key")
    try:
        stmt = json.loads(body)
    except ValueError as exc:
        raise VerificationError(f"{FILE}: the signed payload is not JSON") from exc
    if stmt.get("_type") != STATEMENT_TYPE or stmt.get("predicateType") != PREDICATE_TYPE:
        raise VerificationError(f"{FILE}: not an auditkit in-toto Statement v1")
    return stmt


def _valid(cert: x509.Certificate, sig: bytes, message: bytes) -> bool:
    public_key = cert.public_key()
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(sig, message, _PSS, hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


def subject_digests(stmt: Mapping[str, Any]) -> dict[str, str]:
    """``{name: sha256}`` of a statement's subjects."""
    return {s["name"]: s["digest"]["sha256"] for s in stmt.get("subject", [])}


def sha256_text(text: str) -> str:
    """sha256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
