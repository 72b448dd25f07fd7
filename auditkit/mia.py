"""Membership-inference statistics: attack scores, ROC AUC, the blind baseline, extraction.

Attack scores, ROC AUC with bootstrap intervals, the model-free blind baseline and the
extraction comparison.

Pure functions of numbers and texts; nothing here loads a model, reads a policy or
renders. The membership check (``auditkit/checks/membership.py``) feeds them the
generator's token scores.

Every attack score is oriented so that **higher means "more likely a member"**:

=============  =====================================================================
attack         member score
=============  =====================================================================
loss           minus the mean token negative log-likelihood (Yeom et al., 2018)
zlib           minus (model code length / zlib code length): sum of token NLL in bits
               over 8 x the zlib-compressed byte length (Carlini et al., 2021)
min_k          mean log-probability of the k% least likely tokens (Shi et al., 2024)
min_k_pp       mean of the k% lowest (log p(x_t) - mu_t) / sigma_t, where mu_t and
               sigma_t are the mean and standard deviation of log p(z) under the
               next-token distribution (Min-K%++, Zhang et al., 2024)
reference      minus (target model loss / reference model loss) (Carlini et al., 2021)
=============  =====================================================================
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Attack ids in report order.
ATTACKS = ("loss", "zlib", "min_k", "min_k_pp", "reference")


# ---------------------------------------------------------------------------------------
# Scores of one record.


def k_count(n_tokens: int, k: float) -> int:
    """How many tokens Min-K% averages: ``floor(k * n)``, at least one."""
    return max(1, math.floor(k * n_tokens))


def loss_score(logprobs: Sequence[float]) -> float:
    """Mean negative log-likelihood per token (nats)."""
    return -float(np.mean(logprobs))


def zlib_ratio(logprobs: Sequence[float], text: str) -> float:
    """The model's code length of the text over zlib's, both in bits."""
    model_bits = -float(np.sum(logprobs)) / math.log(2)
    zlib_bits = 8 * len(zlib.compress(text.encode("utf-8"), 9))
    return model_bits / zlib_bits


def min_k_score(logprobs: Sequence[float], k: float) -> float:
    """Mean of the ``k`` fraction lowest token log-probabilities."""
    lp = np.sort(np.asarray(logprobs, dtype=float))
    return float(lp[: k_count(len(lp), k)].mean())


def min_k_pp_score(
    logprobs: Sequence[float], mean: Sequence[float], std: Sequence[float], k: float
) -> float:
    """Mean of the ``k`` fraction lowest standardised token log-probabilities (Min-K%++).

    A token whose next-token distribution has zero spread (one certain token) carries no
    information and is standardised with a tiny floor instead of dividing by zero.
    """
    lp, mu, sd = (np.asarray(x, dtype=float) for x in (logprobs, mean, std))
    z = np.sort((lp - mu) / np.maximum(sd, 1e-6))
    return float(z[: k_count(len(z), k)].mean())


def member_scores(
    text: str,
    logprobs: Sequence[float],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    k: float,
    reference_logprobs: Sequence[float] | None = None,
) -> dict[str, float]:
    """Every attack's member score for one text (higher = more member-like)."""
    out = {
        "loss": -loss_score(logprobs),
        "zlib": -zlib_ratio(logprobs, text),
        "min_k": min_k_score(logprobs, k),
    }
    if mean is not None and std is not None:
        out["min_k_pp"] = min_k_pp_score(logprobs, mean, std, k)
    if reference_logprobs is not None and len(reference_logprobs):
        ref = loss_score(reference_logprobs)
        out["reference"] = -(loss_score(logprobs) / max(ref, 1e-9))
    return out


# ---------------------------------------------------------------------------------------
# ROC statistics.


def auc(members: Any, nonmembers: Any) -> float:
    """ROC AUC = P(member score > non-member score) + 0.5 P(tie) (Mann-Whitney U)."""
    from scipy.stats import rankdata

    m, n = np.asarray(members, dtype=float), np.asarray(nonmembers, dtype=float)
    ranks = rankdata(np.concatenate([m, n]))
    u = ranks[: len(m)].sum() - len(m) * (len(m) + 1) / 2
    return float(u / (len(m) * len(n)))


def roc_points(members: Any, nonmembers: Any) -> tuple[np.ndarray, np.ndarray]:
    """The full ROC curve (FPR, TPR), one point per distinct threshold, from (0,0) to (1,1)."""
    m, n = np.asarray(members, dtype=float), np.asarray(nonmembers, dtype=float)
    thresholds = np.unique(np.concatenate([m, n]))[::-1]
    m_sorted, n_sorted = np.sort(m), np.sort(n)
    # score >= threshold counts as "member"
    tpr = (len(m) - np.searchsorted(m_sorted, thresholds, side="left")) / len(m)
    fpr = (len(n) - np.searchsorted(n_sorted, thresholds, side="left")) / len(n)
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


