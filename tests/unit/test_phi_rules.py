"""Fast tests of the phi check's pure parts: rules, validators, normalisation, merging,
allow-list and the reuse index. Nothing here loads spaCy or Presidio."""

import hashlib
import subprocess
import sys

import pytest

from auditkit.phi.normalize import normalize_date, normalize_name, normalize_value
from auditkit.phi.recognizers import age_over_89, dea_checksum, npi_checksum, valid_date
from auditkit.phi.reuse import SourceIndex
from auditkit.phi.rules import CATEGORIES, RulesError, load_rules
from auditkit.phi.spans import PhiSpan, apply_allow_list, merge_spans


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def test_shipped_rules_load_and_cover_every_category(rules):
    assert set(rules.precedence) == set(CATEGORIES)
    assert set(rules.entity_category.values()) == set(CATEGORIES)
    assert rules.recognizers, "rules/phi/*.yaml declare recognizers"
    for spec in rules.recognizers:
        assert rules.category_of(spec["supported_entity"]) in CATEGORIES, spec["name"]


def test_unknown_entity_is_a_rules_bug(rules):
    assert rules.category_of("NRP") is None  # declared ignored, with a reason
    with pytest.raises(KeyError, match="no category"):
        rules.category_of("SOMETHING_NEW")


def test_bad_rules_file_names_file_and_key(tmp_path):
    (tmp_path / "categories.yaml").write_text("categories: {NAME: [PERSON]}\nprecedence: [NAME]\n")
    (tmp_path / "broken.yaml").write_text(
        "recognizers:\n  - name: X\n    supported_entity: MRN\n"
        "    patterns:\n      - {name: p, regex: '(unclosed', score: 0.5}\n"
    )
    with pytest.raises(RulesError, match=r"broken\.yaml.*patterns\[0\]\.regex"):
        load_rules(str(tmp_path))


def test_given_names_load_folded_and_bad_file_is_named(rules, tmp_path):
    assert {"maria", "hector", "will"} <= rules.given_names
    assert "will" in rules.ambiguous_names and "hector" not in rules.ambiguous_names
    (tmp_path / "categories.yaml").write_text("categories: {NAME: [PERSON]}\nprecedence: [NAME]\n")
    (tmp_path / "names.yaml").write_text("given_names:\n  female: [Ann]\n  nicknames: [Al]\n")
    with pytest.raises(RulesError, match=r"names\.yaml.*nicknames"):
        load_rules(str(tmp_path))


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("03/14/2024", True),
        ("3-14-87", True),
        ("2023-03-14", True),
        ("March 14, 1987", True),
        ("14-MAR-2024", True),
        ("Feb 29", True),
        ("the 2nd", False),  # the recognizer passes "2nd" alone
        ("2nd", True),
        ("13/45/2020", False),
        ("02/30/2021", False),
        ("June", True),
    ],
)
def test_date_validator(text, ok):
    assert valid_date(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [("90", True), ("93", True), ("104", True), ("89", False), ("34", False),
     ("ninety-one", True), ("ninety", True), ("90s", True), ("90th", True),
     ("eighty-nine", False)],
)  # fmt: skip
def test_age_validator(text, ok):
    assert age_over_89(text) is ok


def test_npi_and_dea_checksums():
    assert npi_checksum("1234567893")  # the CMS example NPI
    assert not npi_checksum("1234567890")
    assert dea_checksum("AB1234563")  # 1+3+5 + 2*(2+4+6) = 33 -> 3
    assert not dea_checksum("AB1234567")


@pytest.mark.parametrize(
    "value",
    ["03/14/1987", "3/14/87", "1987-03-14", "March 14, 1987", "14 March 1987", "Mar 14th, 1987",
     "14-MAR-1987"],
)  # fmt: skip
def test_dates_normalise_to_one_form(value):
    assert normalize_date(value) == "1987-03-14"


def test_partial_dates_normalise():
    assert normalize_date("3/14") == "--03-14"
    assert normalize_date("June 2021") == "2021-06"
    assert normalize_date("06/2021") == "2021-06"


