"""The ``fidelity`` check: does each synthetic report really describe its ICD-10 code?

Synthetic notes that are private but clinically wrong poison every model trained on them.
For every code the synthetic reports were conditioned on, this check measures how well
they match real reports of that code, four ways:

- **criteria coverage**: the share of reports that mention (affirmed, about the patient,
  not hypothetical) at least ``min_criteria`` of the code's clinical criteria from
  ``rules/icd10/``, next to the same share among the source reports of that code;
- **code agreement**: a TF-IDF + logistic regression classifier trained on the source
  predicts each synthetic report's code; accuracy and macro-F1 against the conditioning
  code, with the classifier's cross-validated accuracy on the source as the ceiling;
- **train-synthetic-test-real (TSTR)**: the same classifier trained on the synthetic
  reports and tested on real ones (the holdout, else the source), next to
  train-real-test-real (TRTR);
- **distribution match**: per code, a two-sample classifier on MiniLM sentence embeddings
  (the AUC of telling synthetic from real; 0.5 = indistinguishable) and the cosine
  between the two centroids.

The conditioning code of a record is its **first** code (``Record.primary_code``); later
codes are comorbidities and are not scored. Records without a code are counted and left
out. Codes that ``rules/icd10/`` does not define are reported (``unknown_codes``), still
scored for agreement, and left out of coverage. Every estimate carries a seeded bootstrap
interval. The check computes; the policy judges.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from auditkit.checks.base import Check, CheckConfig, CheckContext, MetricSpec
from auditkit.corpus import Record
from auditkit.results import CheckResult, Direction, Evidence, Finding, Interval, Metric, Table
from auditkit.results import RecordResult as RR
from auditkit.text import words

HIGHER = Direction.HIGHER_IS_SAFER
LOWER = Direction.LOWER_IS_SAFER
NEUTRAL = Direction.NEUTRAL
#: Code-shaped words ("f32.1", "f321") are hidden from the classifier, so that it judges
#: what a report says, not the code it prints.
_CODE_WORD = re.compile(r"^[a-z][0-9][0-9a-z](?:\.[0-9a-z]{1,4})?$|^[a-z][0-9]{3,6}$")


class FidelityConfig(CheckConfig):
    """Settings of the fidelity check (policy key ``checks.fidelity``)."""

    min_criteria: int = Field(
        default=3, ge=1, description="criteria a report must mention to count as covering"
    )
    cv_folds: int = Field(default=5, ge=2, le=20)
    bootstrap: int = Field(default=1000, ge=100, le=100_000)
    ngram_max: int = Field(default=2, ge=1, le=3, description="word n-grams of the TF-IDF")
    max_features: int = Field(default=5_000, ge=100, description="TF-IDF vocabulary size")
    min_df: int = Field(default=2, ge=1, description="reports an n-gram must occur in")
    regularization: float = Field(default=10.0, gt=0, description="inverse L2 strength C")
    mask_codes: bool = Field(default=True, description="hide code-shaped words from the model")
    min_group_size: int = Field(
        default=5, ge=2, description="reports per side a per-code comparison needs"
    )
    coverage_margin: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="a code is under-covered when the upper 95% bound of synthetic minus "
        "source coverage is below -coverage_margin",
    )
    embeddings: bool = Field(default=True, description="run the embedding distribution test")
    embedding_model: str | None = Field(
        default=None, description="a local sentence-transformers folder (default MiniLM)"
    )
    rules: str | None = Field(default=None, description="folder of ICD-10 definitions")


def _spec(
    direction: Direction, description: str, per_group: bool = False, high: float | None = 1.0
) -> MetricSpec:
    return MetricSpec(direction, description, per_group=per_group, low=0, high=high)


METRICS: dict[str, MetricSpec] = {
    "records_scored": _spec(NEUTRAL, "synthetic reports with a conditioning code", high=None),
    "records_without_code": _spec(NEUTRAL, "synthetic reports without any code", high=None),
    "unknown_codes": _spec(
        LOWER, "distinct synthetic codes that rules/icd10 does not define", high=None
    ),
    "codes_not_in_source": _spec(
        LOWER, "distinct synthetic codes absent from the source (agreement cannot judge)", high=None
    ),
    "agreement_accuracy": _spec(
        HIGHER,
        "share of synthetic reports whose code the source-trained classifier predicts "
        "(per code: that code's share)",
        per_group=True,
    ),
    "agreement_macro_f1": _spec(HIGHER, "macro-F1 of the source-trained classifier on synthetic"),
    "agreement_f1": _spec(HIGHER, "F1 of the source-trained classifier for one code", True),
    "ceiling_accuracy": _spec(NEUTRAL, "cross-validated accuracy of the classifier on the source"),
    "ceiling_macro_f1": _spec(NEUTRAL, "cross-validated macro-F1 of the classifier on the source"),
    "agreement_ratio": _spec(HIGHER, "agreement accuracy / ceiling accuracy", high=None),
    "tstr_macro_f1": _spec(HIGHER, "macro-F1 on real reports of a classifier trained on synthetic"),
    "trtr_macro_f1": _spec(NEUTRAL, "macro-F1 on real reports of a classifier trained on real"),
    "tstr_ratio": _spec(HIGHER, "TSTR macro-F1 / TRTR macro-F1", high=None),
    "coverage": _spec(
        HIGHER, "share of synthetic reports mentioning at least min_criteria criteria", True
    ),
    "coverage_source": _spec(
        NEUTRAL,
        "the same share in the source reports (overall: weighted by the synthetic code mix)",
        True,
    ),
    "coverage_ratio": _spec(HIGHER, "synthetic coverage / source coverage", high=None),
    "undercovered_codes": _spec(
        LOWER, "codes whose coverage is credibly below the source's by coverage_margin", high=None
    ),
    "detection_auc": _spec(
        LOWER, "AUC of a classifier telling synthetic from real embeddings (0.5 = same)", True
    ),
    "detection_auc_reference": _spec(
        NEUTRAL,
        "the same AUC for holdout vs source reports: what real-vs-real looks like at this size",
    ),
    "centroid_cosine": _spec(
        HIGHER, "cosine between the synthetic and real embedding centroids", True
    ),
}

RECORD_FIELDS: dict[str, str] = {
    "criteria": "distinct criteria of the conditioning code the report mentions (affirmed)",
    "criteria_defined": "criteria the conditioning code has in rules/icd10 (0 if unknown)",
    "scored": "1 when the source-trained classifier could judge the report's code",
    "code_agrees": "1 when the classifier predicts the conditioning code",
    "code_probability": "classifier probability of the conditioning code",
    "off_code": "1 when the predicted code disagrees AND fewer than min_criteria criteria",
}


# ---------------------------------------------------------------------------------------
# Per-record work: tokens for the classifier and criteria mentioned, through the executor.


@dataclass(frozen=True)
class Analysed:
    """What the corpus-level measures need to know about one report."""

    tokens: tuple[str, ...]
    criteria: tuple[str, ...]  # ids of the affirmed criteria of its conditioning code


def analyse_batch(
    args: tuple[Sequence[tuple[str, str | None]], str | None, bool],
) -> list[Analysed]:
    """Tokenise reports and find the criteria of their conditioning codes they mention."""
    from auditkit.icd10 import criteria_mentioned, load_codes, load_context

    items, rules, mask = args
    book = load_codes(rules)
    context = load_context(None if rules is None else f"{rules}/context.yaml")
    out = []
    for text, code in items:
        tokens = words(text)
        if mask:
            tokens = [t for t in tokens if not _CODE_WORD.match(t)]
        criteria = criteria_mentioned(text, book.criteria(code), context) if code else ()
        out.append(Analysed(tuple(tokens), criteria))
    return out


# ---------------------------------------------------------------------------------------
# Statistics (numpy, vectorised over bootstrap draws).


def macro_f1(y_true: Any, y_pred: Any, labels: Sequence[int]) -> float:
    """Macro-F1 over ``labels`` (integer class ids), zero for a label never hit."""
    import numpy as np

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for lab in labels:
        tp = np.sum((y_true == lab) & (y_pred == lab))
        denom = np.sum(y_true == lab) + np.sum(y_pred == lab)
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def _bootstrap_f1_acc(
    y_true: Any, y_pred: Any, labels: Sequence[int], draws: int, rng: Any
) -> tuple[Interval, Interval]:
    """Percentile intervals of accuracy and macro-F1 over resampled records."""
    import numpy as np

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n, k = len(y_true), int(max(y_true.max(), y_pred.max())) + 1
    idx = rng.integers(0, n, size=(draws, n))
    t, p = y_true[idx], y_pred[idx]
    acc = (t == p).mean(axis=1)
    lab = np.asarray(labels)
    # Counts per draw and label: true positives, true totals, predicted totals.
    offs = (np.arange(draws) * k)[:, None]
    tp = np.bincount((offs + t)[t == p], minlength=draws * k).reshape(draws, k)[:, lab]
    tt = np.bincount((offs + t).ravel(), minlength=draws * k).reshape(draws, k)[:, lab]
    pp = np.bincount((offs + p).ravel(), minlength=draws * k).reshape(draws, k)[:, lab]
    denom = tt + pp
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0).mean(axis=1)
    return _interval(acc), _interval(f1)


def _interval(values: Any, method: str = "bootstrap") -> Interval:
    import numpy as np

    lo, hi = np.percentile(np.asarray(values, dtype=float), [2.5, 97.5])
    return Interval(low=float(lo), high=float(hi), method=method)


def auc(labels: Any, scores: Any) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half); None for one class."""
    import numpy as np
    from scipy.stats import rankdata

    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _bootstrap_auc(labels: Any, scores: Any, draws: int, rng: Any) -> Interval | None:
    """Stratified bootstrap of the AUC (each class resampled within itself)."""
    import numpy as np

    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) < 2 or len(neg) < 2:
        return None
    draws = min(draws, 400)  # each draw ranks the whole sample
    values = []
    for _ in range(draws):
        p = pos[rng.integers(0, len(pos), len(pos))]
        q = neg[rng.integers(0, len(neg), len(neg))]
        values.append(auc(np.r_[np.ones(len(p)), np.zeros(len(q))], np.r_[p, q]))
    return _interval(values, "stratified bootstrap")