def tpr_at_fpr(members: Any, nonmembers: Any, target: float) -> float:
    """Highest TPR among thresholds whose FPR is at most ``target`` (Carlini et al., 2022)."""
    fpr, tpr = roc_points(members, nonmembers)
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max())


def downsample_curve(fpr: np.ndarray, tpr: np.ndarray, points: int) -> list[tuple[float, float]]:
    """At most ``points`` ROC points, evenly spaced in FPR, keeping both ends (step-exact)."""
    if len(fpr) <= points:
        return [(float(a), float(b)) for a, b in zip(fpr, tpr, strict=True)]
    grid = np.linspace(0.0, 1.0, points - 1)
    out = [(0.0, 0.0)]  # every ROC curve starts at (0, 0): nothing is called a member
    for g in grid:
        i = int(np.searchsorted(fpr, g, side="right") - 1)  # last point with fpr <= g
        point = (float(g), float(tpr[max(i, 0)]))
        if point != out[-1]:
            out.append(point)
    return out


@dataclass(frozen=True)
class AttackStats:
    """One attack's ROC summary."""

    auc: float
    ci: tuple[float, float]
    wide_ci: tuple[float, float]
    tpr_at_1fpr: float
    tpr_at_5fpr: float
    curve: list[tuple[float, float]]


