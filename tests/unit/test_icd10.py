"""rules/icd10: the code definitions, lookup with parent fallback, and ConText modifiers."""

import json

import pytest

from auditkit.icd10 import (
    Icd10RulesError,
    criteria_mentioned,
    find_mentions,
    load_codes,
    load_context,
)


@pytest.fixture(scope="module")
def book():
    return load_codes()


def test_shipped_rules_define_the_issue_codes_and_every_fixture_code(book, fixtures_dir):
    assert len(book) >= 25
    wanted = ["F10.20", "F11.20", "F12.20", "F17.210", "F20.9", "F25.0", "F31.2", "F31.81"]
    wanted += [f"F32.{i}" for i in (0, 1, 2, 3, 4, 5, 9)] + ["F33.1", "F40.10", "F41.0"]
    wanted += ["F41.1", "F42.2", "F43.10", "F43.21", "F50.2", "F60.3", "F84.0", "F90.0", "F90.2"]
    for name in ("source", "holdout", "synthetic_clean", "synthetic_leaky"):
        for line in (fixtures_dir / f"{name}.jsonl").open():
            wanted += json.loads(line)["icd10"]
    for code in sorted(set(wanted)):
        found = book.lookup(code)
        assert found is not None, code
        assert found.code == code, f"{code} should be defined itself, not by fallback"
        assert found.title and found.criteria, code


@pytest.mark.parametrize(
    ("code", "found", "parent"),
    [
        ("F32.1", "F32.1", "F32"),
        ("F32.8", "F32", None),  # not defined: falls back to its category
        ("f33.1", "F33.1", "F33"),
        ("F17.219", "F17", None),
        ("F43.10", "F43.10", "F43.1"),
        ("F99", None, None),
        ("Z00.00", None, None),
    ],
)
def test_lookup_falls_back_to_the_nearest_defined_parent(book, code, found, parent):
    hit = book.lookup(code)
    assert (hit.code if hit else None) == found
    if hit and parent:
        assert hit.parent == parent


def test_children_inherit_criteria_and_subtypes_add_their_own(book):
    f32 = {c.id for c in book.criteria("F32")}
    assert {c.id for c in book.criteria("F32.1")} == f32
    assert "anhedonia" in f32 and "suicidality" in f32 and len(f32) == 9
    assert {c.id for c in book.criteria("F33.1")} == f32 | {"prior_episode"}
    assert "psychotic_features" in {c.id for c in book.criteria("F31.2")}
    assert "substance_alcohol" in {c.id for c in book.criteria("F10.20")}
    assert {c.id for c in book.criteria("F43.21")} >= {"identifiable_stressor", "depressed_mood"}
    assert book.lookup("F32.1").category == "F32"


# --- ConText: what counts as a mention -----------------------------------------------

CASES = [
    # (text, criterion, counted, modifier)
    ("She reports anhedonia and poor sleep.", "anhedonia", True, None),
    ("Patient denies anhedonia.", "anhedonia", False, "negated"),
    ("No anhedonia.", "anhedonia", False, "negated"),
    ("Negative for anhedonia, guilt or hopelessness.", "worthlessness_guilt", False, "negated"),
    ("Without anhedonia.", "anhedonia", False, "negated"),
    ("Suicidal ideation was denied.", "suicidality", False, "negated"),
    ("Suicidal ideation: ruled out.", "suicidality", True, None),  # ":" ends the sentence
    ("Suicidal ideation ruled out.", "suicidality", False, "negated"),
    ("Denies SI/HI, intent or plan.", "suicidality", False, "negated"),
    ("Denies SI but endorses hopelessness.", "depressed_mood", True, None),
    ("Denies SI but endorses hopelessness.", "suicidality", False, "negated"),
    ("Denies guilt. Mood is low.", "depressed_mood", True, None),
    ("No interest in her hobbies for months.", "anhedonia", True, None),  # "no" is the mention
    ("Her mother has depression and hopelessness.", "depressed_mood", False, "family"),
    ("Family history of insomnia in father.", "sleep_change", False, "family"),
    ("Her mother says she is tearful every day.", "depressed_mood", True, None),
    ("Return to clinic if suicidal thoughts emerge.", "suicidality", False, "hypothetical"),
    ("No change in her poor sleep.", "sleep_change", True, None),  # pseudo-negation
    (
        "He denies alcohol use; however he reports insomnia most nights.",
        "sleep_change",
        True,
        None,
    ),
    # beyond the forward scope of 12 tokens, a negation no longer reaches
    (
        "Denies chest pain, fever, cough, rash, headache, nausea, vomiting, diarrhea, "
        "dysuria and in the last month tearfulness.",
        "depressed_mood",
        True,
        None,
    ),
]


@pytest.mark.parametrize(("text", "criterion", "counted", "modifier"), CASES)
def test_context_modifiers(book, text, criterion, counted, modifier):
    criteria = book.criteria("F32.1")
    mentions = [m for m in find_mentions(text, criteria) if m.criterion == criterion]
    assert mentions, f"pattern of {criterion} not found in {text!r}"
    assert any(m.counts for m in mentions) is counted
    if not counted:
        assert {m.modifier for m in mentions} == {modifier}
    assert (criterion in criteria_mentioned(text, criteria)) is counted


def test_mention_offsets_point_into_the_text(book):
    text = "Pt reports tearfulness.\nDenies anhedonia."
    mentions = find_mentions(text, book.criteria("F32.1"))
    assert [text[m.start : m.end] for m in mentions] == ["tearfulness", "anhedonia"]
    assert [m.modifier for m in mentions] == [None, "negated"]


# --- Bad rules files ---------------------------------------------------------------

GOOD = """codes:
  F32:
    title: Depression
    criteria:
      - {id: sad, label: sad, patterns: [sad]}
"""
BAD_REGEX = GOOD.replace("F32", "F33").replace("[sad]", "['(']")


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        ("codes: [\n", "not valid YAML", "bad.yaml"),
        ("- just\n- a list\n", "expected a mapping", "bad.yaml"),
        ("codes:\n  F32:\n    title: X\n    colour: red\n", "Extra inputs",
         "field 'codes.F32.colour'"),
        ("codes:\n  F32:\n    include: [x]\n", "Field required", "field 'codes.F32.title'"),
        ("codes:\n  F40:\n    title: X\n    include: [nope]\n", "unknown criteria set 'nope'",
         "field 'codes.F40.include[0]'"),
        ("codes:\n  f32.1:\n    title: X\n", "not an ICD-10 code", "field 'codes.f32.1'"),
        (BAD_REGEX, "invalid regular expression", "field 'codes.F33.criteria[0].patterns[0]'"),
        ("codes:\n  F32:\n    title: Again\n", "also defined in a.yaml", "field 'codes.F32'"),
    ],
)  # fmt: skip
def test_bad_rules_file_names_file_and_key(tmp_path, text, message, where):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(Icd10RulesError, match=message) as err:
        load_codes(str(tmp_path))
    assert "bad.yaml" in str(err.value) and where in str(err.value)


def test_bad_context_file_names_the_key(tmp_path):
    bad = tmp_path / "context.yaml"
    bad.write_text("triggers:\n  - {phrase: denies, category: nope, direction: forward}\n")
    with pytest.raises(Icd10RulesError, match=r"context.yaml, field 'triggers.0.category'"):
        load_context(str(bad))


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(Icd10RulesError, match="ICD-10 rules folder not found"):
        load_codes(str(tmp_path / "nowhere"))
