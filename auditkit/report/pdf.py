"""Render the report HTML to PDF with WeasyPrint (imported only when a PDF is written)."""

from __future__ import annotations

from pathlib import Path

from auditkit.resources import templates_dir


def write_pdf(html: str, target: Path, *, templates: Path | None = None) -> None:
    """Write ``html`` as a PDF; relative URLs (the stylesheet) resolve in the templates folder."""
    import logging

    from weasyprint import HTML

    # WeasyPrint logs every unsupported CSS property at WARNING; that is noise for a user.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    base = templates if templates and (templates / "report.css").exists() else templates_dir()
    HTML(string=html, base_url=str(base)).write_pdf(target)
