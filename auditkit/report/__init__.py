"""The compliance report: jinja2 templates rendered to HTML, and the same HTML to PDF."""
