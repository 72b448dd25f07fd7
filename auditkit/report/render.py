"""Render an :class:`AuditRun` to the HTML report.

Owns the view of a run that templates see; computes nothing new and judges nothing (the
verdict is already in the run). Templates live in ``reports/templates/`` and a user can
put their own folder first with ``--templates``. Autoescaping is on: every value from the
data is escaped, so a record id cannot inject markup.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from auditkit.checks import registry
from auditkit.resources import templates_dir
from auditkit.results import AuditRun, CheckResult, Metric

OUTCOME_LABEL = {
    "pass": "PASS",
    "pass_with_warnings": "PASS WITH WARNINGS",
    "fail": "FAIL",
    "error": "ERROR",
}


def fmt(value: Any, digits: int = 3) -> str:
    """Format a metric value for people: ints as ints, floats to ``digits`` significant."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return (
            f"{value:.{digits}f}".rstrip("0").rstrip(".")
            if "." in f"{value:.{digits}f}"
            else f"{value:.{digits}f}"
        )
    return str(value)


def fmt_metric(metric: Metric | None) -> str:
    """A metric's value with its interval, e.g. ``0.83 [0.79, 0.88]``."""
    if metric is None:
        return "n/a"
    text = fmt(metric.value)
    if metric.interval is not None:
        text += f" [{fmt(metric.interval.low)}, {fmt(metric.interval.high)}]"
    return text


def _check_view(result: CheckResult) -> dict[str, Any]:
    try:
        cls = registry.get(result.check)
        title, summary, specs = cls.title, cls.summary, cls.metrics
    except Exception:  # a plugin uninstalled since the run: still render the numbers
        title, summary, specs = result.check, "", {}
    overall = [m for m in result.metrics if m.group is None]
    groups = result.groups()
    grouped_names = sorted(
        {m.name for m in result.metrics if m.group is not None},
        key=lambda n: list(specs).index(n) if n in specs else 999,
    )
    table = {(m.name, m.group): m for m in result.metrics}
    from auditkit.report.figures import figures_for

    return {
        "figures": figures_for(result),
        "id": result.check,
        "title": title,
        "summary": summary,
        "result": result,
        "overall": overall,
        "groups": groups,
        "grouped_names": grouped_names,
        "table": table,
        "template": f"checks/{result.check}.html.j2",
    }


def render_html(
    run: AuditRun,
    *,
    signer: Mapping[str, Any],
    argv: Sequence[str] | None = None,
    templates: Path | None = None,
    environment: Mapping[str, Any] | None = None,
    models: Sequence[Mapping[str, Any]] = (),
    synthetic_file: str | None = None,
) -> str:
    """Render the report HTML for a run.

    Args:
        run: The audit run (results.json).
        signer: ``subject``, ``key_id``, ``demo_key`` and ``signed_at`` of the signer.
        argv: The command line, shown in the reproducibility section.
        templates: A folder of templates that replace the shipped ones.
        environment: Python and package versions (:func:`auditkit.manifest.environment`).
        models: Descriptions of the models the checks used.
        synthetic_file: File name of the certified dataset (the report's running header).
    """
    import jinja2

    search = [str(templates)] if templates else []
    search.append(str(templates_dir()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["fmt_metric"] = fmt_metric
    env.tests["existing_template"] = lambda name: name in env.list_templates()
    synthetic = next((i for i in run.inputs if i.role == "synthetic"), None)
    return env.get_template("report.html.j2").render(
        run=run,
        verdict=run.verdict,
        outcome_label=OUTCOME_LABEL[run.verdict.outcome],
        synthetic=synthetic,
        checks=[_check_view(c) for c in run.checks],
        signer=signer,
        command=shlex.join(argv) if argv else None,
        environment=environment or {},
        models=list(models),
        dataset=synthetic_file or (synthetic.path if synthetic else "dataset"),
    )
