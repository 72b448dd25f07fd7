"""The n-gram index: fast encoding equals the tokenizer, the index equals a plain build."""

from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from auditkit.ngram_index import SourceIndex, _encode_tokens, encode
from auditkit.text import ngram_hashes

# Letters, digits, joiners, spaces, punctuation, and characters that fold: accents,
# combining marks, fullwidth letters, dotted capital I, sharp s, symbols that fold to letters
# (™) or to punctuation (⑴), curly apostrophes, bullets, underscores.
ALPHABET = "aZ9 .-/'’_\n\t,;:()éЖ™Ａİß⑴½•—\u0301"


def same(a, b):
    for field in ("tokens", "starts", "ends"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and np.array_equal(x, y), field


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=80))
def test_fast_encoding_equals_the_tokenizer(text):
    same(encode(text), _encode_tokens(text))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_fast_encoding_equals_the_tokenizer_on_any_unicode(text):
    same(encode(text), _encode_tokens(text))


def test_fast_encoding_on_clinical_text():
    text = (
        "Pt's f/u on 3/14/2025: denies SI/HI. Sertraline 50-mg q.d.; "
        "mood “better” — sleep 6.5 h. Naïve to CBT™… ⑴ A..B a-.b"
    )
    same(encode(text), _encode_tokens(text))
    assert len(encode(text)) > 10


def reference(docs, n, exact_n):
    """The index by dictionaries: postings in record order, distinct-record counts."""
    postings, exact = defaultdict(list), defaultdict(set)
    for r, d in enumerate(docs):
        for j, g in enumerate(ngram_hashes(d.tokens, n).tolist()):
            postings[g].append((r, j))
        for g in ngram_hashes(d.tokens, exact_n).tolist():
            exact[g].add(r)
    return postings, exact


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 6), max_size=30), max_size=12),
    st.sampled_from([(2, 3), (4, 8)]),
)
def test_index_equals_a_dictionary_build(records, ns):
    n, exact_n = ns
    docs = [encode(" ".join(f"w{t}" for t in r)) for r in records]
    index = SourceIndex.build(iter(docs), n, exact_n)
    postings, exact = reference(docs, n, exact_n)
    assert index.grams.tolist() == sorted(postings)
    for k, g in enumerate(index.grams.tolist()):
        block = slice(int(index.block_start[k]), int(index.block_end[k]))
        got = list(
            zip(index.post_record[block].tolist(), index.post_pos[block].tolist(), strict=True)
        )
        assert got == postings[g]
        assert index.df[k] == len({r for r, _ in postings[g]})
    assert index.exact_grams.tolist() == sorted(exact)
    assert index.exact_df.tolist() == [len(exact[g]) for g in sorted(exact)]
    assert index.tokens.tolist() == [t for d in docs for t in d.tokens.tolist()]
    assert index.doc_offset.tolist() == np.cumsum([0] + [len(d) for d in docs]).tolist()


def test_index_round_trips_through_memory_mapped_files(tmp_path):
    docs = [encode("alpha beta gamma delta epsilon"), encode("beta gamma delta zeta")]
    index = SourceIndex.build(docs, 2, 3)
    index.save(tmp_path)
    loaded = SourceIndex.load(tmp_path)
    for name in SourceIndex._ARRAYS:
        assert np.array_equal(getattr(index, name), getattr(loaded, name)), name
