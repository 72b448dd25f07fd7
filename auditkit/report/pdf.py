"""Render the report HTML to PDF with WeasyPrint (imported only when a PDF is written)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from auditkit.resources import templates_dir

_DESCRIPTIONS = {
    "results.json": "auditkit results: every number this report shows (canonical JSON)",
    "manifest.json": "auditkit manifest: digests of inputs, policy and outputs; versions; command",
    "signature.json": "detached signature over manifest.json",
}


def write_pdf(
    html: str,
    target: Path,
    *,
    templates: Path | None = None,
    attachments: Mapping[str, bytes] | None = None,
) -> None:
    """Write ``html`` as a PDF with ``attachments`` (name -> bytes) embedded as files.

    Relative URLs (the stylesheet) resolve in the templates folder.
    """
    import logging

    from weasyprint import HTML, Attachment

    # WeasyPrint logs every unsupported CSS property at WARNING; that is noise for a user.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    base = templates if templates and (templates / "report.css").exists() else templates_dir()
    files = [
        Attachment(string=data, name=name, description=_DESCRIPTIONS.get(name, name))
        for name, data in (attachments or {}).items()
    ]
    HTML(string=html, base_url=str(base)).write_pdf(target, attachments=files)
