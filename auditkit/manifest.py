"""The manifest: everything an auditor needs to re-run an audit and trust its outputs.

Owns the digests of inputs, policy, models and outputs, the versions of auditkit, Python
and the packages that compute numbers, the seed, and the exact command. The manifest is
what ``signature.json`` signs, so it pins every other file of the bundle.
"""

from __future__ import annotations

import hashlib
import platform
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from auditkit import __version__
from auditkit.corpus import Corpus

FORMAT = "auditkit-manifest/1"

#: Packages whose versions can change a number in results.json.
TRACKED_PACKAGES = (
    "click",
    "pydantic",
    "numpy",
    "scipy",
    "scikit-learn",
    "datasketch",
    "rapidfuzz",
    "sacrebleu",
    "presidio-analyzer",
    "spacy",
    "transformers",
    "torch",
    "sentence-transformers",
    "jinja2",
    "weasyprint",
    "matplotlib",
    "cryptography",
    "pyhanko",
    "pyyaml",
)


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the given distributions (absent ones are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def environment() -> dict[str, Any]:
    """Interpreter, platform and package versions."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": package_versions(),
    }


def corpus_entry(corpus: Corpus) -> dict[str, Any]:
    """The manifest entry of one input corpus."""
    return {
        "path": corpus.path,
        "format": corpus.format,
        "sha256": corpus.sha256,
        "bytes": corpus.size_bytes,
        "records": len(corpus),
        "fields": {
            "id": corpus.fields.id,
            "text": corpus.fields.text,
            "codes": corpus.fields.codes,
        },
    }


def command_entry(argv: Sequence[str] | None) -> dict[str, Any]:
    """The command that produced the bundle, as a list and as a copy-pasteable line."""
    args = list(argv) if argv is not None else ["auditkit", *sys.argv[1:]]
    return {"argv": args, "shell": shlex.join(args)}


def build_manifest(
    *,
    seed: int,
    corpora: Mapping[str, Corpus],
    policy: Mapping[str, str],
    options: Mapping[str, Any],
    models: Sequence[Mapping[str, Any]],
    signer: Mapping[str, Any],
    verdict: Mapping[str, Any],
    outputs: Mapping[str, Path],
    argv: Sequence[str] | None,
    created: datetime | None = None,
    invocation: Mapping[str, Any] | None = None,
    self_signed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Assemble manifest.json's content. ``outputs`` maps bundle names to files to hash.

    ``invocation`` is the audit() keyword arguments that ``auditkit rerun`` passes back;
    ``self_signed`` names outputs the manifest cannot pin because they embed it (report.pdf:
    its own PAdES signature covers every byte, and it carries this manifest inside).
    """
    return {
        "format": FORMAT,
        "tool": {"name": "auditkit", "version": __version__},
        "created": (created or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command_entry(argv),
        "seed": seed,
        "invocation": dict(invocation or {}),
        "options": dict(options),
        "inputs": {role: corpus_entry(c) for role, c in sorted(corpora.items())},
        "policy": dict(policy),
        "models": list(models),
        "environment": environment(),
        "signer": dict(signer),
        "verdict": dict(verdict),
        "outputs": {
            name: {"sha256": sha256_file(path), "bytes": path.stat().st_size}
            for name, path in sorted(outputs.items())
        },
        "self_signed_outputs": dict(self_signed or {}),
    }