def _binomial_draws(hits: int, n: int, draws: int, rng: Any) -> Any:
    """Bootstrap shares of a 0/1 sample: resampling n values is Binomial(n, hits/n) / n."""
    return rng.binomial(n, hits / n, size=draws) / n


# ---------------------------------------------------------------------------------------
# The classifier.


def _analyzer(ngram_max: int) -> Any:
    def grams(tokens: Sequence[str]) -> list[str]:
        out = list(tokens)
        for n in range(2, ngram_max + 1):
            out += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return out

    return grams


def _fit(docs: Sequence[Sequence[str]], labels: Sequence[str], cfg: FidelityConfig, seed: int):
    """A fitted TF-IDF + logistic-regression pipeline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits

    model = make_pipeline(
        TfidfVectorizer(
            analyzer=_analyzer(cfg.ngram_max),
            sublinear_tf=True,
            max_features=cfg.max_features,
            min_df=cfg.min_df,
            lowercase=False,
        ),
        LogisticRegression(C=cfg.regularization, max_iter=2000, random_state=seed),
    )
    # min_df > 1 can leave a tiny training set without a vocabulary: fall back to 1.
    if len(docs) < 4 * cfg.min_df:
        model.set_params(tfidfvectorizer__min_df=1)
    # One BLAS thread: the fit is small, extra threads only contend on a shared machine,
    # and the result does not depend on how many cores the auditor's machine has.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        model.fit(list(docs), list(labels))
    return model


def _out_of_fold(
    docs: Sequence[Sequence[str]], labels: Sequence[str], cfg: FidelityConfig, seed: int
) -> list[str] | None:
    """Cross-validated predictions (stratified, seeded); None when a fold cannot be formed."""
    from sklearn.model_selection import StratifiedKFold

    counts = Counter(labels)
    folds = min(cfg.cv_folds, max(counts.values()))
    if len(counts) < 2 or folds < 2:
        return None
    pred: list[str] = [""] * len(labels)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes smaller than the fold count
        for train, test in splitter.split(list(range(len(labels))), list(labels)):
            if len({labels[i] for i in train}) < 2:
                return None
            model = _fit([docs[i] for i in train], [labels[i] for i in train], cfg, seed)
            for i, p in zip(test, model.predict([docs[i] for i in test]), strict=True):
                pred[i] = str(p)
    return pred


@dataclass(frozen=True)
class _Scores:
    """Accuracy and macro-F1 of predictions, with bootstrap intervals."""

    accuracy: float
    macro_f1: float
    accuracy_ci: Interval | None
    macro_f1_ci: Interval | None


def _score(truth: Sequence[str], pred: Sequence[str], draws: int, rng: Any) -> _Scores:
    import numpy as np

    names = sorted(set(truth) | set(pred))
    index = {c: i for i, c in enumerate(names)}
    t = np.array([index[c] for c in truth])
    p = np.array([index[c] for c in pred])
    labels = sorted({index[c] for c in truth})
    acc = float((t == p).mean())
    f1 = macro_f1(t, p, labels)
    if len(t) < 2:
        return _Scores(acc, f1, None, None)
    acc_ci, f1_ci = _bootstrap_f1_acc(t, p, labels, draws, rng)
    return _Scores(acc, f1, acc_ci, f1_ci)


# ---------------------------------------------------------------------------------------
# The check.


@dataclass(frozen=True)
class _Side:
    """One corpus, analysed: its coded records, their codes and analyses."""

    records: tuple[Record, ...]
    codes: tuple[str | None, ...]
    analysed: tuple[Analysed, ...]

    def coded(self) -> list[int]:
        return [i for i, c in enumerate(self.codes) if c]


class FidelityCheck(Check):
    """Semantic fidelity of the synthetic reports to their ICD-10 codes."""

    id = "fidelity"
    title = "Fidelity to the ICD-10 code"
    summary = (
        "Does each synthetic report describe the code it was written for? Criteria coverage, "
        "code agreement with a classifier trained on real notes, train-synthetic-test-real, "
        "and how well the synthetic notes blend in with real ones."
    )
    Config = FidelityConfig
    requires = ("synthetic", "source")
    metrics = METRICS
    record_fields = RECORD_FIELDS

    def __init__(self, config: CheckConfig | None = None) -> None:
        super().__init__(config)
        self._models: list[dict[str, Any]] = []

    def models(self) -> list[dict[str, Any]]:
        """The embedding model, when the distribution test ran."""
        return list(self._models)

    @classmethod
    def configure(cls, raw: Mapping[str, Any] | None) -> CheckConfig:
        """Validate the settings and the ICD-10 rules they point to, before anything runs."""
        from auditkit.icd10 import load_codes, load_context

        cfg: FidelityConfig = super().configure(raw)  # type: ignore[assignment]
        load_codes(cfg.rules)
        load_context(None if cfg.rules is None else f"{cfg.rules}/context.yaml")
        return cfg

    def run(self, context: CheckContext) -> CheckResult:
        """Score the synthetic corpus against the source (and the holdout, if given)."""
        from auditkit.icd10 import load_codes, load_context

        cfg: FidelityConfig = self.config  # type: ignore[assignment]
        book = load_codes(cfg.rules)
        load_context(None if cfg.rules is None else f"{cfg.rules}/context.yaml")
        assert context.source is not None
        syn = self._analyse(context, "synthetic", context.synthetic.records)
        if not syn.coded():
            return self.skipped("no synthetic report has an ICD-10 code")
        src = self._analyse(context, "source", context.source.records)
        hold = (
            self._analyse(context, "holdout", context.holdout.records)
            if context.holdout is not None
            else None
        )
        seed = int(context.numpy_rng("fidelity:classifier").integers(2**31 - 1))
        syn_codes = sorted({c for c in syn.codes if c})
        src_codes = {c for c in src.codes if c}
        unknown = [c for c in syn_codes if book.lookup(c) is None]
        metrics: list[Metric] = [
            self._m("records_scored", len(syn.coded())),
            self._m("records_without_code", len(syn.codes) - len(syn.coded())),
            self._m("unknown_codes", len(unknown)),
            self._m("codes_not_in_source", sum(c not in src_codes for c in syn_codes)),
        ]
        tables: dict[str, Table] = {}

        agreement = self._agreement(context, syn, src, cfg, seed, metrics, tables)
        self._tstr(context, syn, src, hold, cfg, seed, metrics)
        coverage = self._coverage(context, syn, src, book, cfg, metrics, tables)
        if cfg.embeddings:
            self._distribution(context, syn, src, hold, cfg, metrics)
        tables["unknown_codes"] = Table(
            description="codes of the synthetic reports that rules/icd10 does not define",
            row_label="code",
            column_label="reports",
            rows=tuple(unknown),
            columns=("synthetic", "source"),
            values=tuple(
                (sum(c == u for c in syn.codes), sum(c == u for c in src.codes)) for u in unknown
            ),
        )
        records = self._records(syn, book, agreement, cfg)
        evidence = self._evidence(metrics, unknown, coverage, records)
        return CheckResult(
            check=self.id,
            status="ok",
            config=cfg.model_dump(mode="json"),
            metrics=tuple(metrics),
            records=records,
            evidence=tuple(evidence),
            tables=tables,
        )

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def _m(name: str, value: float | int | None, group: str | None = None, **kw: Any) -> Metric:
        spec = METRICS[name]
        return Metric(
            name=name,
            value=value,
            direction=spec.direction,
            description=spec.description,
            group=group,
            low=spec.low,
            high=spec.high,
            **kw,
        )

    def _analyse(self, context: CheckContext, role: str, records: Sequence[Record]) -> _Side:
        cfg: FidelityConfig = self.config  # type: ignore[assignment]
        size = 64
        batches = [records[i : i + size] for i in range(0, len(records), size)]
        jobs = [([(r.text, r.primary_code) for r in b], cfg.rules, cfg.mask_codes) for b in batches]
        out: list[Analysed] = []
        with context.progress.bar(f"fidelity: reading {role}", len(records)) as bar:
            for batch, result in zip(
                batches, context.executor.map(analyse_batch, jobs), strict=True
            ):
                out.extend(result)
                bar.update(len(batch))
        return _Side(tuple(records), tuple(r.primary_code for r in records), tuple(out))

    def _agreement(
        self,
        context: CheckContext,
        syn: _Side,
        src: _Side,
        cfg: FidelityConfig,
        seed: int,
        metrics: list[Metric],
        tables: dict[str, Table],
    ) -> dict[int, tuple[str, float, bool]]:
        """Classifier trained on the source predicts each synthetic report's code.

        Returns, per synthetic index the classifier could judge: (predicted code,
        probability of the conditioning code, agrees).
        """
        rng = context.numpy_rng("fidelity:agreement")
        train = src.coded()
        labels = [src.codes[i] for i in train]
        if len(set(labels)) < 2:
            return {}
        docs = [src.analysed[i].tokens for i in train]
        oof = _out_of_fold(docs, labels, cfg, seed)  # type: ignore[arg-type]
        if oof is not None:
            ceiling = _score(labels, oof, cfg.bootstrap, rng)  # type: ignore[arg-type]
            metrics.append(
                self._m("ceiling_accuracy", ceiling.accuracy, interval=ceiling.accuracy_ci)
            )
            metrics.append(
                self._m("ceiling_macro_f1", ceiling.macro_f1, interval=ceiling.macro_f1_ci)
            )
        model = _fit(docs, labels, cfg, seed)  # type: ignore[arg-type]
        classes = [str(c) for c in model.classes_]
        judged = [i for i in syn.coded() if syn.codes[i] in classes]
        if not judged:
            return {}
        proba = model.predict_proba([syn.analysed[i].tokens for i in judged])
        col = {c: j for j, c in enumerate(classes)}
        out: dict[int, tuple[str, float, bool]] = {}
        truth, pred = [], []
        for row, i in enumerate(judged):
            p = classes[int(proba[row].argmax())]
            code = syn.codes[i]
            assert code is not None
            out[i] = (p, float(proba[row][col[code]]), p == code)
            truth.append(code)
            pred.append(p)
        scores = _score(truth, pred, cfg.bootstrap, rng)
        metrics.append(self._m("agreement_accuracy", scores.accuracy, interval=scores.accuracy_ci))
        metrics.append(self._m("agreement_macro_f1", scores.macro_f1, interval=scores.macro_f1_ci))
        if oof is not None and ceiling.accuracy > 0:
            metrics.append(self._m("agreement_ratio", scores.accuracy / ceiling.accuracy))
        for code in sorted(set(truth)):
            n = sum(t == code for t in truth)
            hit = sum(t == code and p == code for t, p in zip(truth, pred, strict=True))
            predicted = sum(p == code for p in pred)
            draws = _binomial_draws(hit, n, cfg.bootstrap, rng)
            metrics.append(self._m("agreement_accuracy", hit / n, code, interval=_interval(draws)))
            metrics.append(self._m("agreement_f1", 2 * hit / (n + predicted), code))
        names = sorted(set(truth) | set(pred))
        counts = Counter(zip(truth, pred, strict=True))
        rows = sorted(set(truth))
        tables["confusion"] = Table(
            description="synthetic reports by conditioning code (rows) and the code the "
            "source-trained classifier predicts (columns)",
            row_label="conditioning code",
            column_label="predicted code",
            rows=tuple(rows),
            columns=tuple(names),
            values=tuple(tuple(counts.get((r, c), 0) for c in names) for r in rows),
        )
        return out

    def _tstr(
        self,
        context: CheckContext,
        syn: _Side,
        src: _Side,
        hold: _Side | None,
        cfg: FidelityConfig,
        seed: int,
        metrics: list[Metric],
    ) -> None:
        """Train on synthetic, test on real; next to train on real, test on real."""
        rng = context.numpy_rng("fidelity:tstr")
        syn_idx = syn.coded()
        syn_labels = [syn.codes[i] for i in syn_idx]
        if len(set(syn_labels)) < 2:
            return
        src_idx = src.coded()
        src_docs = [src.analysed[i].tokens for i in src_idx]
        src_labels = [src.codes[i] for i in src_idx]
        test = hold if hold is not None and hold.coded() else None
        if test is not None:
            test_idx = test.coded()
            test_docs = [test.analysed[i].tokens for i in test_idx]
            truth = [test.codes[i] for i in test_idx]
            trtr_pred = (
                list(_fit(src_docs, src_labels, cfg, seed).predict(test_docs))  # type: ignore[arg-type]
                if len(set(src_labels)) >= 2
                else None
            )
        else:
            test_docs, truth = src_docs, src_labels
            trtr_pred = _out_of_fold(src_docs, src_labels, cfg, seed)  # type: ignore[arg-type]
        if not truth:
            return
        model = _fit([syn.analysed[i].tokens for i in syn_idx], syn_labels, cfg, seed)  # type: ignore[arg-type]
        tstr = _score(truth, [str(p) for p in model.predict(test_docs)], cfg.bootstrap, rng)  # type: ignore[arg-type]
        metrics.append(self._m("tstr_macro_f1", tstr.macro_f1, interval=tstr.macro_f1_ci))
        if trtr_pred is not None:
            trtr = _score(truth, [str(p) for p in trtr_pred], cfg.bootstrap, rng)  # type: ignore[arg-type]
            metrics.append(self._m("trtr_macro_f1", trtr.macro_f1, interval=trtr.macro_f1_ci))
            if trtr.macro_f1 > 0:
                metrics.append(self._m("tstr_ratio", tstr.macro_f1 / trtr.macro_f1))

    def _coverage(
        self,
        context: CheckContext,
        syn: _Side,
        src: _Side,
        book: Any,
        cfg: FidelityConfig,
        metrics: list[Metric],
        tables: dict[str, Table],
    ) -> dict[str, tuple[float, float | None, bool]]:
        """Per code: share of reports with >= min_criteria criteria, synthetic vs source."""
        import numpy as np

        rng = context.numpy_rng("fidelity:coverage")
        draws = cfg.bootstrap

        def hits_by_code(side: _Side) -> dict[str, list[int]]:
            out: dict[str, list[int]] = {}
            for i in side.coded():
                code = side.codes[i]
                assert code is not None
                if book.criteria(code):
                    out.setdefault(code, []).append(len(side.analysed[i].criteria))
            return out

        syn_hits, src_hits = hits_by_code(syn), hits_by_code(src)
        n_min = cfg.min_criteria
        per_code: dict[str, tuple[float, float | None, bool]] = {}
        rows, values, crit_rows, crit_values = [], [], [], []
        total_syn = total_syn_hit = 0
        expected_num = 0.0
        matched_n = matched_hit = 0
        syn_boot = np.zeros(draws)
        ratio_num = np.zeros(draws)
        ratio_den = np.zeros(draws)
        undercovered = 0
        for code in sorted(syn_hits):
            counts = syn_hits[code]
            n, hit = len(counts), sum(c >= n_min for c in counts)
            share = hit / n
            s_draws = _binomial_draws(hit, n, draws, rng)
            syn_boot += s_draws * n
            total_syn += n
            total_syn_hit += hit
            src_counts = src_hits.get(code, [])
            src_share = None
            src_ci = None
            low = False
            if src_counts:
                m, mhit = len(src_counts), sum(c >= n_min for c in src_counts)
                src_share = mhit / m
                r_draws = _binomial_draws(mhit, m, draws, rng)
                src_ci = _interval(r_draws)
                expected_num += n * src_share
                matched_n += n
                matched_hit += hit
                ratio_num += s_draws * n
                ratio_den += r_draws * n
                if n >= cfg.min_group_size and m >= cfg.min_group_size:
                    low = float(np.percentile(s_draws - r_draws, 97.5)) < -cfg.coverage_margin
                    undercovered += low
            per_code[code] = (share, src_share, low)
            metrics.append(self._m("coverage", share, code, interval=_interval(s_draws)))
            metrics.append(self._m("coverage_source", src_share, code, interval=src_ci))
            rows.append(code)
            values.append((share, src_share, n, len(src_counts), len(book.criteria(code))))
            for criterion in book.criteria(code):
                crit_rows.append(f"{code}:{criterion.id}")
                crit_values.append(
                    (
                        _share_with(syn.analysed, syn.codes, code, criterion.id),
                        _share_with(src.analysed, src.codes, code, criterion.id),
                    )
                )
        if total_syn:
            metrics.append(
                self._m(
                    "coverage", total_syn_hit / total_syn, interval=_interval(syn_boot / total_syn)
                )
            )
        if matched_n:
            expected = expected_num / matched_n
            metrics.append(self._m("coverage_source", expected))
            if expected > 0:
                ok = ratio_den > 0
                metrics.append(
                    self._m(
                        "coverage_ratio",
                        (matched_hit / matched_n) / expected,
                        interval=_interval(ratio_num[ok] / ratio_den[ok]) if ok.any() else None,
                    )
                )
        metrics.append(self._m("undercovered_codes", undercovered))
        tables["coverage"] = Table(
            description=f"share of reports mentioning at least {n_min} criteria of their code",
            row_label="code",
            column_label="measure",
            rows=tuple(rows),
            columns=("synthetic", "source", "synthetic_reports", "source_reports", "criteria"),
            values=tuple(values),
        )
        tables["criteria"] = Table(
            description="share of reports of the code that mention each criterion (affirmed)",
            row_label="code:criterion",
            column_label="corpus",
            rows=tuple(crit_rows),
            columns=("synthetic", "source"),
            values=tuple(crit_values),
        )
        return per_code

    def _distribution(
        self,
        context: CheckContext,
        syn: _Side,
        src: _Side,
        hold: _Side | None,
        cfg: FidelityConfig,
        metrics: list[Metric],
    ) -> None:
        """Two-sample classifier AUC and centroid cosine on sentence embeddings.

        With a holdout, the same test of holdout against source gives the reference: the
        AUC two samples of real notes reach at these sizes (ideally about 0.5).
        """
        import numpy as np

        from auditkit import embeddings

        self._models = [embeddings.model_description(cfg.embedding_model)]
        sides = [syn, src] + ([hold] if hold is not None else [])
        vectors = []
        with context.progress.bar("fidelity: embeddings", len(sides)) as bar:
            for side in sides:
                vectors.append(
                    embeddings.embed([r.text for r in side.records], cfg.embedding_model)
                )
                bar.update(1)
        syn_vec, src_vec = vectors[0], vectors[1]
        rng = context.numpy_rng("fidelity:detection")
        seed = int(context.numpy_rng("fidelity:detection-folds").integers(2**31 - 1))
        overall = _detection(syn_vec, src_vec, cfg, seed, rng)
        if overall is not None:
            metrics.append(self._m("detection_auc", overall[0], interval=overall[1]))
        if hold is not None:
            reference = _detection(vectors[2], src_vec, cfg, seed, rng)
            if reference is not None:
                metrics.append(
                    self._m("detection_auc_reference", reference[0], interval=reference[1])
                )
        metrics.append(self._m("centroid_cosine", _centroid_cosine(syn_vec, src_vec)))
        syn_codes, src_codes = np.array(syn.codes, dtype=object), np.array(src.codes, dtype=object)
        for code in sorted({c for c in syn.codes if c}):
            a, b = syn_vec[syn_codes == code], src_vec[src_codes == code]
            if len(a) < cfg.min_group_size or len(b) < cfg.min_group_size:
                continue
            found = _detection(a, b, cfg, seed, rng)
            if found is not None:
                metrics.append(self._m("detection_auc", found[0], code, interval=found[1]))
            metrics.append(self._m("centroid_cosine", _centroid_cosine(a, b), code))

    def _records(
        self,
        syn: _Side,
        book: Any,
        agreement: Mapping[int, tuple[str, float, bool]],
        cfg: FidelityConfig,
    ) -> dict[str, RR]:
        out = {}
        for i, rec in enumerate(syn.records):
            code = syn.codes[i]
            criteria = book.criteria(code) if code else ()
            found = syn.analysed[i].criteria
            judged = agreement.get(i)
            findings = []
            if judged is not None:
                pred, prob, _ = judged
                findings.append(
                    Finding(
                        kind="predicted_code",
                        message=f"classifier trained on the source predicts {pred} for a "
                        f"report conditioned on {code} (p({code}) = {prob:.2f})",
                        rule="tfidf-logreg",
                        score=prob,
                    )
                )
            if criteria:
                labels = [c.label for c in criteria if c.id in found]
                findings.append(
                    Finding(
                        kind="criteria",
                        message=f"{len(found)} of {len(criteria)} {code} criteria mentioned"
                        + (f": {'; '.join(labels)}" if labels else ""),
                        rule="rules/icd10 + ConText",
                        score=float(len(found)),
                    )
                )
            disagrees = judged is not None and not judged[2]
            off = disagrees and bool(criteria) and len(found) < cfg.min_criteria
            out[rec.id] = RR(
                values={
                    "criteria": len(found),
                    "criteria_defined": len(criteria),
                    "scored": int(judged is not None),
                    "code_agrees": int(judged is not None and judged[2]),
                    "code_probability": judged[1] if judged is not None else 0.0,
                    "off_code": int(off),
                },
                findings=tuple(findings),
            )
        return out

    def _evidence(
        self,
        metrics: Sequence[Metric],
        unknown: Sequence[str],
        coverage: Mapping[str, tuple[float, float | None, bool]],
        records: Mapping[str, RR],
    ) -> list[Evidence]:
        cfg: FidelityConfig = self.config  # type: ignore[assignment]
        out = []
        if unknown:
            out.append(
                Evidence(
                    title=f"{len(unknown)} code(s) not defined in rules/icd10",
                    detail=", ".join(unknown) + ": agreement still scored, coverage not",
                    rule="rules/icd10",
                )
            )
        for code, (share, src_share, low) in sorted(coverage.items()):
            if low:
                out.append(
                    Evidence(
                        title=f"Under-covered criteria in {code}",
                        detail=f"{share:.0%} of synthetic reports mention at least "
                        f"{cfg.min_criteria} criteria, against {src_share:.0%} of real ones",
                        rule="coverage",
                        score=share,
                    )
                )
        per_code = sorted(
            (m.value, m.group)
            for m in metrics
            if m.name == "agreement_accuracy" and m.group is not None and m.value is not None
        )
        for value, code in per_code[:5]:
            if value < 0.5:
                out.append(
                    Evidence(
                        title=f"Reports of {code} read like another code",
                        detail=f"the source-trained classifier recognises {value:.0%} of them",
                        rule="tfidf-logreg",
                        score=float(value),
                    )
                )
        off = [rid for rid, r in records.items() if r.values.get("off_code")]
        for rid in off[:10]:
            out.append(
                Evidence(
                    title="Off-code report",
                    detail="; ".join(f.message for f in records[rid].findings),
                    record_id=rid,
                    rule="off_code",
                )
            )
        return out


def _share_with(
    analysed: Sequence[Analysed], codes: Sequence[str | None], code: str, criterion: str
) -> float | None:
    items = [a for a, c in zip(analysed, codes, strict=True) if c == code]
    return sum(criterion in a.criteria for a in items) / len(items) if items else None


def _centroid_cosine(a: Any, b: Any) -> float:
    import numpy as np

    ca, cb = a.mean(axis=0), b.mean(axis=0)
    denom = float(np.linalg.norm(ca) * np.linalg.norm(cb))
    return float(ca @ cb / denom) if denom else 0.0


def _detection(
    syn_vec: Any, real_vec: Any, cfg: FidelityConfig, seed: int, rng: Any
) -> tuple[float, Interval | None] | None:
    """Out-of-fold AUC of logistic regression telling synthetic (1) from real (0)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    x = np.vstack([syn_vec, real_vec])
    y = np.r_[np.ones(len(syn_vec), dtype=int), np.zeros(len(real_vec), dtype=int)]
    folds = min(cfg.cv_folds, len(syn_vec), len(real_vec))
    if folds < 2:
        return None
    scores = np.zeros(len(y))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y):
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
        model.fit(x[train], y[train])
        scores[test] = model.decision_function(x[test])
    value = auc(y, scores)
    if value is None:
        return None
    return value, _bootstrap_auc(y, scores, cfg.bootstrap, rng)


