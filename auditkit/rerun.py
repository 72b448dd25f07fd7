"""Re-run an audit from its bundle and compare the new results with the signed ones.

Owns :func:`rerun`. The bundle is verified first (a tampered manifest must not drive a
rerun). Then the manifest's ``invocation`` (the keyword arguments of
:func:`auditkit.pipeline.audit` that produced it, recorded generically) is passed back to
``audit()``, with two changes: every input corpus and the policy are located (by their
recorded paths, or by ``--input ROLE=PATH``) and refused unless their sha256 equals the
manifest's; and the fresh bundle goes to ``out`` (a temporary folder when not given).

Results are compared as canonical JSON. Evidence tokens are keyed by the signing key, so a
rerun signed with another key masks the same values with other tokens; when the key
differs, tokens are compared as ``[TYPE#…]`` and the report says so.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditkit.errors import UsageError, VerificationError

_TOKEN = re.compile(r"\[([A-Z_]+)#[0-9a-f]{8}\]")
#: invocation keys whose value is a file that the manifest pins by digest.
CORPUS_ROLES = ("synthetic", "source", "holdout")


@dataclass
class RerunOutcome:
    """What a rerun found: the differences (empty when identical) and where it wrote."""

    differences: list[str]
    bundle: Path
    same_key: bool
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """True when the new results.json equals the signed one."""
        return not self.differences


def _load_manifest(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VerificationError(f"{root / 'manifest.json'}: missing or not JSON") from exc


def _locate(
    role: str, recorded: str | None, overrides: Mapping[str, str], expected: str, digest: Any
) -> str:
    path = overrides.get(role) or recorded
    if not path:
        raise UsageError(
            f"the manifest records no path for the {role} input",
            hint=f"give it with --input {role}=PATH",
        )
    if not Path(path).exists():
        raise UsageError(
            f"{path}: the {role} input is not there any more",
            hint=f"give its new location with --input {role}=PATH",
        )
    actual = digest(path)
    if actual != expected:
        raise VerificationError(
            f"{path}: the {role} input differs from the audited one "
            f"(sha256 {actual}, audited {expected}); refusing to rerun on other data",
            hint=f"find the original file and pass it with --input {role}=PATH",
        )
    return path


def _corpus_digest(fields: Any) -> Any:
    def digest(path: str) -> str:
        from auditkit.corpus import load_corpus
        from auditkit.manifest import sha256_file

        if Path(path).is_file():
            return sha256_file(path)
        return load_corpus(path, "rerun", fields=fields).sha256  # a folder's own digest

    return digest


def resolve_invocation(manifest: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """The audit() keyword arguments of a manifest, with every input located and checked.

    Raises:
        UsageError: No recorded invocation, an unknown ``--input`` role, or a missing file.
        VerificationError: An input or the policy differs (sha256) from the audited one.
    """
    from auditkit.corpus import FieldMap
    from auditkit.manifest import sha256_file
    from auditkit.resources import resolve_policy

    invocation = dict(manifest.get("invocation") or {})
    if not invocation:
        raise UsageError(
            "manifest.json records no invocation (bundle made by an older auditkit)",
            hint="re-run its command from manifest.json by hand",
        )
    inputs = manifest.get("inputs", {})
    known = set(inputs) | {"policy"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UsageError(
            f"--input {unknown[0]}=...: the audit had no such input",
            hint=f"use one of: {', '.join(sorted(known))}",
        )
    if isinstance(invocation.get("fields"), dict):
        invocation["fields"] = FieldMap(**invocation["fields"])
    digest = _corpus_digest(invocation.get("fields"))
    for role in CORPUS_ROLES:
        if role in inputs:
            invocation[role] = _locate(
                role, invocation.get(role), overrides, inputs[role]["sha256"], digest
            )
        else:
            invocation[role] = None
    policy = manifest["policy"]
    recorded = invocation.get("policy")
    if not overrides.get("policy") and recorded and not Path(recorded).exists():
        recorded = str(resolve_policy(policy["name"]))  # a shipped policy, installed elsewhere
    invocation["policy"] = _locate("policy", recorded, overrides, policy["sha256"], sha256_file)
    return invocation


def compare(signed: str, fresh: str, *, same_key: bool = True) -> list[str]:
    """The differences between two results.json texts, one line per differing value.

    Metric values are named ``check.metric[group]``; anything else by its JSON path.
    """
    if not same_key:
        signed, fresh = _TOKEN.sub(r"[\1#…]", signed), _TOKEN.sub(r"[\1#…]", fresh)
    if signed == fresh:
        return []
    return _diff(_keyed(json.loads(signed)), _keyed(json.loads(fresh)), "") or [
        "results.json differs in formatting only"
    ]


def _keyed(run: Any) -> Any:
    """Make lists of named items dicts, so a diff names the metric, not its position."""
    if isinstance(run, dict):
        out = {k: _keyed(v) for k, v in run.items()}
        if isinstance(run.get("checks"), list):
            out["checks"] = {c.get("check", str(i)): _keyed(c) for i, c in enumerate(run["checks"])}
        if isinstance(run.get("metrics"), list):
            out["metrics"] = {
                m["name"] + (f"[{m['group']}]" if m.get("group") else ""): _keyed(m)
                for m in run["metrics"]
            }
        for key in ("gates", "record_gates", "decisions"):
            if isinstance(run.get(key), list):
                out[key] = {g.get("id", str(i)): _keyed(g) for i, g in enumerate(run[key])}
        return out
    if isinstance(run, list):
        return [_keyed(v) for v in run]
    return run


def _diff(a: Any, b: Any, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(a.keys() | b.keys()):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a:
                out.append(f"{sub}: only in the new results")
            elif key not in b:
                out.append(f"{sub}: missing from the new results")
            else:
                out += _diff(a[key], b[key], sub)
        return out
    if a != b:
        if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
            return [f"{path}: differs"]
        return [f"{path}: signed {a!r}, now {b!r}"]
    return []


def rerun(
    bundle_dir: str | Path,
    *,
    overrides: Mapping[str, str] | None = None,
    out: str | Path | None = None,
    identity: Any | None = None,
    trusted_cert: str | Path | None = None,
    progress: bool | None = False,
) -> RerunOutcome:
    """Recompute a bundle's audit and compare the new results.json with the signed one.

    Args:
        bundle_dir: The signed bundle.
        overrides: ``{role: path}`` for inputs (or ``policy``) that moved.
        out: Folder for the fresh bundle; a new temporary folder when None.
        identity: Signs the fresh bundle; None uses the demo key.
        trusted_cert: Passed to the verification of the signed bundle.
        progress: Progress bars on stderr.

    Raises:
        VerificationError: The signed bundle does not verify, or an input differs.
        UsageError: An input cannot be found.
    """
    from auditkit import signing
    from auditkit.pipeline import audit
    from auditkit.verify import verify

    root = Path(bundle_dir)
    report = verify(root, trusted_cert=trusted_cert)
    if not report.ok:
        failed = "; ".join(f"{s.name}: {s.detail}" for s in report.failures)
        raise VerificationError(
            f"{root}: the bundle does not verify, so it cannot be re-run ({failed})",
            hint="run `auditkit verify` on it for details",
        )
    manifest = _load_manifest(root)
    kwargs = resolve_invocation(manifest, overrides or {})
    ident = identity if identity is not None else signing.demo_identity()
    target = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="auditkit-rerun-"))
    if out is None:
        target = target / "bundle"
    located = {k: str(kwargs[k]) for k in (*CORPUS_ROLES, "policy") if kwargs.get(k)}
    synthetic = kwargs.pop("synthetic")
    audit(synthetic, out=target, identity=ident, progress=progress,
          argv=["auditkit", "rerun", str(root)], **kwargs)  # fmt: skip
    same_key = ident.key_id == manifest.get("signer", {}).get("key_id")
    signed = (root / "results.json").read_text(encoding="utf-8")
    fresh = (target / "results.json").read_text(encoding="utf-8")
    return RerunOutcome(
        differences=compare(signed, fresh, same_key=same_key),
        bundle=target,
        same_key=same_key,
        inputs=located,
    )
