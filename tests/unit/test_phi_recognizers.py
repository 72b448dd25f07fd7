"""Table-driven tests of every PHI recognizer through the real engine, the entity ->
category mapping, and the check's masking. The spaCy model loads once per module."""

import itertools

import pytest

from auditkit.results import canonical_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    from auditkit.phi.engine import EngineSpec, get_engine, resolve_model

    return get_engine(EngineSpec(model=resolve_model()))


def found(engine, text):
    return [(text[s.start : s.end], s.type) for s in engine.analyze([text])[0]]


# (text, value that must be found, category)
POSITIVES = [
    ("MRN: 00482913 seen today", "00482913", "MRN"),
    ("Med Rec No. A1234567 on file", "A1234567", "MRN"),
    ("Chart #: RH-77120", "RH-77120", "MRN"),
    ("DOB: 04/22/1961", "04/22/1961", "DATE"),
    ("admitted on March 14, 2024 for", "March 14, 2024", "DATE"),
    ("seen 14-MAR-2024 in clinic", "14-MAR-2024", "DATE"),
    ("widowed since May 2021.", "May 2021", "DATE"),
    ("a 93-year-old widow", "93", "AGE_OVER_89"),
    ("Age: ninety-four", "ninety-four", "AGE_OVER_89"),
    ("call her cell (614) 555-0182 today", "(614) 555-0182", "PHONE"),
    ("Tel 740-555-0133 ext. 214", "740-555-0133 ext. 214", "PHONE"),
    ("Fax: 484-555-0162", "484-555-0162", "FAX"),
    ("please fax to our office at 901-555-0128", "901-555-0128", "FAX"),
    ("email m.okafor@kestrelmail.com for", "m.okafor@kestrelmail.com", "EMAIL"),
    ("SSN: 921-47-3380", "921-47-3380", "SSN"),
    ("SSN xxx-xx-4417 on file", "xxx-xx-4417", "SSN"),
    ("Medicaid ID: 44019283B", "44019283B", "HEALTH_PLAN_ID"),
    ("Member ID XKH8841203", "XKH8841203", "HEALTH_PLAN_ID"),
    ("Account #: 100293847", "100293847", "ACCOUNT_NUMBER"),
    ("Encounter #: E240318-0921", "E240318-0921", "ACCOUNT_NUMBER"),
    ("NPI 1234567893 on the claim", "1234567893", "LICENSE_NUMBER"),
    ("DEA AB1234563 listed", "AB1234563", "LICENSE_NUMBER"),
    ("Driver license no.: RT448712", "RT448712", "LICENSE_NUMBER"),
    ("a 2016 Buick, VIN 1G4GB5G39GF208146", "1G4GB5G39GF208146", "VEHICLE_ID"),
    ("his truck (plate 7KLM382)", "7KLM382", "VEHICLE_ID"),
    ("pacemaker serial PJN884712H", "PJN884712H", "DEVICE_ID"),
    ("IMEI 356938035643809 logged", "356938035643809", "DEVICE_ID"),
    (
        "join at https://meet.example-clinic.org/room/7Q2X now",
        "https://meet.example-clinic.org/room/7Q2X",
        "URL",
    ),
    ("pay at www.harlowbh.org/paybill", "www.harlowbh.org/paybill", "URL"),
    ("client IP 203.0.113.57 logged", "203.0.113.57", "IP_ADDRESS"),
    (
        "lives at 418 Larkspur Ave, Apt 3C, Harlow Springs, OH 43219",
        "418 Larkspur Ave, Apt 3C",
        "LOCATION",
    ),
    ("lives at 418 Larkspur Ave, Harlow Springs, OH 43219", "Harlow Springs", "LOCATION"),
    ("lives at 418 Larkspur Ave, Harlow Springs, OH 43219", "43219", "LOCATION"),
    ("grew up in Tamsin County before", "Tamsin County", "LOCATION"),
    ("admitted to Mercy Ridge Hospital last", "Mercy Ridge Hospital", "FACILITY"),
    ("attends Lincoln Middle School in", "Lincoln Middle School", "FACILITY"),
    ("Patient: OKAFOR, MARIA T  MRN 1234", "OKAFOR, MARIA T", "NAME"),
    ("referred by Dr. Samuel Reyes for", "Samuel Reyes", "NAME"),
    ("She lives with her daughter Chioma.", "Chioma", "NAME"),
    ("i stayed with my sister keisha last week", "keisha", "NAME"),
    ("Paul Lindqvist, LCSW", "Paul Lindqvist", "NAME"),
    ("Case No. 23-0448-17 was closed", "23-0448-17", "OTHER_ID"),
    ("Student ID S0049187 on the form", "S0049187", "OTHER_ID"),
    # street addresses: "Dr" after a house number and street name is Drive, not a title
    (
        "She lives at 2250 Birchmont Dr Apt 12, Harlow Springs",
        "2250 Birchmont Dr Apt 12",
        "LOCATION",
    ),
    ("moved to 71 Cobbler Dr. Unit 5 last year", "71 Cobbler Dr. Unit 5", "LOCATION"),
    ("his room at 18 Quarry Lane, Unit 4 is cold", "18 Quarry Lane, Unit 4", "LOCATION"),
    # intersections, named roads and landmarks with a generic head
    ("found wandering at Third and Delmont after midnight", "Third and Delmont", "LOCATION"),
    ("picked up on the corner of 5th & Larch", "5th & Larch", "LOCATION"),
    ("sat under the Wexley Avenue overpass, Dunmore", "Wexley Avenue overpass", "LOCATION"),
    ("sat under the Wexley Avenue overpass, Dunmore", "Dunmore", "LOCATION"),
    ("she jogs along the Cedar Creek trail daily", "Cedar Creek", "LOCATION"),
    ("a crash near Hobbs Ferry on Friday", "Hobbs Ferry", "LOCATION"),
    ("froze while driving on the Crosstown Expressway", "Crosstown Expressway", "LOCATION"),
    ("Harbor Light Center for Recovery, Maple Heights", "Maple Heights", "LOCATION"),
    # residence after a longer phrase, and a telehealth location label
    ("Lives with his wife and their two sons in Brookfield.", "Brookfield", "LOCATION"),
    ("Patient location: home, East Fairview; provider in clinic", "East Fairview", "LOCATION"),
    # given names (rules/phi/given_names.yaml), self-introductions, kin and roles
    ("Marcus Oyelaran, district IT, joined late", "Marcus Oyelaran", "NAME"),
    ("The team spoke with Hector before discharge.", "Hector", "NAME"),
    ("later identified as Roberta Finch-Lowe", "Roberta Finch-Lowe", "NAME"),
    ("i went with my cousin tanya to the store", "tanya", "NAME"),
    ("my brother danny is visiting", "danny", "NAME"),
    ("hi, this is maria from the front desk", "maria", "NAME"),
    ("her dad (Victor) called the unit", "Victor", "NAME"),
    ("his parents, Tomasz and Ewa, attended", "Tomasz", "NAME"),
    ("lives with daughter Irene Asante-Boateng now", "Irene Asante-Boateng", "NAME"),
    ("Re: Employee Anjali Rao, ID on file", "Anjali Rao", "NAME"),
    ("Name: Declan O'Sullivan", "Declan O'Sullivan", "NAME"),
    ("Caller: Whitcomb, Marjorie", "Whitcomb, Marjorie", "NAME"),
]