@pytest.mark.parametrize(
    "value", ["(614) 555-0182", "614-555-0182", "614.555.0182", "+1 614 555 0182",
              "1-614-555-0182", "614 555 0182 ext. 12"]
)  # fmt: skip
def test_phone_formats_normalise_to_digits(value):
    assert normalize_value("PHONE", value) == "6145550182"


def test_identifier_and_name_normalisation():
    assert normalize_value("MRN", "4829-133") == normalize_value("MRN", "4829133") == "4829133"
    assert normalize_value("MRN", "rh-77120") == "RH77120"
    assert normalize_value("SSN", "921 47 3380") == "921473380"
    assert normalize_name("OKAFOR, MARIA T") == normalize_name("Maria Okafor") == "maria okafor"
    assert normalize_name("Dr. Lucía Pérez") == "lucia perez"
    assert normalize_value("URL", "https://www.Harlowbh.org/") == "harlowbh.org"


def span(s, e, t, score=0.8, rec="r"):
    return PhiSpan(s, e, t, score, rec)


def test_merge_overlapping_spans_keeps_strongest_reason():
    merged = merge_spans(
        [span(0, 10, "PHONE", 0.7, "phone"), span(0, 10, "FAX", 0.9, "fax"), span(20, 25, "NAME")],
        load_rules().precedence,
    )
    assert [(m.start, m.end, m.type, m.recognizer) for m in merged] == [
        (0, 10, "FAX", "fax"),
        (20, 25, "NAME", "r"),
    ]


_TIE_SCRIPT = """
from auditkit.phi.spans import PhiSpan, merge_spans
spans = [PhiSpan(4, 16, "NAME", 0.7, name) for name in
         ("RoleBeforeNameRecognizer", "GivenNameRecognizer", "TitleNameRecognizer", "Spacy")]
spans += [PhiSpan(30, 40, "DATE", 0.6, n) for n in ("DateRecognizer", "AgeRecognizer")]
print([(m.start, m.end, m.recognizer) for m in merge_spans(spans, ["NAME", "DATE"])])
"""


def test_merge_ties_are_decided_the_same_in_every_process():
    """Equal spans of equal score from two recognizers: the same one wins whatever the
    string-hash seed (set order differs between processes), the first in name order."""
    outputs = {
        subprocess.run(
            [sys.executable, "-c", _TIE_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
        ).stdout
        for seed in range(8)
    }
    assert outputs == {"[(4, 16, 'GivenNameRecognizer'), (30, 40, 'AgeRecognizer')]\n"}


def test_merge_unions_chains_and_breaks_ties_by_precedence():
    merged = merge_spans(
        [span(0, 5, "LOCATION", 0.85), span(3, 12, "FACILITY", 0.85), span(11, 14, "NAME", 0.5)],
        load_rules().precedence,
    )
    # the winner keeps its own extent; other categories in the group are dropped
    assert [(m.start, m.end, m.type) for m in merged] == [(3, 12, "FACILITY")]
    same = merge_spans([span(0, 6, "NAME", 0.8), span(4, 12, "NAME", 0.5)], ["NAME"])
    assert [(m.start, m.end, m.score) for m in same] == [(0, 12, 0.8)]
    assert merge_spans([span(0, 5, "NAME"), span(5, 9, "NAME")], ["NAME"]) == [
        span(0, 5, "NAME"),
        span(5, 9, "NAME"),
    ]


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("Beck Depression Inventory score 28", "Beck"),
        ("history of Parkinson's disease", "Parkinson's"),
        ("PHQ-9 19 today", "PHQ-9 19"),
        ("started sertraline 50 mg", "sertraline"),
        ("moved from Ohio", "Ohio"),
        ("since 2019", "2019"),
        ("code F32.1", "F32.1"),
        ("seen by Mr. X today", "X"),
    ],
)
def test_allow_list_drops_hard_negatives(rules, text, target):
    s = text.index(target)
    assert apply_allow_list(text, [span(s, s + len(target), "NAME")], rules.allow) == []


def test_spans_never_cross_a_line_break(rules):
    text = "Patient: Mónica Torres\nLucía Ferrer"
    kept = apply_allow_list(text, [span(9, len(text), "NAME")], rules.allow)
    assert [text[k.start : k.end] for k in kept] == ["Mónica Torres", "Lucía Ferrer"]