def fidelity_summary(result: CheckResult) -> dict[str, Any]:
    """The short JSON form of a fidelity result (what ``auditkit fidelity --json`` prints).

    ``{"agreement": {"accuracy", "macro_f1", "ceiling_accuracy", "per_code": {code:
    {"accuracy", "f1"}}}, "tstr": {"macro_f1", "trtr_macro_f1"}, "coverage": {code:
    {"synthetic", "source"}}, "detection_auc", "unknown_codes": [...]}``; a value that
    could not be computed is null.
    """

    def value(key: str) -> Any:
        m = result.metric(key)
        return m.value if m is not None else None

    codes = sorted({m.group for m in result.metrics if m.name == "agreement_accuracy" and m.group})
    coverage_codes = sorted({m.group for m in result.metrics if m.name == "coverage" and m.group})
    unknown = result.tables.get("unknown_codes")
    return {
        "agreement": {
            "accuracy": value("agreement_accuracy"),
            "macro_f1": value("agreement_macro_f1"),
            "ceiling_accuracy": value("ceiling_accuracy"),
            "per_code": {
                c: {
                    "accuracy": value(f"agreement_accuracy[{c}]"),
                    "f1": value(f"agreement_f1[{c}]"),
                }
                for c in codes
            },
        },
        "tstr": {"macro_f1": value("tstr_macro_f1"), "trtr_macro_f1": value("trtr_macro_f1")},
        "coverage": {
            c: {"synthetic": value(f"coverage[{c}]"), "source": value(f"coverage_source[{c}]")}
            for c in coverage_codes
        },
        "detection_auc": value("detection_auc"),
        "unknown_codes": list(unknown.rows) if unknown is not None else [],
    }
