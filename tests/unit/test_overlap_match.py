"""The passage matcher on hand-made corpora: each kind, the boilerplate rule, offsets."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from auditkit.ngram_index import SourceIndex, encode
from auditkit.overlap_match import MatchParams, match_record

RNG = random.Random(11)
VOCAB = [f"w{i}" for i in range(5000)]


def words(n, rng=RNG):
    return [rng.choice(VOCAB) for _ in range(n)]


def text(ws):
    return " ".join(ws)


BOILERPLATE = (
    "Patient denies suicidal or homicidal ideation, intent or plan, and agrees to "
    "call the crisis line if symptoms worsen before the next visit."
)
SOURCE_WORDS = [words(300) for _ in range(30)]
SOURCE = [text(ws) for ws in SOURCE_WORDS]
SECRET = SOURCE_WORDS[7][100:160]  # 60 words of one real report


def edited(ws, every):
    return [("EDITED" if k % every == 2 else w) for k, w in enumerate(ws)]


def index_of(texts):
    return SourceIndex.build([encode(t) for t in texts], 4, 8)


INDEX = index_of(SOURCE)
P = MatchParams()

CASES = [
    # (case, synthetic words, expected leak, expected kind, min words found)
    ("verbatim 60", words(80) + SECRET + words(80), True, "exact", 60),
    ("verbatim 20", words(80) + SECRET[:20] + words(80), True, "exact", 20),
    ("verbatim 15 is too short", words(80) + SECRET[:15] + words(80), False, None, 0),
    ("near 60, 10% edits", words(80) + edited(SECRET, 10) + words(80), True, "near", 50),
    ("near 40, 20% edits", words(80) + edited(SECRET[:40], 5) + words(80), True, "near", 30),
    ("near 40, 34% edits", words(80) + edited(SECRET[:40], 3) + words(80), False, None, 0),
    ("clean", words(250), False, None, 0),
]


@pytest.mark.parametrize(
    ("case", "syn", "leak", "kind", "min_words"), CASES, ids=[c[0] for c in CASES]
)
def test_kinds(case, syn, leak, kind, min_words):
    result = match_record(encode(text(syn)), INDEX, P)
    assert result.leak is leak
    if leak:
        best = max((m for m in result.matches if m.leak), key=lambda m: m.tokens)
        assert best.kind == kind and best.source == 7 and best.tokens >= min_words
        assert best.support == 1 and not best.boilerplate


@pytest.mark.parametrize(("holders", "discounted"), [(1, False), (4, False), (5, True), (8, True)])
def test_boilerplate_rule_counts_distinct_source_records(holders, discounted):
    passage = words(30, random.Random(5))
    source = [text(words(150) + (passage if i < holders else []) + words(150)) for i in range(20)]
    index = index_of(source)
    result = match_record(encode(text(words(60) + passage + words(60))), index, P)
    assert result.leak is (not discounted)
    if discounted:
        assert result.boilerplate_discounted >= 1
        assert all(m.boilerplate for m in result.matches)


def test_a_real_boilerplate_sentence_is_not_a_leak_but_a_unique_one_is():
    unique = (
        "Her brother found her in the garage of the family bakery on the night of the "
        "recital, two days after the custody hearing about her twins."
    )
    source = [text(words(200)) + " " + BOILERPLATE + " " + text(words(100)) for _ in range(6)]
    source.append(text(words(200)) + " " + unique + " " + text(words(50)))
    index = index_of(source)
    boiler = match_record(
        encode(text(words(100)) + " " + BOILERPLATE + " " + text(words(100))), index, P
    )
    assert not boiler.leak and boiler.boilerplate_discounted >= 1
    copied = match_record(
        encode(text(words(100)) + " " + unique + " " + BOILERPLATE + " " + text(words(100))),
        index,
        P,
    )
    assert copied.leak


def test_exact_fraction_and_longest_span():
    result = match_record(encode(text(words(100) + SECRET + words(100))), INDEX, P)
    n_grams = 260 - 8 + 1
    assert result.exact_fraction == pytest.approx((60 - 8 + 1) / n_grams)
    assert result.max_exact_tokens == 60 and result.longest_rare_span == 60


def test_offsets_agree_with_a_brute_force_rapidfuzz_search():
    syn_words = words(70) + edited(SECRET, 9) + words(70)
    syn = text(syn_words)
    enc = encode(syn)
    result = match_record(enc, INDEX, P)
    (m,) = [m for m in result.matches if m.leak]
    start, end = int(enc.starts[m.start]), int(enc.ends[m.end - 1])
    s_start, s_end = INDEX.record_span(m.source, m.source_start, m.source_end)
    found = syn[start:end].split()
    src = SOURCE[m.source][s_start:s_end].split()
    # brute force: best-aligned window of the source report for the found passage
    src_all = SOURCE[m.source].split()
    best = max(
        range(len(src_all) - len(found) + 1),
        key=lambda i: Levenshtein.normalized_similarity(found, src_all[i : i + len(found)]),
    )
    assert src_all[best : best + len(found)][:5] == src[:5]
    assert Levenshtein.normalized_similarity(found, src) == pytest.approx(m.similarity)


def test_dcr_finds_the_nearest_record():
    result = match_record(encode(text(SOURCE_WORDS[3][:200] + words(50))), INDEX, P)
    assert result.dcr_source == 3 and result.dcr_similarity > 0.5


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "b", "c", "d", "w1", "w2", "w3", ".", "x-y", "é"]),
        min_size=0,
        max_size=120,
    ),
    st.integers(0, 29),
)
def test_offsets_always_inside_both_texts(tokens, source_no):
    syn = " ".join(tokens) + " " + text(SOURCE_WORDS[source_no][50:90])
    enc = encode(syn)
    result = match_record(enc, INDEX, P)
    for m in result.matches:
        assert 0 <= m.start < m.end <= len(enc)
        start, end = int(enc.starts[m.start]), int(enc.ends[m.end - 1])
        assert 0 <= start < end <= len(syn)
        s_start, s_end = INDEX.record_span(m.source, m.source_start, m.source_end)
        assert 0 <= s_start < s_end <= len(SOURCE[m.source])


def test_every_matching_setting_of_the_policy_reaches_the_matcher():
    """Each OverlapConfig field that MatchParams also has is passed on, not left at default."""
    import dataclasses

    from auditkit.checks.overlap import OverlapConfig

    renamed = {"seed_n": "seed_ngram"}
    defaults = MatchParams()
    changed = {}
    for f in dataclasses.fields(MatchParams):
        name = renamed.get(f.name, f.name)
        if name not in OverlapConfig.model_fields:
            continue
        value = getattr(defaults, f.name)
        changed[name] = value + 1 if isinstance(value, int) else value / 2
    params = OverlapConfig(**changed).params()
    for f in dataclasses.fields(MatchParams):
        name = renamed.get(f.name, f.name)
        if name in changed:
            assert getattr(params, f.name) == changed[name], f.name
    assert "dcr_df_cap" in changed and "seed_ngram" in changed