@pytest.mark.parametrize(
    ("value", "kind", "kept"),
    [
        ("Presenting Problem", "NAME", False),
        ("Psychiatric Consult", "FACILITY", False),
        ("Suicide and Crisis Lifeline", "FACILITY", False),
        ("Lifestyle", "NAME", False),
        ("Schizophrenia", "FACILITY", False),
        ("Grace Hope", "NAME", True),
        ("Crisis Center of Dayton", "FACILITY", True),
        ("Hope", "NAME", True),
    ],
)
def test_spans_made_only_of_clinical_vocabulary_are_headings(rules, value, kind, kept):
    text = f"Seen today. {value} was discussed."
    start = text.index(value)
    out = apply_allow_list(text, [span(start, start + len(value), kind)], rules.allow)
    assert bool(out) is kept


def test_allow_list_trims_and_keeps_real_phi(rules):
    text = "Dr. Hamilton Reyes, Cleveland, saw her on 3/14."
    s = text.index("Reyes")
    kept = apply_allow_list(text, [span(s, s + 6, "NAME")], rules.allow)  # "Reyes,"
    assert [(k.start, k.end) for k in kept] == [(s, s + 5)]
    s = text.index("Hamilton")
    trimmed = apply_allow_list(text, [span(s, s + len("Hamilton Reyes"), "NAME")], rules.allow)
    assert [text[k.start : k.end] for k in trimmed] == ["Reyes"]


def _fp(value: str) -> str:
    return hashlib.sha256(b"k" + value.encode()).hexdigest()[:16]


def _named(text, *values, kind="NAME"):
    return [span(text.index(v), text.index(v) + len(v), kind) for v in values]


def test_reuse_index_finds_full_name_mrn_phone_with_source_id():
    index = SourceIndex(_fp)
    src = "Name: Maria Okafor MRN 00482913 phone 614-555-0182"
    index.add(
        "src-7",
        src,
        _named(src, "Maria Okafor") + _named(src, "00482913", kind="MRN")
        + _named(src, "614-555-0182", kind="PHONE"),
    )  # fmt: skip
    syn = "OKAFOR, MARIA seen; MRN 0048-2913; cell (614) 555-0182."
    for value, kind in (("OKAFOR, MARIA", "NAME"), ("0048-2913", "MRN"),
                        ("(614) 555-0182", "PHONE")):  # fmt: skip
        hit = index.lookup(syn, _named(syn, value, kind=kind)[0], rare_max_df=1)
        assert hit.in_source and hit.severe and hit.source_ids == ("src-7",), value


def test_common_first_name_is_not_reuse_but_a_rare_surname_is():
    index = SourceIndex(_fp)
    for i, surname in enumerate(["Okafor", "Lopez", "Chen", "Novak"]):
        text = f"Patient Maria {surname} was seen."
        index.add(f"s{i}", text, _named(text, f"Maria {surname}"))
    syn = "Maria told me that Okafor was her maiden name."
    maria, okafor = _named(syn, "Maria", "Okafor")
    assert not index.lookup(syn, maria, rare_max_df=1).in_source
    hit = index.lookup(syn, okafor, rare_max_df=1)
    assert hit.in_source and not hit.severe and hit.source_ids == ("s0",)
    assert index.lookup(syn, maria, rare_max_df=4).in_source  # the cap is configurable


def test_dob_reuse_is_severe_other_dates_are_not():
    index = SourceIndex(_fp)
    src = "DOB: 04/22/1961. Visit 03/14/2024."
    index.add("r1", src, _named(src, "04/22/1961", "03/14/2024", kind="DATE"))
    syn = "Born April 22, 1961; seen March 14, 2024."
    dob, visit = _named(syn, "April 22, 1961", "March 14, 2024", kind="DATE")
    assert index.lookup(syn, dob, 1).severe
    hit = index.lookup(syn, visit, 1)
    assert hit.in_source and not hit.severe


def test_importing_the_check_does_not_import_presidio_or_spacy():
    code = (
        "import sys, auditkit, auditkit.checks.phi, auditkit.phi.engine, auditkit.cli;"
        "heavy = [m for m in ('presidio_analyzer', 'spacy', 'torch') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
