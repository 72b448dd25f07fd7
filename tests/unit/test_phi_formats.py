"""Table-driven tests of the real-world formats added for recall: SSN "last four" and
unseparated labelled SSNs, the city and ZIP of a street address, names written after a
credential or role noun, sign-offs and e-mail display names. Each rule has positives and
negatives; the texts are invented, not taken from the benchmark."""

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    from auditkit.phi.engine import EngineSpec, get_engine, resolve_model

    return get_engine(EngineSpec(model=resolve_model()))


def found(engine, text):
    return [(text[s.start : s.end], s.type) for s in engine.analyze([text])[0]]


# (text, value that must be found, category)
POSITIVES = [
    # SSN: "last four of my social", and labelled SSNs in any separator style
    ("he gave the last four of his social, which is 5521.", "5521", "SSN"),
    ("Confirmed last 4 digits of her social security number: 0917", "0917", "SSN"),
    ("SSN 458221907 on file", "458221907", "SSN"),
    ("SSN: 078-05-1120", "078-05-1120", "SSN"),
    ("Social Security No. 312 44 9087", "312 44 9087", "SSN"),
    # the city and ZIP after a street address or PO box
    ("Send to 2250 Birch Ln, Pell Harbor 53211 by Friday.", "Pell Harbor", "LOCATION"),
    ("Send to 2250 Birch Ln, Pell Harbor 53211 by Friday.", "53211", "LOCATION"),
    ("Address: 3 Kestrel Way, Oakhollow (lives with son).", "Oakhollow", "LOCATION"),
    ("Remit to PO Box 552 · Dunmore Flats", "Dunmore Flats", "LOCATION"),
    # "City, PA 19312": PA before a ZIP is the state, not a physician assistant
    ("Mail: 18 Quarry Ln., North Sallow, PA 19312", "North Sallow", "LOCATION"),
    # a place after a residence phrase, a town after an establishment, a named street
    ("Lives alone in Brackett Hollow since the divorce.", "Brackett Hollow", "LOCATION"),
    ("She moved to Oak Tarn with her aunt.", "Oak Tarn", "LOCATION"),
    ("Attends Ridgeview Middle School, Camden Flats.", "Camden Flats", "LOCATION"),
    ("Rx sent to CVS #1123, Harwood Ave.", "Harwood Ave", "LOCATION"),
    # names after a credential or a lower-case role noun
    ("Med pass by RN Odette Lamarr at 0800.", "Odette Lamarr", "NAME"),
    ("Brought in by school nurse Ilse Brandt after lunch.", "Ilse Brandt", "NAME"),
    ("Call placed to his landlord Orrin Petty today.", "Orrin Petty", "NAME"),
    ("The Honorable Ines V. Carrow presiding.", "Ines V. Carrow", "NAME"),
    # sign-offs and e-mail display names
    ("Plan: follow up in 2 wks.\n\n—R.D.", "R.D", "NAME"),
    ("see you then\n\n- Tamsin", "Tamsin", "NAME"),
    ("thanks so much\n\nlena", "lena", "NAME"),
    ("Best regards,\nTomas Reyel", "Tomas Reyel", "NAME"),
    ("From: kit moreau <kitm@example.org>\nTo: Care Team", "kit moreau", "NAME"),
]

# (text, value that must NOT be found as that category)
NEGATIVES = [
    ("Her PHQ-9 was 14; the last 4 weeks were hard, 4471 steps a day.", "4471", "SSN"),
    ("the last four of her card are 0182", "0182", "SSN"),
    ("Problems:\n- Depression\n- Anxiety\n- Insomnia", "Insomnia", "NAME"),
    ("Plan:\n- Sleep hygiene\n- Walks", "Walks", "NAME"),
    ("RN Supervisor notified at 0300.", "Supervisor", "NAME"),
    ("Reviewed with nurse Practitioner Notes today.", "Practitioner Notes", "NAME"),
    ("Thank you for your help.", "help", "NAME"),
    ("Thanks,\nThe Care Team", "The Care", "NAME"),
    ("Signed Vera Kline, PA in clinic.", "Vera Kline", "LOCATION"),
    ("Lives at home with 2 Ave cats, Mostly Quiet.", "Mostly Quiet", "LOCATION"),
    ("Moved to Level 2 of the program.", "Level", "LOCATION"),
    ("Seen at Lakeview Clinic, Suite 200, for intake.", "Suite", "LOCATION"),
    ("Referred by Mercy Hospital, Dr. Osei.", "Dr", "LOCATION"),
]


@pytest.mark.parametrize(("text", "value", "category"), POSITIVES)
def test_new_format_is_found(engine, text, value, category):
    assert (value, category) in found(engine, text)


@pytest.mark.parametrize(("text", "value", "category"), NEGATIVES)
def test_look_alike_is_not_found(engine, text, value, category):
    assert all(not (v == value or value in v) or c != category for v, c in found(engine, text))
