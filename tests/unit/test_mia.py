"""Membership-inference statistics against hand-computed values."""

import itertools
import math
import zlib

import numpy as np
import pytest

from auditkit import mia


def test_loss_is_mean_negative_log_likelihood():
    assert mia.loss_score([-1.0, -2.0, -3.0, -4.0, -5.0]) == pytest.approx(3.0)


def test_zlib_ratio_is_model_bits_over_zlib_bits():
    text = "abc abc abc abc"
    logprobs = [-math.log(2)] * 10  # 1 bit per token: 10 bits
    expected = 10 / (8 * len(zlib.compress(text.encode(), 9)))
    assert mia.zlib_ratio(logprobs, text) == pytest.approx(expected)


def test_min_k_averages_the_lowest_fraction():
    lp = [-0.1, -5.0, -0.2, -3.0, -0.3, -0.4, -0.5, -0.6, -0.7, -0.8]
    # k = 20% of 10 tokens = 2 lowest: -5 and -3
    assert mia.min_k_score(lp, 0.2) == pytest.approx(-4.0)
    # fewer than 5 tokens still averages one token
    assert mia.min_k_score([-1.0, -2.0], 0.2) == pytest.approx(-2.0)
    assert mia.k_count(4, 0.2) == 1 and mia.k_count(10, 0.2) == 2 and mia.k_count(14, 0.2) == 2


def test_min_k_pp_standardises_by_the_next_token_distribution():
    lp = [-1.0, -2.0, -4.0, -1.5, -0.5]
    mean = [-1.5, -1.0, -2.0, -1.5, -1.0]
    std = [0.5, 1.0, 1.0, 0.25, 0.5]
    # z = [1, -1, -2, 0, 1]; k = 20% of 5 = 1 lowest: -2
    assert mia.min_k_pp_score(lp, mean, std, 0.2) == pytest.approx(-2.0)
    # 40%: two lowest -2, -1
    assert mia.min_k_pp_score(lp, mean, std, 0.4) == pytest.approx(-1.5)


def test_member_scores_are_oriented_higher_is_member():
    s = mia.member_scores("x y z", [-1.0, -1.0], [-1.0, -1.0], [1.0, 1.0], 0.2, [-2.0, -2.0])
    assert s["loss"] == pytest.approx(-1.0)
    assert s["reference"] == pytest.approx(-0.5)  # target loss 1 / reference loss 2
    assert set(s) == {"loss", "zlib", "min_k", "min_k_pp", "reference"}
    no_dist = mia.member_scores("x", [-1.0], None, None, 0.2)
    assert set(no_dist) == {"loss", "zlib", "min_k"}


def test_auc_counts_pairs_and_ties():
    # pairs (m, n): 3>1, 3>2, 2>1, 2=2 (half) -> (3 + 0.5) / 4
    assert mia.auc([3, 2], [1, 2]) == pytest.approx(0.875)
    assert mia.auc([1, 2], [3, 4]) == 0.0
    assert mia.auc([5, 5], [5, 5]) == 0.5


def test_tpr_at_fpr_and_roc_points():
    members = [0.9, 0.8, 0.7, 0.2]
    nonmembers = [0.75, 0.3, 0.05, 0.01]
    fpr, tpr = mia.roc_points(members, nonmembers)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    # no false positive allowed: thresholds above 0.75 catch 0.9 and 0.8
    assert mia.tpr_at_fpr(members, nonmembers, 0.01) == pytest.approx(0.5)
    # one false positive in four (25%): 0.7 joins; 0.2 would need a second (0.3)
    assert mia.tpr_at_fpr(members, nonmembers, 0.25) == pytest.approx(0.75)
    assert mia.tpr_at_fpr(members, nonmembers, 0.5) == pytest.approx(1.0)


def test_downsampled_curve_keeps_ends_and_size():
    rng = np.random.default_rng(0)
    m, n = rng.normal(1, 1, 300), rng.normal(0, 1, 300)
    fpr, tpr = mia.roc_points(m, n)
    pts = mia.downsample_curve(fpr, tpr, 50)
    assert len(pts) == 50 and pts[0][0] == 0.0 and pts[-1] == (1.0, 1.0)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(pts))


def _scores(seed, shift):
    rng = np.random.default_rng(seed)
    return {
        "a": (rng.normal(shift, 1, 80), rng.normal(0, 1, 40)),
        "b": (rng.normal(0, 1, 80), rng.normal(0, 1, 40)),
    }