# (text, value that must NOT be flagged)
NEGATIVES = [
    ("Beck Depression Inventory score 28 today", "Beck"),
    ("Hamilton Rating Scale for Depression was 22", "Hamilton"),
    ("father with Parkinson's disease", "Parkinson"),
    ("mother had Alzheimer's disease", "Alzheimer"),
    ("diagnosed with Asperger's as a child", "Asperger"),
    ("PHQ-9 19, GAD-7 15, GAF 45", "19"),
    ("started sertraline 100 mg daily", "sertraline"),
    ("quetiapine 25-50 mg PRN", "25"),
    ("F32.1 major depressive disorder", "F32.1"),
    ("in 2019 she moved", "2019"),
    ("a 34-year-old woman", "34"),
    ("symptoms for 3 weeks", "3 weeks"),
    ("She moved from Ohio last", "Ohio"),
    ("BP 128/82, HR 88", "128/82"),
    ("call 911 or 988", "988"),
    ("seen at 14:30 today", "14:30"),
    ("Patient A reported", "A"),
    ("[Patient Name] was seen", "Patient Name"),
    ("protective factors (daughter, faith, work)", "faith"),
    ("her grandmother will visit on Sunday", "will"),
    ("my mom may come to the next session", "may"),
    ("i'm sad and tired today", "sad"),
    ("this is hard for her", "hard"),
    ("Seen in room 12 on the unit", "12"),
    ("walked at first and then ran", "first"),
    ("Employee ID badge was returned", "Employee"),
    ("Location: Medically supervised withdrawal unit", "Medically"),
    ("continue venlafaxine XR 225 mg daily", "XR"),
    ("Setting: community behavioral health", "Setting"),
]


