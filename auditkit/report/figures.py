"""Which charts each check's report section gets, drawn from its CheckResult.

Owns the wiring between results and :mod:`auditkit.report.charts`: one small function per
check id in :data:`FIGURES`, which reads metrics, per-record values and ``series`` from the
result and returns the charts with captions. It computes nothing that results.json does not
hold, and a check without an entry simply gets no charts. To add charts for a new check,
write ``def _mycheck(result) -> list[Figure]`` and register it in :data:`FIGURES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auditkit.report import charts
from auditkit.results import CheckResult


@dataclass(frozen=True)
class Figure:
    """A chart with the sentence under it."""

    svg: charts.Svg
    caption: str


def _value(result: CheckResult, name: str, group: str | None = None) -> float | None:
    m = result.metric(name if group is None else f"{name}[{group}]")
    return None if m is None or m.value is None else float(m.value)


def _phi(result: CheckResult) -> list[Figure]:
    groups = [
        g
        for g in result.groups()
        if _value(result, "spans", g) or _value(result, "source_reuse_spans", g)
    ]
    if not groups:
        return []
    series = {"found in synthetic reports": [_value(result, "spans", g) or 0 for g in groups]}
    if _value(result, "source_reuse_records") is not None:
        series["repeated from a real report"] = [
            _value(result, "source_reuse_spans", g) or 0 for g in groups
        ]
    svg = charts.grouped_bar_chart(groups, series, title="PHI spans by category", ylabel="spans")
    return [
        Figure(
            svg,
            "PHI spans found per category (solid), and those whose value also occurs in a real "
            "source report (hatched): only the hatched bars are identifiers of real patients.",
        )
    ]


def _overlap(result: CheckResult) -> list[Figure]:
    out = []
    spans = [r.values["max_exact_tokens"] for r in result.records.values()]
    cutoff = result.config.get("min_exact_tokens")
    if spans:
        svg = charts.histogram(
            spans,
            bins=min(40, max(int(max(spans)) + 1, 5)),
            cutoff=cutoff,
            cutoff_label=f"copy threshold: {cutoff} words",
            title="Longest word span shared with any source report, per synthetic report",
            xlabel="words",
        )
        out.append(
            Figure(
                svg,
                "Every synthetic report's longest span found word for word in a source report, "
                "boilerplate included. Spans left of the dashed line are too short to count as "
                "a copy; spans right of it count only when few source reports share them "
                f"(fewer than {result.config.get('boilerplate_k')}): a phrase many clinicians "
                "write is boilerplate, not a leak.",
            )
        )
    for suffix, label in (("", "word 4-gram Jaccard"), ("_embedding", "MiniLM cosine")):
        syn = result.series.get(f"dcr_similarity_synthetic{suffix}")
        hold = result.series.get(f"dcr_similarity_holdout{suffix}")
        if not syn or not hold:
            continue
        threshold = result.series.get(f"dcr_threshold{suffix}")
        share = result.config.get("holdout_quantile", 0.05)
        svg = charts.overlaid_histograms(
            {"synthetic": syn, "holdout (real, never seen)": hold},
            cutoff=threshold[0] if threshold else None,
            cutoff_label=f"{share:.0%} of holdout right of here",
            title=f"Similarity to the closest source report ({label})",
            xlabel=f"{label} similarity (right = closer)",
        )
        out.append(
            Figure(
                svg,
                "If the generator memorised its training notes, the synthetic distribution "
                "sits to the right of the holdout's; overlapping curves mean synthetic reports "
                "are no closer to the source than fresh real notes are. The share of synthetic "
                "reports right of the dashed line is the dcr_closer_share metric.",
            )
        )
    return out


def _diversity(result: CheckResult) -> list[Figure]:
    groups = [g for g in result.groups() if _value(result, "distinct_2_reference", g) is not None]
    if not groups:
        return []
    intervals = []
    for g in groups:
        m = result.metric(f"distinct_2_reference[{g}]")
        iv = m.interval if m is not None else None
        intervals.append((iv.low, iv.high) if iv is not None else None)
    svg = charts.grouped_bar_chart(
        groups,
        {
            "synthetic": [_value(result, "distinct_2", g) for g in groups],
            "real notes, length-matched": [
                _value(result, "distinct_2_reference", g) for g in groups
            ],
        },
        intervals={"real notes, length-matched": intervals},
        title="Distinct word bigrams per ICD-10 code, synthetic vs real",
        ylabel="distinct-2",
    )
    return [
        Figure(
            svg,
            "A synthetic bar well below the real one (beyond its 95% interval) means the "
            "generator writes the same phrases over and over for that code.",
        )
    ]


def _membership(result: CheckResult) -> list[Figure]:
    curves = {c.name: c for c in result.curves if c.name.startswith("roc:")}
    blind = curves.pop("roc:blind", None)
    if not curves:
        return []
    svg = charts.roc_curves(
        {c.label: ([p[0] for p in c.points], [p[1] for p in c.points]) for c in curves.values()},
        baseline=(
            ([p[0] for p in blind.points], [p[1] for p in blind.points])
            if blind is not None
            else None
        ),
        baseline_label=blind.label if blind is not None else "baseline",
        title="Membership attacks: source (members) vs holdout (non-members)",
        xlabel="false-positive rate",
        ylabel="true-positive rate",
    )
    return [
        Figure(
            svg,
            "Each curve is one attack scoring the source and holdout reports with the generator; "
            "the diagonal is chance. A curve bowed above the diagonal means the generator scores "
            "its training reports better than unseen ones. The dashed curve is the blind "
            "baseline, a classifier that never sees the generator: if it too rises above the "
            "diagonal, members and non-members differ in kind and the attacks' numbers are not "
            "evidence of memorisation. The headline is the worst (highest) of several attacks.",
        )
    ]


def _fidelity(result: CheckResult) -> list[Figure]:
    out = []
    confusion = result.tables.get("confusion")
    if confusion is not None and confusion.rows:
        labels = list(dict.fromkeys([*confusion.rows, *confusion.columns]))
        matrix = [
            [
                int(confusion.cell(r, c) or 0)
                if r in confusion.rows and c in confusion.columns
                else 0
                for c in labels
            ]
            for r in labels
        ]
        svg = charts.confusion_matrix(
            matrix,
            labels,
            title="Conditioning code (rows) vs code predicted by a classifier of real notes",
        )
        out.append(
            Figure(
                svg,
                "Counts on the diagonal are synthetic reports that a classifier trained on the "
                "real notes recognises as their conditioning code; counts off it are reports "
                "that read like another code.",
            )
        )
    coverage = result.tables.get("coverage")
    if coverage is not None and coverage.rows:
        codes = list(coverage.rows)
        svg = charts.grouped_bar_chart(
            codes,
            {
                "synthetic": [coverage.cell(c, "synthetic") for c in codes],
                "real (source)": [coverage.cell(c, "source") for c in codes],
            },
            title="Share of reports mentioning enough criteria of their code",
            ylabel="share",
        )
        out.append(
            Figure(
                svg,
                "Per ICD-10 code, the share of reports that mention (not negated) at least the "
                "policy's minimum number of the code's clinical criteria; a synthetic bar well "
                "below the real one means the reports name the code without describing it.",
            )
        )
    return out


#: Check id -> the function that draws its charts.
FIGURES: dict[str, Callable[[CheckResult], list[Figure]]] = {
    "phi": _phi,
    "overlap": _overlap,
    "diversity": _diversity,
    "membership": _membership,
    "fidelity": _fidelity,
}


def figures_for(result: CheckResult) -> list[Figure]:
    """The charts of one check's section (none for a skipped or failed check)."""
    draw = FIGURES.get(result.check)
    if draw is None or result.status != "ok":
        return []
    return draw(result)
