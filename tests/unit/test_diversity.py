import gzip
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sacrebleu.metrics import BLEU

from auditkit.checks.diversity import (
    DiversityCheck,
    DiversityConfig,
    _Doc,
    _length_matched,
    as_id_arrays,
    compression_ratio,
    distinct_n,
    jaccard,
    mattr,
    near_duplicates,
    profile_batch,
    self_bleu,
)
from auditkit.corpus import Record

DOCS = [["a", "b", "a"], ["a", "c"]]


@pytest.mark.parametrize(("n", "expected"), [(1, 3 / 5), (2, 3 / 3), (3, 1 / 1), (4, None)])
def test_distinct_n_by_hand(n, expected):
    assert distinct_n(DOCS, n) == expected


@pytest.mark.parametrize(
    ("doc", "window", "expected"),
    [
        (["a", "b", "a", "c"], 2, 1.0),  # ab, ba, ac: 2 types each
        (["a", "a", "b", "b"], 2, (1 + 2 + 1) / 6),  # aa, ab, bb
        (["a", "a", "b"], 5, 2 / 3),  # shorter than the window: plain TTR
        (["x", "y", "x", "y", "x"], 3, (2 + 2 + 2) / 9),
        ([], 3, None),
    ],
)
def test_mattr_by_hand(doc, window, expected):
    assert (
        mattr(doc, window) == pytest.approx(expected)
        if expected is not None
        else mattr(doc, window) is None
    )


def test_compression_ratio_is_raw_over_gzip():
    texts = ["low mood " * 20, "poor sleep " * 20]
    raw = "\n".join(texts).encode()
    assert compression_ratio(texts) == len(raw) / len(gzip.compress(raw, 9, mtime=0))
    assert compression_ratio(["a b c"] * 50) > compression_ratio(
        [" ".join(random.Random(i).choices("abcdefghij", k=30)) for i in range(50)]
    )


def test_self_bleu_fast_path_equals_sacrebleu_sentence_bleu():
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(30)]
    docs = [[rng.choice(vocab) for _ in range(rng.randint(5, 40))] for _ in range(8)]
    docs.append(list(docs[0]))  # a duplicate: its best reference is its twin
    bleu = BLEU(tokenize="none", effective_order=True)
    expected = []
    for i, d in enumerate(docs):
        refs = [" ".join(o) for j, o in enumerate(docs) if j != i]
        expected.append(bleu.sentence_score(" ".join(d), refs).score)
    assert self_bleu(docs) == pytest.approx(sum(expected) / len(expected), rel=1e-9)


def test_self_bleu_needs_two_docs():
    assert self_bleu([["a", "b"]]) is None


def _profiles(texts, seed=0):
    return profile_batch((texts, 3, 128, seed))


def test_near_duplicates_cluster_and_keep_the_earliest():
    base = " ".join(f"word{i}" for i in range(60))
    edited = base.replace("word30", "changed")
    other = " ".join(f"token{i}" for i in range(60))
    profiles = _profiles([base, other, edited, base])
    reps, best = near_duplicates(profiles, 0.7, 128)
    assert reps == [0, 1, 0, 0]
    assert best[2][0] == 0 and 0.7 <= best[2][1] < 1.0
    assert best[3] == (0, 1.0)
    assert jaccard(profiles[0].shingles, profiles[1].shingles) == 0.0


def test_profiles_do_not_depend_on_batching():
    texts = [f"the patient reports {i} nights of poor sleep" for i in range(5)]
    whole = _profiles(texts)
    split = _profiles(texts[:2]) + _profiles(texts[2:])
    assert [p.minhash.hashvalues.tolist() for p in whole] == [
        p.minhash.hashvalues.tolist() for p in split
    ]


def _docs(prefix, texts):
    profiles = _profiles(texts)
    arrays = as_id_arrays([p.words for p in profiles])
    return [
        _Doc(Record(f"{prefix}{i}", t), p, a)
        for i, (t, p, a) in enumerate(zip(texts, profiles, arrays, strict=True))
    ]


def test_length_matched_reference_cuts_to_each_synthetic_length():
    syn = _docs("s", ["a b c", "a b c d e f g", "x y"])
    src = _docs("r", [" ".join(f"s{j}" for j in range(n)) for n in (4, 10, 12, 2, 30)])
    ref = _length_matched(syn, src, random.Random(0))
    assert sorted(len(ids) for _, ids in ref) == [2, 3, 7]
    by_text = {d.record.text: d for d in src}
    for text, ids in ref:
        # each reference text is a prefix of one source report, with exactly its word ids
        origin = next(d for full, d in by_text.items() if full.startswith(text))
        assert list(ids) == list(origin.ids[: len(ids)])
        assert len(text.split()) == len(ids)
    assert len({text for text, _ in ref}) == 3, "sampled without replacement"


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        DiversityConfig(near_duplicate_jaccard=0)
    with pytest.raises(ValueError):
        DiversityConfig(unknown=1)


def test_every_declared_record_field_and_metric_is_documented():
    for name, desc in DiversityCheck.record_fields.items():
        assert desc, name
    for name, spec in DiversityCheck.metrics.items():
        assert spec.description, name


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abcd"), min_size=1, max_size=12), min_size=2, max_size=6))
def test_self_bleu_equals_sacrebleu_on_tie_heavy_docs(docs):
    bleu = BLEU(tokenize="none", effective_order=True)
    expected = [
        bleu.sentence_score(" ".join(d), [" ".join(o) for j, o in enumerate(docs) if j != i]).score
        for i, d in enumerate(docs)
    ]
    assert self_bleu(docs) == pytest.approx(sum(expected) / len(expected), rel=1e-9, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from("abcde"), max_size=40), st.integers(2, 8))
def test_mattr_closed_form_equals_sliding_window(doc, window):
    if not doc:
        assert mattr(doc, window) is None
        return
    if len(doc) <= window:
        expected = len(set(doc)) / len(doc)
    else:
        windows = [doc[i : i + window] for i in range(len(doc) - window + 1)]
        expected = sum(len(set(w)) / window for w in windows) / len(windows)
    assert mattr(doc, window) == pytest.approx(expected)
