import json

import pytest

from auditkit.corpus import FieldMap, load_corpus, normalize_code
from auditkit.errors import CorpusError, UsageError


def write(tmp_path, name, content: bytes | str):
    p = tmp_path / name
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    return p


def jl(*objs):
    return "".join(json.dumps(o) + "\n" for o in objs)


def test_jsonl_loads_records_codes_and_meta(tmp_path):
    p = write(
        tmp_path,
        "s.jsonl",
        jl(
            {"id": "a", "text": "Low mood.", "icd10": "f321", "genre": "note"},
            {"id": 2, "text": "Worry.", "icd10": ["F41.1", "F32.1", "F41.1"]},
        ),
    )
    c = load_corpus(p)
    assert [r.id for r in c] == ["a", "2"]
    assert c.records[0].codes == ("F32.1",)
    assert c.records[1].codes == ("F41.1", "F32.1")
    assert c.records[0].meta == {"genre": "note"}
    assert len(c.sha256) == 64 and c.size_bytes == p.stat().st_size


def test_blank_lines_and_crlf_are_fine(tmp_path):
    p = write(tmp_path, "s.jsonl", '{"id":"a","text":"x"}\r\n\r\n{"id":"b","text":"y"}\r\n')
    assert load_corpus(p).ids == ["a", "b"]


def test_field_remapping(tmp_path):
    p = write(tmp_path, "s.jsonl", jl({"rid": "a", "body": "Low mood.", "dx": "F32.1"}))
    c = load_corpus(p, fields=FieldMap(id="rid", text="body", codes="dx"))
    assert c.records[0].id == "a" and c.records[0].codes == ("F32.1",)


def test_csv_and_txt_folder(tmp_path):
    p = write(tmp_path, "s.csv", 'id,text,icd10\na,"Low, flat mood.",F32.1;F41.1\nb,Worry,\n')
    c = load_corpus(p)
    assert c.format == "csv" and c.records[0].codes == ("F32.1", "F41.1")
    assert c.records[0].text == "Low, flat mood."
    d = tmp_path / "txt"
    d.mkdir()
    (d / "r2.txt").write_text("two")
    (d / "r1.txt").write_text("one")
    (d / "notes.md").write_text("ignored: not a .txt")
    c = load_corpus(d)
    assert c.ids == ["r1", "r2"] and c.format == "txt"


BAD_JSONL = [
    ("invalid json", '{"id":"a","text":"x"}\n{"id": "b", "text": }\n', 2, None, "invalid JSON"),
    ("not an object", '["a"]\n', 1, None, "expected a JSON object"),
    ("missing text", '{"id":"a"}\n', 1, "text", "missing text"),
    ("empty text", '{"id":"a","text":"   "}\n', 1, "text", "text is empty"),
    ("text not a string", '{"id":"a","text":5}\n', 1, "text", "must be a string"),
    ("missing id", '{"text":"x"}\n', 1, "id", "missing record id"),
    (
        "duplicate id",
        '{"id":"a","text":"x"}\n{"id":"b","text":"y"}\n{"id":"a","text":"z"}\n',
        3,
        "id",
        "duplicate id 'a' \\(first seen at line 1\\)",
    ),
    ("bad code", '{"id":"a","text":"x","icd10":"banana"}\n', 1, "icd10", "not an ICD-10 code"),
    ("bad code type", '{"id":"a","text":"x","icd10":5}\n', 1, "icd10", "codes must be"),
]


@pytest.mark.parametrize(
    ("case", "content", "line", "field", "message"), BAD_JSONL, ids=[c[0] for c in BAD_JSONL]
)
def test_bad_jsonl_names_file_line_and_field(tmp_path, case, content, line, field, message):
    p = write(tmp_path, "bad.jsonl", content)
    with pytest.raises(CorpusError, match=message) as info:
        load_corpus(p)
    err = info.value
    assert err.exit_code == 2
    assert err.path == str(p) and err.line == line and err.field == field
    assert f"bad.jsonl, line {line}" in str(err)


def test_non_utf8_names_line(tmp_path):
    p = write(tmp_path, "bad.jsonl", b'{"id":"a","text":"x"}\n{"id":"b","text":"caf\xe9"}\n')
    with pytest.raises(CorpusError, match=r"line 2: bytes are not valid UTF-8") as info:
        load_corpus(p)
    assert "iconv" in str(info.value)


def test_line_over_size_limit(tmp_path):
    p = write(tmp_path, "big.jsonl", jl({"id": "a", "text": "x" * 500}))
    with pytest.raises(CorpusError, match=r"line 1: record is 5\d\d bytes, over the limit of 100"):
        load_corpus(p, max_record_bytes=100)


def test_empty_corpus(tmp_path):
    p = write(tmp_path, "empty.jsonl", "\n\n")
    with pytest.raises(CorpusError, match="has no records"):
        load_corpus(p)


def test_missing_path_is_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        load_corpus(tmp_path / "nope.jsonl", "source")


def test_csv_missing_column_and_ragged_row(tmp_path):
    p = write(tmp_path, "s.csv", "rid,text\na,x\n")
    with pytest.raises(CorpusError, match="no column 'id'"):
        load_corpus(p)
    p = write(tmp_path, "r.csv", "id,text\na,x,extra\n")
    with pytest.raises(CorpusError, match="line 2: the row has more cells"):
        load_corpus(p)


def test_csv_non_utf8(tmp_path):
    p = write(tmp_path, "s.csv", b"id,text\na,ok\nb,caf\xe9\n")
    with pytest.raises(CorpusError, match="line 3: bytes are not valid UTF-8"):
        load_corpus(p)


def test_txt_folder_non_utf8_names_file(tmp_path):
    d = tmp_path / "txt"
    d.mkdir()
    (d / "r1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(CorpusError, match=r"r1\.txt: bytes are not valid UTF-8"):
        load_corpus(d)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("F32.1", "F32.1"),
        ("f321", "F32.1"),
        (" F43.10 ", "F43.10"),
        ("F20", "F20"),
        ("Z91.19", "Z91.19"),
    ],
)
def test_normalize_code(raw, code):
    assert normalize_code(raw) == code


@pytest.mark.parametrize("raw", ["", "32.1", "FF1", "F32.12345", "depression"])
def test_normalize_code_rejects(raw):
    with pytest.raises(ValueError):
        normalize_code(raw)


def test_error_messages_never_echo_record_text(tmp_path):
    secret = "Maria Okafor SSN 123-45-6789"
    p = write(tmp_path, "bad.jsonl", json.dumps({"id": "a", "text": secret, "icd10": 7}) + "\n")
    with pytest.raises(CorpusError) as info:
        load_corpus(p)
    assert "Okafor" not in str(info.value)