def bootstrap_aucs(
    scores: dict[str, tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, draws: int
) -> dict[str, np.ndarray]:
    """AUC of every attack on the same stratified resamples (members and non-members apart).

    Sharing the resamples keeps the attacks' intervals comparable; the worst case over
    attacks is then judged with Bonferroni-widened intervals.
    """
    from scipy.stats import rankdata

    names = list(scores)
    n_m = len(scores[names[0]][0])
    n_n = len(scores[names[0]][1])
    out = {name: np.empty(draws) for name in names}
    for d in range(draws):
        im = rng.integers(0, n_m, n_m)
        inn = rng.integers(0, n_n, n_n)
        for name in names:
            m, n = scores[name]
            ranks = rankdata(np.concatenate([m[im], n[inn]]))
            u = ranks[:n_m].sum() - n_m * (n_m + 1) / 2
            out[name][d] = u / (n_m * n_n)
    return out


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """Two-sided percentile interval at ``level``."""
    alpha = 1 - level
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def attack_stats(
    scores: dict[str, tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    draws: int,
    level: float = 0.95,
    curve_points: int = 50,
) -> dict[str, AttackStats]:
    """AUC, its bootstrap interval (plain and Bonferroni-widened), TPR at 1% and 5% FPR."""
    boots = bootstrap_aucs(scores, rng, draws)
    wide_level = 1 - (1 - level) / len(scores)
    out = {}
    for name, (m, n) in scores.items():
        fpr, tpr = roc_points(m, n)
        out[name] = AttackStats(
            auc=auc(m, n),
            ci=percentile_interval(boots[name], level),
            wide_ci=percentile_interval(boots[name], wide_level),
            tpr_at_1fpr=tpr_at_fpr(m, n, 0.01),
            tpr_at_5fpr=tpr_at_fpr(m, n, 0.05),
            curve=downsample_curve(fpr, tpr, curve_points),
        )
    return out


def worst_case(stats: dict[str, AttackStats]) -> tuple[str, float, tuple[float, float]]:
    """The attack with the highest AUC, and the simultaneous interval of the maximum.

    With Bonferroni-widened intervals all attacks are covered together with the nominal
    probability, so ``[max of lower bounds, max of upper bounds]`` covers the largest true
    AUC: membership is demonstrated when that lower bound is high, and its absence when
    that upper bound is low.
    """
    name = max(stats, key=lambda a: (stats[a].auc, a))
    lo = max(s.wide_ci[0] for s in stats.values())
    hi = max(s.wide_ci[1] for s in stats.values())
    return name, stats[name].auc, (lo, hi)


def records_needed(auc_value: float, upper: float, total: int, target: float) -> int | None:
    """Records needed for the upper bound to fall below ``target`` (same member ratio).

    Assumes the interval narrows as 1/sqrt(n) around the same estimate.

    None when the bound is already below the target, or when the estimate itself is not
    (then no sample size demonstrates absence).
    """
    if upper < target or auc_value >= target:
        return None
    half_now = upper - auc_value
    half_needed = target - auc_value
    return math.ceil(round(total * (half_now / half_needed) ** 2, 6))


# ---------------------------------------------------------------------------------------
# The blind baseline.


def blind_baseline(
    members: Sequence[str], nonmembers: Sequence[str], seed: int, folds: int = 5
) -> np.ndarray:
    """Out-of-fold P(member) of a model-free classifier, one score per text, members first.

    TF-IDF word 1-2 grams + logistic regression, stratified k-fold with a seeded shuffle.
    The TF-IDF vocabulary and weights are fitted once on all texts, without labels; only
    the classifier sees the labels, and only of its training folds.

    If this classifier tells members from non-members, the two sets differ in
    distribution and any attack AUC partly measures that difference, not memorisation.
    """
    x, labels = _blind_features(members, nonmembers)
    return _blind_scores(x, labels, seed, folds)


@dataclass(frozen=True)
class BlindNull:
    """The blind baseline's AUC under labels shuffled within strata (a permutation null)."""

    aucs: tuple[float, ...]

    @property
    def mean(self) -> float:
        """Mean AUC over the shuffles."""
        return float(np.mean(self.aucs))

    def p_value(self, observed: float) -> float:
        """One-sided permutation p-value of ``observed`` (Phipson & Smyth's +1 form)."""
        above = sum(a >= observed for a in self.aucs)
        return (1 + above) / (1 + len(self.aucs))


def blind_null(
    members: Sequence[str],
    nonmembers: Sequence[str],
    strata: Sequence[str | None],
    seed: int,
    folds: int = 5,
    permutations: int = 29,
) -> BlindNull:
    """The blind baseline's AUC when the member labels are shuffled within each stratum.

    ``strata`` (one per text, members first) are the records' primary codes. A holdout
    drawn with the same share of every code as the source (a stratified split) makes a
    cross-validated classifier score held-out records *against* their label: removing a
    member from the training folds lowers its code's member share, removing a non-member
    raises it. On such splits the blind AUC falls well below 0.5 with no difference in
    distribution. Shuffling labels within codes keeps that structure, so the null shows
    what the blind AUC is when members and non-members are exchangeable; the blind AUC is
    read against it, not against 0.5.
    """
    x, labels = _blind_features(members, nonmembers)
    return _blind_null(x, labels, strata, seed, folds, permutations)


def blind_test(
    members: Sequence[str],
    nonmembers: Sequence[str],
    strata: Sequence[str | None],
    seed: int,
    folds: int = 5,
    permutations: int = 29,
) -> tuple[np.ndarray, BlindNull]:
    """:func:`blind_baseline`'s scores and :func:`blind_null`'s null from one TF-IDF fit."""
    x, labels = _blind_features(members, nonmembers)
    return _blind_scores(x, labels, seed, folds), _blind_null(
        x, labels, strata, seed, folds, permutations
    )


def _blind_null(
    x: Any,
    labels: np.ndarray,
    strata: Sequence[str | None],
    seed: int,
    folds: int,
    permutations: int,
) -> BlindNull:
    rng = np.random.default_rng([seed, 1])
    groups: dict[str | None, list[int]] = {}
    for i, s in enumerate(strata):
        groups.setdefault(s, []).append(i)
    aucs = []
    for k in range(permutations):
        shuffled = labels.copy()
        for idx in groups.values():
            shuffled[idx] = rng.permutation(labels[idx])
        scores = _blind_scores(x, shuffled, seed + k + 1, folds)
        aucs.append(auc(scores[shuffled == 1], scores[shuffled == 0]))
    return BlindNull(tuple(aucs))


def _blind_features(members: Sequence[str], nonmembers: Sequence[str]) -> tuple[Any, np.ndarray]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = list(members) + list(nonmembers)
    labels = np.array([1] * len(members) + [0] * len(nonmembers))
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50000)
    return vec.fit_transform(texts), labels


def _blind_scores(x: Any, labels: np.ndarray, seed: int, folds: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels, minlength=2)
    folds = max(2, min(folds, int(counts.min())))
    out = np.zeros(len(labels))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed % 2**32)
    for train, test in split.split(np.zeros(len(labels)), labels):
        clf = LogisticRegression(
            C=1.0, class_weight="balanced", solver="liblinear", random_state=seed % 2**32
        )
        clf.fit(x[train], labels[train])
        out[test] = clf.predict_proba(x[test])[:, 1]
    return out


# ---------------------------------------------------------------------------------------
# Extraction.


@dataclass(frozen=True)
class ExtractionCase:
    """One record cut into a prompt and the true continuation (character offsets)."""

    record_id: str
    prompt_end: int
    continuation_end: int
    token_ends: tuple[int, ...]  # end offset of each continuation token


def extraction_case(
    record_id: str, offsets: Sequence[tuple[int, int]], prefix: int, continuation: int
) -> ExtractionCase | None:
    """Cut a record after ``prefix`` scored tokens; None if it is too short."""
    if len(offsets) < prefix + continuation:
        return None
    ends = tuple(offsets[prefix + j][1] for j in range(continuation))
    return ExtractionCase(record_id, offsets[prefix - 1][1], ends[-1], ends)


def matched_tokens(case: ExtractionCase, text: str, generated: str) -> int:
    """How many continuation tokens the generation reproduces exactly, from the start."""
    truth = text[case.prompt_end : case.continuation_end]
    same = 0
    for a, b in zip(truth, generated, strict=False):
        if a != b:
            break
        same += 1
    limit = case.prompt_end + same
    return sum(1 for end in case.token_ends if end <= limit)
