"""Charts of the report: generic matplotlib figures returned as deterministic inline SVG.

Owns drawing only. Every function takes plain data (sequences of numbers and labels, never a
CheckResult), draws one figure and returns an :class:`Svg` whose ``markup`` is an ``<svg>``
element ready to put inline into the report HTML (WeasyPrint keeps it vector in the PDF).
Which chart a check gets, and from which of its numbers, is decided in
:mod:`auditkit.report.figures`; a new check is wired there, not here.

The API (all keyword arguments after the data; ``title``, ``xlabel``, ``ylabel`` optional):

- ``bar_chart(categories, values)``: one bar per category (e.g. PHI findings by type).
- ``grouped_bar_chart(groups, series, intervals=None)``: per group (e.g. an ICD-10 code),
  one bar per series (e.g. ``{"synthetic": [...], "real": [...]}``); ``None`` values are
  left out; ``intervals`` maps a series name to ``(low, high)`` pairs drawn as error bars.
- ``histogram(values, bins=30, cutoff=None, cutoff_label="")``: one distribution, with an
  optional vertical cut-off line (e.g. the shortest passage counted as a copy).
- ``overlaid_histograms(series, bins=30, cutoff=None, cutoff_label="")``: two or more
  distributions on shared bins (e.g. distance to the closest record, synthetic vs
  holdout), as outlines normalised to shares, with an optional cut-off line.
- ``roc_curves(curves, baseline=None)``: ``curves`` maps a name to ``(fpr, tpr)``
  sequences; the chance diagonal is always drawn, ``baseline`` is one more ``(fpr, tpr)``
  curve drawn dashed (e.g. a blind attack that never saw the model).
- ``confusion_matrix(matrix, labels)``: a square count matrix (rows: true, columns:
  predicted) as a grey heatmap with the count in every cell.

Output is byte-identical for the same data: Agg backend, fixed ``svg.hashsalt`` per chart,
no date or tool metadata, text kept as text (``svg.fonttype = none``). Styling is
black-and-white safe: greys, hatching and line styles, never colour alone.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GREYS = ("#222222", "#8c8c8c", "#c8c8c8", "#555555")
HATCHES = ("", "////", "....", "xxxx")
LINESTYLES = ("-", "--", ":", "-.")
WIDTH_IN = 6.4
HEIGHT_IN = 2.6
_PREAMBLE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


@dataclass(frozen=True)
class Svg:
    """One rendered chart: inline ``<svg>`` markup and a short alternative text."""

    markup: str
    alt: str

    def __html__(self) -> str:  # jinja2 inserts it unescaped (it is our own markup)
        return self.markup


def _figure(height: float = HEIGHT_IN) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height))
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=7)
    return fig, ax


def _labels(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    if title:
        ax.set_title(title, fontsize=8.5, loc="left")
    ax.set_xlabel(xlabel, fontsize=7.5)
    ax.set_ylabel(ylabel, fontsize=7.5)


def _svg(fig: Any, salt: str, alt: str) -> Svg:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(
        {"svg.hashsalt": f"auditkit-{salt}", "svg.fonttype": "none", "font.family": "DejaVu Sans"}
    ):
        fig.tight_layout()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return Svg(_PREAMBLE.sub("", buf.getvalue(), count=1).strip() + "\n", alt)


def bar_chart(
    categories: Sequence[str],
    values: Sequence[float],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
) -> Svg:
    """One bar per category, value printed above each bar."""
    fig, ax = _figure()
    bars = ax.bar(range(len(categories)), values, color=GREYS[0], edgecolor="black", width=0.6)
    ax.bar_label(bars, fontsize=6.5, padding=1)
    ax.set_xticks(range(len(categories)), list(categories), rotation=30, ha="right")
    _labels(ax, title, xlabel, ylabel)
    ax.margins(y=0.15)
    return _svg(fig, f"bar-{title}", title or "bar chart")


def grouped_bar_chart(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    intervals: Mapping[str, Sequence[tuple[float, float] | None]] | None = None,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
) -> Svg:
    """Per group, one bar per series (grey + hatch per series, legend on top)."""
    import numpy as np

    fig, ax = _figure()
    n = max(len(series), 1)
    width = 0.8 / n
    x = np.arange(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        pos = [x[j] + (i - (n - 1) / 2) * width for j, v in enumerate(vals) if v is not None]
        heights = [v for v in vals if v is not None]
        err = None
        if intervals and name in intervals:
            pairs = [p for v, p in zip(vals, intervals[name], strict=True) if v is not None]
            err = np.array(
                [[h - p[0], p[1] - h] if p else [0, 0] for h, p in zip(heights, pairs, strict=True)]
            ).T.clip(min=0)
        ax.bar(
            pos, heights, width=width, label=name, color=GREYS[i % 4], hatch=HATCHES[i % 4],
            edgecolor="black", linewidth=0.5, yerr=err, capsize=1.5,
            error_kw={"elinewidth": 0.6, "ecolor": "black"},
        )  # fmt: skip
    ax.set_xticks(x, list(groups), rotation=45 if len(groups) > 8 else 0, fontsize=6.5)
    ax.legend(fontsize=7, frameon=False, loc="best")
    _labels(ax, title, xlabel, ylabel)
    return _svg(fig, f"grouped-{title}", title or "grouped bar chart")


def _bins(arrays: Sequence[Any], bins: int) -> Any:
    import numpy as np

    values = np.concatenate([np.asarray(a, dtype=float) for a in arrays if len(a)] or [[0.0]])
    low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1.0
    return np.linspace(low, high, bins + 1)


def histogram(
    values: Sequence[float],
    *,
    bins: int = 30,
    cutoff: float | None = None,
    cutoff_label: str = "",
    title: str = "",
    xlabel: str = "",
    ylabel: str = "records",
) -> Svg:
    """One distribution as a histogram, with an optional labelled vertical cut-off line."""
    fig, ax = _figure()
    edges = _bins([values, [cutoff] if cutoff is not None else []], bins)
    ax.hist(values, bins=edges, color=GREYS[2], edgecolor="black", linewidth=0.5)
    _cutoff(ax, cutoff, cutoff_label)
    _labels(ax, title, xlabel, ylabel)
    return _svg(fig, f"hist-{title}", title or "histogram")


def _cutoff(ax: Any, x: float | None, label: str) -> None:
    if x is None:
        return
    ax.axvline(x, color="black", linestyle="--", linewidth=1.2)
    if label:
        ax.annotate(
            label, xy=(x, 1), xycoords=("data", "axes fraction"),
            xytext=(3, -2), textcoords="offset points", fontsize=6.5, va="top",
        )  # fmt: skip


def overlaid_histograms(
    series: Mapping[str, Sequence[float]],
    *,
    bins: int = 30,
    cutoff: float | None = None,
    cutoff_label: str = "",
    title: str = "",
    xlabel: str = "",
    ylabel: str = "share of records",
) -> Svg:
    """Two or more distributions on shared bins, each as a normalised step outline."""
    import numpy as np

    fig, ax = _figure()
    edges = _bins(list(series.values()), bins)
    for i, (name, vals) in enumerate(series.items()):
        if not len(vals):
            continue
        weights = np.full(len(vals), 1.0 / len(vals))
        ax.hist(
            vals, bins=edges, weights=weights, histtype="step", linewidth=1.4,
            color=GREYS[0] if i == 0 else GREYS[3], linestyle=LINESTYLES[i % 4],
            label=f"{name} (n={len(vals)})",
        )  # fmt: skip
        if i == 0:
            ax.hist(vals, bins=edges, weights=weights, color=GREYS[2], alpha=0.6)
    _cutoff(ax, cutoff, cutoff_label)
    ax.legend(fontsize=7, frameon=False)
    _labels(ax, title, xlabel, ylabel)
    return _svg(fig, f"overlaid-{title}", title or "histograms")


def roc_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    baseline: tuple[Sequence[float], Sequence[float]] | None = None,
    baseline_label: str = "baseline",
    title: str = "",
    xlabel: str = "false positive rate",
    ylabel: str = "true positive rate",
) -> Svg:
    """ROC curves with the chance diagonal and an optional dashed baseline curve."""
    fig, ax = _figure(height=3.2)
    ax.plot([0, 1], [0, 1], color=GREYS[1], linestyle=":", linewidth=1, label="chance")
    if baseline is not None:
        ax.plot(*baseline, color=GREYS[3], linestyle="--", linewidth=1.2, label=baseline_label)
    for i, (name, (fpr, tpr)) in enumerate(curves.items()):
        ax.plot(fpr, tpr, color="black", linestyle=LINESTYLES[i % 4], linewidth=1.5, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    _labels(ax, title, xlabel, ylabel)
    return _svg(fig, f"roc-{title}", title or "ROC curves")


def confusion_matrix(
    matrix: Sequence[Sequence[float]],
    labels: Sequence[str],
    *,
    title: str = "",
    xlabel: str = "predicted",
    ylabel: str = "true",
) -> Svg:
    """A square count matrix as a grey heatmap, the count printed in every cell."""
    import numpy as np

    data = np.asarray(matrix, dtype=float)
    size = min(2.4 + 0.3 * len(labels), 6.0)
    fig, ax = _figure(height=size)
    ax.imshow(data, cmap="Greys", vmin=0, vmax=max(float(data.max()), 1.0))
    threshold = data.max() / 2 if data.size else 0
    for (i, j), v in np.ndenumerate(data):
        ax.text(
            j, i, f"{v:g}", ha="center", va="center", fontsize=6.5,
            color="white" if v > threshold else "black",
        )  # fmt: skip
    ticks = range(len(labels))
    ax.set_xticks(ticks, list(labels), rotation=45, ha="right", fontsize=6.5)
    ax.set_yticks(ticks, list(labels), fontsize=6.5)
    ax.spines[:].set_visible(False)
    _labels(ax, title, xlabel, ylabel)
    return _svg(fig, f"confusion-{title}", title or "confusion matrix")
