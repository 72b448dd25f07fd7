"""The output bundle: results, release/quarantine files, report, manifest, signature.

Owns writing the bundle atomically: every file goes to a temporary sibling folder, which
replaces the target only when it is complete and signed. A crash leaves either the old
bundle or the new one, never half of each.

Order of work, because the manifest pins files and the PDF carries the manifest:
results.json, release.jsonl, quarantine.jsonl, the attestation and report.html are written
first; manifest.json pins all of them; signature.json signs manifest.json; last, report.pdf
is rendered with results.json, manifest.json and signature.json embedded and PAdES-signed.
The manifest cannot hold the signed PDF's digest (the PDF contains the manifest), so it
lists report.pdf under ``self_signed_outputs``: the PDF's own signature covers every byte of
it, and verification requires its embedded files to equal the bundle's.

Never writes raw PHI: quarantine.jsonl carries ids, gate ids, masked reasons and a text
digest, not the text.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from auditkit.corpus import Record
from auditkit.errors import UsageError
from auditkit.manifest import build_manifest
from auditkit.results import AuditRun, canonical_json

RESULTS = "results.json"
MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
REPORT_HTML = "report.html"
REPORT_PDF = "report.pdf"
RELEASE = "release.jsonl"
QUARANTINE = "quarantine.jsonl"
ATTESTATION = "attestation.intoto.jsonl"
#: Files embedded in report.pdf before it is signed: the PDF alone is the whole evidence.
PDF_ATTACHMENTS = (RESULTS, MANIFEST, SIGNATURE)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file via a temporary file and rename (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _record_line(record: Record, fields: Any) -> str:
    obj = dict(record.meta)
    obj[fields.id] = record.id
    obj[fields.text] = record.text
    obj[fields.codes] = list(record.codes)
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def release_and_quarantine(
    run: AuditRun, records: Sequence[Record], fields: Any
) -> tuple[str, str]:
    """Split the synthetic records by the verdict's record decisions.

    release.jsonl holds the released records in the input's own field names, ready to
    ship; quarantine.jsonl holds, per held-back record, its id, the gates it failed, the
    masked reasons and the sha256 of its text (the user looks the text up by id).
    """
    decisions = {d.id: d for d in run.verdict.decisions}
    released, quarantined = [], []
    for record in records:
        decision = decisions[record.id]
        if decision.released:
            released.append(_record_line(record, fields))
        else:
            quarantined.append(
                json.dumps(
                    {
                        "id": record.id,
                        "gates": list(decision.gates),
                        "reasons": list(decision.reasons),
                        "text_sha256": hashlib.sha256(record.text.encode("utf-8")).hexdigest(),
                    },
                    ensure_ascii=False,
                    sort_keys=True,
                )
            )
    as_text = lambda lines: "".join(line + "\n" for line in lines)  # noqa: E731
    return as_text(released), as_text(quarantined)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _prepare_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder", hint="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise UsageError(
            f"{out}: folder is not empty and is not an auditkit bundle; refusing to replace it",
            hint="choose an empty or new --out folder",
        )


def _swap_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def write_bundle(
    out: Path,
    *,
    run: AuditRun,
    inputs: Any,
    policy: Any,
    identity: Any,
    options: Mapping[str, Any],
    argv: Sequence[str] | None,
    models: Sequence[Mapping[str, Any]] = (),
    templates: Path | None = None,
    invocation: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write and sign the complete bundle into ``out``; return the final file paths."""
    from datetime import datetime, timezone

    from auditkit import attestation, pades, signing
    from auditkit.manifest import environment
    from auditkit.report.pdf import write_pdf
    from auditkit.report.render import render_html

    _prepare_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        files: dict[str, Path] = {}

        def put(name: str, text: str) -> None:
            (tmp / name).write_text(text, encoding="utf-8", newline="\n")
            files[name] = tmp / name

        put(RESULTS, canonical_json(run))
        release, quarantine = release_and_quarantine(
            run, inputs.synthetic.records, inputs.synthetic.fields
        )
        put(RELEASE, release)
        put(QUARANTINE, quarantine)
        env, models = environment(), list(models)
        synthetic = inputs.synthetic
        subjects = [(Path(synthetic.path).name, synthetic.sha256), (RELEASE, _sha256(release))]
        tools = {"auditkit": run.version, "python": env["python"], **env["packages"]}
        statement = attestation.statement(
            subjects, attestation.predicate(run, tools=tools, models=models)
        )
        put(ATTESTATION, attestation.dumps(attestation.envelope(identity, statement)))
        created = datetime.now(timezone.utc)
        signer = {
            "subject": identity.subject,
            "key_id": identity.key_id,
            "demo_key": identity.demo,
            "signed_at": created.strftime("%Y-%m-%d %H:%M UTC"),
        }
        html = render_html(
            run,
            signer=signer,
            argv=argv,
            templates=templates,
            environment=env,
            models=models,
            synthetic_file=Path(synthetic.path).name,
        )
        put(REPORT_HTML, html)
        manifest = build_manifest(
            seed=run.seed,
            corpora=inputs.present(),
            policy={"name": policy.name, "path": policy.path, "sha256": policy.sha256},
            options=options,
            models=list(models),
            signer=signer,
            verdict={"outcome": run.verdict.outcome, "exit_code": run.verdict.exit_code},
            outputs=files,
            argv=argv,
            created=created,
            invocation=invocation,
            self_signed={
                REPORT_PDF: "PAdES signature inside the file; embeds " + ", ".join(PDF_ATTACHMENTS)
            },
        )
        manifest_bytes = (
            json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        ).encode("utf-8")
        (tmp / MANIFEST).write_bytes(manifest_bytes)
        doc = signing.signature_document(identity, manifest_bytes, signed_file=MANIFEST)
        (tmp / SIGNATURE).write_text(
            json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        unsigned = tmp / f".{REPORT_PDF}.unsigned"
        write_pdf(
            html,
            unsigned,
            templates=templates,
            attachments={name: (tmp / name).read_bytes() for name in PDF_ATTACHMENTS},
        )
        pades.sign_pdf(
            unsigned,
            tmp / REPORT_PDF,
            identity,
            reason=f"auditkit verdict {run.verdict.outcome.upper()}: {run.verdict.summary}",
        )
        unsigned.unlink()
        files[REPORT_PDF] = tmp / REPORT_PDF
        os.chmod(tmp, 0o755)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {name: out / name for name in [*files, MANIFEST, SIGNATURE]}
