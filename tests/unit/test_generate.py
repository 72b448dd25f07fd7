"""Audit-first generation: parsing, reasoning stripping, the screen, quarantine and resume."""

import json
import random
from pathlib import Path

import pytest

from auditkit import generate as gen
from auditkit.errors import UsageError
from auditkit.generators import Generator

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


# -- small pure pieces ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("F32.1:200,F41.1:150", {"F32.1": 200, "F41.1": 150}),
        ("f321:2", {"F32.1": 2}),
        (" F43.10:1 , F20.9:3 ,", {"F43.10": 1, "F20.9": 3}),
    ],
)
def test_parse_codes(value, expected):
    assert gen.parse_codes(value) == expected
    assert list(gen.parse_codes(value)) == list(expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("F32.1", "no ':COUNT'"),
        ("F32.1:0", "positive integer"),
        ("F32.1:x", "positive integer"),
        ("banana:3", "not an ICD-10 code"),
        ("F32.1:1,f321:2", "twice"),
        (",", "empty"),
    ],
)
def test_parse_codes_rejects(value, message):
    with pytest.raises(UsageError, match=message):
        gen.parse_codes(value)


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        (
            "<think>plan the report</think>\nChief complaint: low mood.",
            "Chief complaint: low mood.",
        ),
        ("Let me think.\nOK.</think>Report body.", "Report body."),
        ("<THINK>a</THINK>x<think>b</think>y", "xy"),
        ("<think>ran out of tokens while thinking", ""),
        ("Report.\n<think>trailing thoughts", "Report."),
        ("No reasoning here.", "No reasoning here."),
        ("<thinking>also this form</thinking> Body", "Body"),
    ],
)
def test_strip_reasoning(raw, kept):
    assert gen.strip_reasoning(raw) == kept


def test_attempt_seeds_are_stable_and_distinct():
    a = gen.attempt_seed(7, "gen-F32.1-0001", 0)
    assert a == gen.attempt_seed(7, "gen-F32.1-0001", 0)
    others = {gen.attempt_seed(7, "gen-F32.1-0001", 1), gen.attempt_seed(8, "gen-F32.1-0001", 0),
              gen.attempt_seed(7, "gen-F32.1-0002", 0)}  # fmt: skip
    assert a not in others and len(others) == 3
    assert 0 <= a < 2**31


def test_slot_ids_follow_the_request_order():
    assert gen.slot_ids({"F41.1": 2, "F32.1": 1}) == [
        ("gen-F41.1-0001", "F41.1"),
        ("gen-F41.1-0002", "F41.1"),
        ("gen-F32.1-0001", "F32.1"),
    ]