def test_bootstrap_is_deterministic_with_the_seed_and_changes_without_it():
    scores = _scores(1, 1.0)
    one = mia.attack_stats(scores, np.random.default_rng([7, 1]), 300)
    two = mia.attack_stats(scores, np.random.default_rng([7, 1]), 300)
    other = mia.attack_stats(scores, np.random.default_rng([8, 1]), 300)
    assert one == two
    assert one["a"].ci != other["a"].ci


def test_widened_interval_contains_the_plain_one_and_worst_case_takes_max():
    stats = mia.attack_stats(_scores(2, 1.5), np.random.default_rng(0), 500)
    for s in stats.values():
        assert s.wide_ci[0] <= s.ci[0] <= s.auc <= s.ci[1] <= s.wide_ci[1]
    name, value, (lo, hi) = mia.worst_case(stats)
    assert name == "a" and value == stats["a"].auc
    assert lo == max(s.wide_ci[0] for s in stats.values())
    assert hi == max(s.wide_ci[1] for s in stats.values())


def test_records_needed_scales_with_the_square_of_the_width():
    # half-width 0.1 now, 0.05 allowed -> four times the records
    assert mia.records_needed(0.55, 0.65, 400, 0.60) == 1600
    assert mia.records_needed(0.5, 0.58, 400, 0.60) is None  # already demonstrated
    assert mia.records_needed(0.7, 0.8, 400, 0.60) is None  # the estimate is above it


def test_blind_baseline_fires_on_a_mismatched_split_and_not_on_a_matched_one():
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(60)]

    def doc(prefix):
        return prefix + " ".join(rng.choice(words, 40))

    # members written with a different template header than non-members
    members = [doc("DISCHARGE SUMMARY Patient seen. ") for _ in range(60)]
    nonmembers = [doc("Progress note: ") for _ in range(60)]
    scores = mia.blind_baseline(members, nonmembers, seed=0)
    assert mia.auc(scores[:60], scores[60:]) > 0.95
    same = [doc("Progress note: ") for _ in range(120)]
    scores = mia.blind_baseline(same[:60], same[60:], seed=0)
    assert abs(mia.auc(scores[:60], scores[60:]) - 0.5) < 0.15
    # seeded: the same folds give the same scores
    assert np.array_equal(scores, mia.blind_baseline(same[:60], same[60:], seed=0))


def test_blind_null_explains_a_code_stratified_split_and_still_sees_a_real_difference():
    # Eight codes, each with its own vocabulary, split 3:1 exactly within every code (as
    # a holdout drawn with the source's code shares is): the raw cross-validated AUC falls
    # well below 0.5, and the null with labels shuffled within codes falls with it.
    rng = np.random.default_rng(5)
    codes = [f"F{c}" for c in range(8)]
    vocab = {c: [f"{c}w{i}" for i in range(25)] for c in codes}

    def doc(code, extra=""):
        return extra + " ".join(rng.choice(vocab[code], 30))

    members = [doc(c) for c in codes for _ in range(18)]
    nonmembers = [doc(c) for c in codes for _ in range(6)]
    strata = [c for c in codes for _ in range(18)] + [c for c in codes for _ in range(6)]
    scores = mia.blind_baseline(members, nonmembers, seed=0)
    raw = mia.auc(scores[: len(members)], scores[len(members) :])
    null = mia.blind_null(members, nonmembers, strata, seed=0, permutations=19)
    assert raw < 0.45 and null.mean < 0.45
    assert abs(raw - null.mean) < 0.1 and null.p_value(raw) > 0.05
    # the same split with a template header on the members only: far above its null
    members = [doc(c, "DISCHARGE SUMMARY ") for c in codes for _ in range(18)]
    scores = mia.blind_baseline(members, nonmembers, seed=0)
    raw = mia.auc(scores[: len(members)], scores[len(members) :])
    null = mia.blind_null(members, nonmembers, strata, seed=0, permutations=19)
    assert raw - null.mean > 0.15 and null.p_value(raw) == 1 / 20
    # seeded
    again = mia.blind_null(members, nonmembers, strata, seed=0, permutations=19)
    assert again.aucs == null.aucs


def test_extraction_matches_whole_tokens_only():
    text = "ab cd ef gh"
    offsets = [(0, 2), (2, 5), (5, 8), (8, 11)]
    case = mia.extraction_case("r1", offsets, prefix=1, continuation=2)
    assert (case.prompt_end, case.continuation_end, case.token_ends) == (2, 8, (5, 8))
    assert mia.matched_tokens(case, text, " cd ef and more") == 2
    assert mia.matched_tokens(case, text, " cd e") == 1  # second token cut short
    assert mia.matched_tokens(case, text, " xx") == 0
    assert mia.extraction_case("r2", offsets, prefix=3, continuation=2) is None