@pytest.mark.parametrize(("text", "value", "category"), POSITIVES)
def test_recognizer_positive(engine, text, value, category):
    start = text.index(value)
    spans = engine.analyze([text])[0]
    covering = [s for s in spans if s.start <= start and s.end >= start + len(value)]
    assert covering, f"{value!r} not found; got {found(engine, text)}"
    assert covering[0].type == category, found(engine, text)
    assert covering[0].recognizer and 0 < covering[0].score <= 1


@pytest.mark.parametrize(("text", "value"), NEGATIVES)
def test_recognizer_hard_negative(engine, text, value):
    start = text.index(value)
    spans = engine.analyze([text])[0]
    assert not [s for s in spans if s.start < start + len(value) and s.end > start], found(
        engine, text
    )


def test_every_entity_a_recognizer_emits_has_a_category(engine):
    from auditkit.phi.engine import NER_MAPPING
    from auditkit.phi.recognizers import emitted_entities
    from auditkit.phi.rules import CATEGORIES

    for recognizer in engine.analyzer.registry.recognizers:
        for entity in recognizer.supported_entities:
            assert engine.rules.category_of(entity) in CATEGORIES, (recognizer.name, entity)
    for entity in emitted_entities(engine.rules, sorted(set(NER_MAPPING.values()))):
        assert engine.rules.category_of(entity) in CATEGORIES, entity


def test_spans_do_not_overlap_and_stay_inside_the_text(engine):
    text = "Pt OKAFOR, MARIA (MRN 00482913), DOB 4/22/1961, fax (614) 555-0103, seen by Dr. Reyes."
    spans = engine.analyze([text])[0]
    for a, b in itertools.pairwise(spans):
        assert a.end <= b.start
    assert all(0 <= s.start < s.end <= len(text) for s in spans)


def _corpus(tmp_path, name, rows):
    import json

    p = tmp_path / name
    p.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows))
    return p


RAW = ["Maria Okafor", "00482913", "614-555-0182", "04/22/1961", "m.okafor@kestrelmail.com"]


def test_check_output_never_contains_raw_phi(tmp_path):
    from auditkit.checks.phi import PhiCheck
    from auditkit.pipeline import run_single_check

    syn = _corpus(
        tmp_path,
        "syn.jsonl",
        [
            ("a", "Patient Maria Okafor, MRN 00482913, DOB 04/22/1961, cell 614-555-0182."),
            ("b", "Email m.okafor@kestrelmail.com. PHQ-9 19 on sertraline 50 mg."),
            ("c", "Low mood for 3 weeks; sleeping better on sertraline 50 mg."),
        ],
    )
    src = _corpus(
        tmp_path, "src.jsonl", [("r1", "Name: Maria Okafor MRN 00482913 ph 614-555-0182")]
    )
    check_result = run_single_check(PhiCheck, syn, source=src)
    out = canonical_json(check_result)
    for value in RAW:
        assert value not in out
        assert value.replace("-", "") not in out
    assert "[NAME#" in out and "[MRN#" in out
    assert check_result.metric("records_with_phi").value == 2
    assert check_result.metric("source_reuse_records").value == 1
    assert check_result.metric("severe_reuse_records").value == 1
    assert check_result.metric("spans[MRN]").value == 1
    assert check_result.records["a"].values["source_reuse"] >= 3
    assert check_result.records["c"].values == {"spans": 0, "source_reuse": 0, "severe_reuse": 0}
    reuse = [f for f in check_result.records["a"].findings if f.kind == "phi_severe_source_reuse"]
    assert reuse and all(f.related_id == "r1" for f in reuse)