def test_a_torn_last_line_is_cut_and_earlier_damage_is_an_error(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3')
    assert gen._read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n'
    path.write_text('{"a": 1}\n{"a": 2}')  # valid JSON but no newline: still torn
    assert gen._read_jsonl(path) == [{"a": 1}]
    path.write_text('{"a": 1}\nnot json\n{"a": 3}\n')
    with pytest.raises(UsageError, match="line 2"):
        gen._read_jsonl(path)


def test_length_bounds_follow_the_source():
    from auditkit.corpus import load_corpus

    lo, hi = gen.length_bounds(load_corpus(FIXTURES / "source.jsonl", "source"))
    assert 20 <= lo < 200 and 500 < hi < 3000
    assert gen.length_bounds(None) == (100, 3000)


# -- prompts --------------------------------------------------------------------------


def _builder(tmp_path, template=None, examples=2):
    from auditkit.corpus import load_corpus
    from auditkit.icd10 import load_codes

    path = template or gen.default_prompt("chat")
    source = load_corpus(FIXTURES / "source.jsonl", "source")
    return gen.PromptBuilder(Path(path), load_codes(), source, examples), source


def test_chat_prompt_has_title_criteria_and_seeded_examples(tmp_path):
    builder, source = _builder(tmp_path)
    prompt, opening, ids = builder.render("F32.1", random.Random(3))
    assert "F32.1" in prompt and "depressive" in prompt.lower()
    assert opening == ""
    assert len(ids) == 2
    texts = {r.id: r for r in source}
    assert all(texts[i].primary_code == "F32.1" for i in ids)
    assert all(texts[i].text in prompt for i in ids)
    assert builder.render("F32.1", random.Random(3))[2] == ids


def test_completion_prompt_keeps_its_opening(tmp_path):
    builder, _ = _builder(tmp_path, gen.default_prompt("completion"), examples=0)
    prompt, opening, ids = builder.render("F41.1", random.Random(0))
    assert ids == [] and opening and prompt.endswith(opening)
    assert gen.REPORT_MARKER not in prompt and "F41.1" in opening


def test_a_broken_template_is_a_located_usage_error(tmp_path):
    bad = tmp_path / "bad.j2"
    bad.write_text("line one\n{% for x in %}\n")
    with pytest.raises(UsageError, match=r"bad.j2, line 2"):
        _builder(tmp_path, bad)
    unknown = tmp_path / "unknown.j2"
    unknown.write_text("{{ patient_name }}")
    builder, _ = _builder(tmp_path, unknown)
    with pytest.raises(UsageError, match="patient_name"):
        builder.render("F32.1", random.Random(0))


# -- the screen and the loop, with a generator that plants failures --------------------


class PlantingGenerator(Generator):
    """Answers with realistic reports and plants known failures.

    ``plan`` maps ``(slot, attempt)`` to the failure planted there (absent: a good
    report). Each attempt's good report is a distinct text of ``bank`` chosen from the slot's
    position and the attempt, so the planted outcome never depends on call order.
    """

    spec = "test:planting"

    def __init__(self, bank, copy_from, plan, seed=0):
        self.bank = bank  # screen-clean texts, no two near-copies
        self.copy_from = copy_from  # a rare source passage
        self.plan = plan
        self.seed = seed
        self.by_seed = {}
        self.calls = 0

    def register(self, slots, max_attempts):
        for position, (slot, _code) in enumerate(slots):
            for attempt in range(max_attempts):
                seed = gen.attempt_seed(self.seed, slot, attempt)
                self.by_seed[seed] = (slot, position, attempt)
        self.positions = {slot: p for p, (slot, _c) in enumerate(slots)}

    def good(self, position, attempt):
        return self.bank[(position * 3 + attempt) % len(self.bank)]

    def describe(self):
        return {"name": "planting"}

    def score(self, texts):
        raise NotImplementedError

    def generate(self, prompts, params):
        self.calls += 1
        slot, position, attempt = self.by_seed[params.seed]
        kind = self.plan.get((slot, attempt), "")
        good = self.good(position, attempt)
        if kind == "phone":
            text = good + "\nThe patient can be reached at (617) 555-0143 after work."
        elif kind == "copy":
            text = good + "\n" + self.copy_from
        elif kind.startswith("duplicate:"):
            text = self.good(self.positions[kind.split(":", 1)[1]], 0)
        elif kind == "short":
            text = "Patient seen. Doing fine."
        elif kind == "think":
            text = "<think>The patient is fictional; plan sections.</think>\n" + good
        else:
            text = good
        return [text]


@pytest.fixture(scope="module")
def screen_parts():
    """The default policy, a context with the fixture source, and screen-clean texts."""
    from auditkit import signing
    from auditkit.corpus import Corpus, Record, load_corpus
    from auditkit.executor import LocalExecutor
    from auditkit.pipeline import AuditInputs, make_context
    from auditkit.policy import load_policy
    from auditkit.resources import resolve_policy

    policy = load_policy(resolve_policy("default"))
    source = load_corpus(FIXTURES / "source.jsonl", "source")
    clean = load_corpus(FIXTURES / "synthetic_clean.jsonl", "synthetic")
    inputs = AuditInputs(
        synthetic=Corpus("synthetic", "<g>", "jsonl", "", 0, ()), source=source, holdout=None
    )
    executor = LocalExecutor(1)
    context = make_context(inputs, 0, executor, signing.demo_identity(), False)
    # Realistic reports that pass the screen on their own (the generator's "good" answers).
    probe = gen.RecordScreen(policy, context, 20, 5000)
    candidates = list(clean)[:40]
    verdicts = probe.screen(
        [Record(id=f"probe-{i}", text=r.text, codes=r.codes) for i, r in enumerate(candidates)]
    )
    bank = [r.text for r, v in zip(candidates, verdicts, strict=True) if not v]
    assert len(bank) >= 21, "too few screen-clean fixture texts for distinct answers"
    # A rare passage of a source report: one the leaky fixture copies verbatim (labels).
    labels = [json.loads(x) for x in (FIXTURES / "synthetic_leaky.labels.jsonl").open()]
    plant = next(p for lab in labels for p in lab["planted"]
                 if p["kind"] == "verbatim_copy" and p["tokens"] >= 35)  # fmt: skip
    text = next(r.text for r in source if r.id == plant["source_id"])
    passage = text[plant["source_start"] : plant["source_end"]]
    yield policy, context, bank, passage
    executor.close()


def _settings(**kw):
    base = dict(
        codes={"F32.1": 4, "F41.1": 3}, generator="test:planting", mode="completion",
        prompt="p", prompt_sha256="x", examples=0, temperature=0.7, max_tokens=10, seed=0,
        max_attempts=3, min_words=60, max_words=3000, policy_sha256="p",
        source_sha256=None, holdout_sha256=None,
    )  # fmt: skip
    base.update(kw)
    return gen.Settings(**base)


PLAN = {
    ("gen-F32.1-0001", 0): "phone",
    ("gen-F32.1-0002", 0): "copy",
    ("gen-F32.1-0002", 1): "short",
    ("gen-F32.1-0004", 0): "duplicate:gen-F32.1-0003",
    ("gen-F41.1-0001", 0): "think",
    ("gen-F41.1-0002", 0): "copy",
    ("gen-F41.1-0002", 1): "copy",
    ("gen-F41.1-0002", 2): "copy",
}
EXPECTED_GATES = {
    ("gen-F32.1-0001", 1): ["phi"],
    ("gen-F32.1-0002", 1): ["copied-passage"],
    ("gen-F32.1-0002", 2): ["length"],
    ("gen-F32.1-0004", 1): ["near-duplicate"],
    ("gen-F41.1-0002", 1): ["copied-passage"],
    ("gen-F41.1-0002", 2): ["copied-passage"],
    ("gen-F41.1-0002", 3): ["copied-passage"],
}


def _run(tmp_path, parts, settings, interrupt_after=None, folder="run"):
    from auditkit.checks.base import CheckContext  # noqa: F401  (context type)

    policy, context, bank, passage = parts
    g = PlantingGenerator(bank, passage, PLAN, seed=settings.seed)
    g.register(gen.slot_ids(settings.codes), settings.max_attempts)
    builder = gen.PromptBuilder(gen.default_prompt("completion"), _codebook(), None, 0)
    screen = gen.RecordScreen(policy, context, settings.min_words, settings.max_words)
    waves = {"n": 0}

    def on_wave(_n):
        waves["n"] += 1
        if interrupt_after is not None and waves["n"] == interrupt_after:
            raise KeyboardInterrupt

    out = tmp_path / folder
    summary = gen.run_generation(
        settings, out, g, builder, screen, concurrency=2, progress=False, on_wave=on_wave
    )
    return summary, out, g


def _codebook():
    from auditkit.icd10 import load_codes

    return load_codes()


def test_planted_failures_are_quarantined_with_the_right_gates(tmp_path, screen_parts):
    summary, out, _ = _run(tmp_path, screen_parts, _settings())
    rows = list(gen.iter_quarantine(out))
    got = {(r["slot"], r["attempt"]): r["gates"] for r in rows}
    assert got == EXPECTED_GATES
    kept = [json.loads(line) for line in (out / gen.KEPT_FILE).read_text().splitlines()]
    assert sorted(r["id"] for r in kept) == sorted(
        s for s, _ in gen.slot_ids(_settings().codes) if s != "gen-F41.1-0002"
    )
    assert summary.exhausted == ["gen-F41.1-0002"] and summary.exit_code == 1
    # The reasoning block was stripped, and nothing raw reached the quarantine file.
    think = next(r for r in kept if r["id"] == "gen-F41.1-0001")
    assert "<think>" not in think["text"] and "fictional; plan" not in think["text"]
    text = (out / gen.QUARANTINE_FILE).read_text()
    assert "555-0143" not in text and screen_parts[3][:40] not in text
    assert all("text" not in r and len(r["text_sha256"]) == 64 for r in rows)
    phi_reason = next(r for r in rows if r["gates"] == ["phi"])["reasons"][0]
    assert "PHONE" in phi_reason and "[PHONE#" in phi_reason


def test_interrupted_runs_resume_to_the_same_files(tmp_path, screen_parts):
    whole, whole_out, _ = _run(tmp_path, screen_parts, _settings(), folder="whole")
    for stop in (1, 3, 5):
        folder = f"cut{stop}"
        with pytest.raises(KeyboardInterrupt):
            _run(tmp_path, screen_parts, _settings(), interrupt_after=stop, folder=folder)
        # A crash mid-write leaves a torn line; the resumed run must cut and redo it.
        with open(tmp_path / folder / gen.KEPT_FILE, "a") as fh:
            fh.write('{"id": "gen-F32.1-00')
        _resumed, out, g = _run(tmp_path, screen_parts, _settings(), folder=folder)
        for name in (gen.KEPT_FILE, gen.QUARANTINE_FILE):
            assert (out / name).read_bytes() == (whole_out / name).read_bytes(), (stop, name)
        ids = [json.loads(x)["id"] for x in (out / gen.KEPT_FILE).read_text().splitlines()]
        assert len(ids) == len(set(ids)) == whole.kept
        assert g.calls < whole.attempts  # the resumed run did not redo settled attempts


def test_a_run_folder_refuses_other_settings(tmp_path, screen_parts):
    _run(tmp_path, screen_parts, _settings(codes={"F32.1": 1}))
    with pytest.raises(UsageError, match="codes"):
        _run(tmp_path, screen_parts, _settings(codes={"F32.1": 2}))
    with pytest.raises(UsageError, match="temperature"):
        _run(tmp_path, screen_parts, _settings(codes={"F32.1": 1}, temperature=0.2))


def test_a_failing_server_stops_the_run_with_the_work_kept(tmp_path, screen_parts):
    from auditkit.generators import GeneratorError

    policy, context, bank, passage = screen_parts

    class Flaky(PlantingGenerator):
        def generate(self, prompts, params):
            if self.calls >= 2:
                raise GeneratorError("server answered 503 five times")
            return super().generate(prompts, params)

    settings = _settings(codes={"F32.1": 4})
    g = Flaky(bank, passage, {}, seed=0)
    g.register(gen.slot_ids(settings.codes), 3)
    builder = gen.PromptBuilder(gen.default_prompt("completion"), _codebook(), None, 0)
    screen = gen.RecordScreen(policy, context, 60, 3000)
    with pytest.raises(gen.GenerationStopped, match="503") as err:
        gen.run_generation(settings, tmp_path / "r", g, builder, screen, progress=False)
    assert err.value.exit_code == 3 and "run the same command again" in str(err.value)
    assert len((tmp_path / "r" / gen.KEPT_FILE).read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--codes", "F32.1", "--generator", "fixture"], "no ':COUNT'"),
        (["--codes", "F32.1:2", "--generator", "gpt4"], "generator"),
        (["--codes", "F32.1:2", "--generator", "fixture", "--examples", "2"], "needs --source"),
    ],
)
def test_generate_command_usage_errors_exit_2(tmp_path, args, message):
    from click.testing import CliRunner

    from auditkit.cli import main

    result = CliRunner().invoke(main, ["generate", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "o").exists()
