"""Generic report charts: valid, deterministic inline SVG, and the per-check wiring."""

import re

import pytest

from auditkit.report import charts
from auditkit.report.figures import figures_for
from auditkit.results import CheckResult, Direction, Interval, Metric, RecordResult

CASES = {
    "bar": lambda: charts.bar_chart(["NAME", "DATE"], [3, 5], title="t"),
    "grouped": lambda: charts.grouped_bar_chart(
        ["F32.1", "F41.1"],
        {"synthetic": [0.4, None], "real": [0.5, 0.6]},
        intervals={"real": [(0.45, 0.55), (0.5, 0.7)]},
    ),
    "histogram": lambda: charts.histogram([1, 2, 2, 9, 30], cutoff=20, cutoff_label="cut"),
    "overlaid": lambda: charts.overlaid_histograms({"a": [0.1, 0.2], "b": [0.15, 0.4, 0.5]}),
    "roc": lambda: charts.roc_curves(
        {"loss attack": ([0, 0.2, 1], [0, 0.5, 1])}, baseline=([0, 1], [0, 1])
    ),
    "confusion": lambda: charts.confusion_matrix([[5, 1], [2, 7]], ["F32", "F41"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_chart_is_inline_svg_and_byte_identical_when_redrawn(name):
    first, second = CASES[name](), CASES[name]()
    assert first.markup.startswith("<svg") and first.markup.rstrip().endswith("</svg>")
    assert "<?xml" not in first.markup and "<!DOCTYPE" not in first.markup
    assert "<dc:date>" not in first.markup and "Matplotlib v" not in first.markup
    assert first.markup == second.markup


def test_text_stays_text_so_labels_are_searchable():
    svg = charts.bar_chart(["NAME", "PHONE"], [1, 2], title="PHI spans").markup
    assert "PHONE" in svg and "PHI spans" in svg


def _metric(name, value, group=None, interval=None):
    return Metric(
        name=name, value=value, direction=Direction.LOWER_IS_SAFER, group=group, interval=interval
    )


def test_figures_for_existing_checks():
    phi = CheckResult(
        check="phi",
        status="ok",
        metrics=(
            _metric("source_reuse_records", 1),
            _metric("spans", 4, "NAME"),
            _metric("source_reuse_spans", 1, "NAME"),
            _metric("spans", 0, "ZIP"),
        ),
    )
    overlap = CheckResult(
        check="overlap",
        status="ok",
        config={"min_exact_tokens": 20, "boilerplate_k": 5},
        records={"a": RecordResult(values={"max_exact_tokens": 8}),
                 "b": RecordResult(values={"max_exact_tokens": 31})},
        series={"dcr_similarity_synthetic": (0.1, 0.3), "dcr_similarity_holdout": (0.1, 0.2)},
    )  # fmt: skip
    diversity = CheckResult(
        check="diversity",
        status="ok",
        metrics=(
            _metric("distinct_2", 0.4, "F32.1"),
            _metric("distinct_2_reference", 0.6, "F32.1", Interval(low=0.55, high=0.65)),
        ),
    )
    assert len(figures_for(phi)) == 1
    assert "ZIP" not in figures_for(phi)[0].svg.markup  # nothing found, nothing drawn
    assert len(figures_for(overlap)) == 2
    assert len(figures_for(diversity)) == 1
    assert figures_for(CheckResult(check="phi", status="skipped", reason="x")) == []
    assert figures_for(CheckResult(check="unknown", status="ok")) == []
    for fig in figures_for(overlap):
        assert re.search(r"<svg[^>]*>", fig.svg.markup)


def test_figures_for_membership_and_fidelity():
    from auditkit.results import Curve, Table

    roc = ((0.0, 0.0), (0.2, 0.6), (1.0, 1.0))
    membership = CheckResult(
        check="membership",
        status="ok",
        curves=(
            Curve(name="roc:loss", label="loss (AUC 0.80)", x="fpr", y="tpr", points=roc),
            Curve(name="roc:blind", label="blind baseline (AUC 0.51)", x="fpr", y="tpr",
                  points=((0.0, 0.0), (1.0, 1.0))),
        ),
    )  # fmt: skip
    [fig] = figures_for(membership)
    assert "loss (AUC 0.80)" in fig.svg.markup and "blind baseline" in fig.svg.markup
    fidelity = CheckResult(
        check="fidelity",
        status="ok",
        tables={
            "confusion": Table(rows=("F32.1", "F41.1"), columns=("F32.1", "F41.1", "F43.10"),
                               values=((5, 1, 0), (0, 4, 2))),
            "coverage": Table(rows=("F32.1",), columns=("synthetic", "source"),
                              values=((0.5, 0.75),)),
        },
    )  # fmt: skip
    confusion, coverage = figures_for(fidelity)
    # The matrix is made square over every code seen; the count labels are drawn as text.
    assert confusion.svg.markup.count("F43.10") >= 2
    assert "synthetic" in coverage.svg.markup
    assert figures_for(CheckResult(check="membership", status="ok")) == []