def test_without_source_reuse_metrics_are_absent(tmp_path):
    from auditkit.checks.phi import PhiCheck
    from auditkit.pipeline import run_single_check

    syn = _corpus(tmp_path, "syn.jsonl", [("a", "Seen by Dr. Samuel Reyes on 3/14/2024.")])
    result = run_single_check(PhiCheck, syn)
    assert result.status == "ok" and "no --source" in result.reason
    assert result.metric("source_reuse_records").value is None


def test_models_records_name_version_and_weights_digest(engine):
    from auditkit.checks.phi import PhiCheck

    check = PhiCheck()
    check.engine_spec()
    [model] = check.models()
    assert model["name"] == engine.spec.model
    assert len(model["sha256"]) == 64 and model["version"]
    assert check.models() == [model]  # deterministic digest


def test_missing_model_says_what_to_install():
    from auditkit.errors import ModelUnavailableError
    from auditkit.phi.engine import resolve_model

    with pytest.raises(ModelUnavailableError, match="en_core_web_xx") as exc:
        resolve_model("en_core_web_xx")
    assert "pip install en_core_web_xx" in str(exc.value)


def test_context_word_before_a_match_raises_its_score(engine):
    plain = engine.analyze(["reach 614-555-0182 tomorrow"])[0]
    with_context = engine.analyze(["phone 614-555-0182 tomorrow"])[0]
    assert [s.type for s in plain] == [s.type for s in with_context] == ["PHONE"]
    assert with_context[0].score > plain[0].score


def test_reduced_pipeline_gives_the_same_entities_as_the_full_one(engine):
    """The engine drops parser, attribute ruler and lemmatizer; NER must not change."""
    import spacy

    texts = [
        "Maria Okafor was seen at Mercy Ridge Hospital in Columbus on March 3 by Dr. Lee.",
        "Lives with husband Ade in Whitlow; works for Tamsin County Emergency Communications.",
    ]
    full = spacy.load(engine.spec.model)
    reduced = engine.nlp_engine.nlp["en"]
    assert reduced.pipe_names == ["ner"]
    for a, b in zip(full.pipe(texts), reduced.pipe(texts), strict=True):
        assert [(e.start_char, e.end_char, e.label_) for e in a.ents] == [
            (e.start_char, e.end_char, e.label_) for e in b.ents
        ]


def test_window_tags_equal_whole_document_tags(engine, fixtures_dir):
    """The tagger on a window of radius tokens each side gives each token its document tag."""
    import json

    import spacy

    docs = [
        json.loads(line)["text"]
        for line in (fixtures_dir / "phi_benchmark" / "documents.jsonl").read_text().splitlines()
    ][:30]
    # a tokenizer exception with its own norm ("w/o" -> "without") and a split "5pm"
    docs.append("Major depressive episode, severe w/o psychotic features; call after 5pm.")
    full = spacy.load(engine.spec.model)
    reduced = engine.nlp_engine.nlp["en"]
    assert engine.tagger is not None and engine.tagger.radius == 4
    tokens = 0
    for whole, doc in zip(full.pipe(docs), reduced.pipe(docs), strict=True):
        assert [engine.tagger.tag(doc, t.i) for t in doc] == [t.tag_ for t in whole]
        tokens += len(doc)
    assert tokens > 5000
