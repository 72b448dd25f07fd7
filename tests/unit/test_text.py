from hypothesis import given
from hypothesis import strategies as st

from auditkit.text import ngrams, normalize, prefix_end, tokenize, words


def test_tokenize_keeps_joined_clinical_forms_and_offsets():
    text = "Pt's follow-up on 3/14: PHQ-9 = 19, sertraline 100 mg."
    toks = tokenize(text)
    assert [t.text for t in toks] == [
        "pt's",
        "follow-up",
        "on",
        "3/14",
        ":",
        "phq-9",
        "=",
        "19",
        ",",
        "sertraline",
        "100",
        "mg",
        ".",
    ]
    for t in toks:
        assert text[t.start : t.end].casefold() == t.text


def test_words_drop_punctuation_and_casefold():
    assert words("Denies SI/HI. Mood: 'low'.") == ["denies", "si/hi", "mood", "low"]


def test_normalize():
    assert normalize("  Ｌｏｗ\tMOOD \n") == "low mood"


def test_ngrams():
    assert list(ngrams(["a", "b", "c"], 2)) == [("a", "b"), ("b", "c")]
    assert list(ngrams(["a"], 2)) == []


def test_prefix_end():
    text = "Low mood, poor sleep."
    assert text[: prefix_end(text, 2)] == "Low mood"
    assert prefix_end(text, 0) == 0
    assert prefix_end(text, 99) == len(text)


@given(st.text())
def test_token_offsets_always_inside_text(text):
    for t in tokenize(text):
        assert 0 <= t.start < t.end <= len(text)
