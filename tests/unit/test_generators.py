"""Generator specs and the hf backend against a tiny random GPT-2 computed by hand."""

import math

import pytest

from auditkit.errors import UsageError
from auditkit.generators import GenerationParams, GeneratorError, load_generator, parse_spec
from auditkit.generators.base import cut_at_stop

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    ("spec", "kind", "target", "model"),
    [
        ("fixture", "fixture", "memorising", None),
        ("fixture:general", "fixture", "general", None),
        ("hf:./some/folder", "hf", "./some/folder", None),
        (
            "openai:http://localhost:8000/v1#org/model",
            "openai",
            "http://localhost:8000/v1",
            "org/model",
        ),
        ("openai:https://host/v1/#m", "openai", "https://host/v1", "m"),
    ],
)
def test_parse_spec(spec, kind, target, model):
    parsed = parse_spec(spec)
    assert (parsed.kind, parsed.target, parsed.model) == (kind, target, model)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpt2", "unknown kind 'gpt2'"),
        ("fixture:huge", "unknown fixture generator 'huge'"),
        ("hf:", "hf: needs a folder"),
        ("openai:http://localhost:8000/v1", "model name is missing"),
        ("openai:localhost:8000#m", "is not an http"),
        ("http://localhost:8000/v1", "openai:BASE_URL#MODEL"),
    ],
)
def test_bad_specs_name_the_problem(spec, message):
    with pytest.raises(UsageError, match=r"generator") as err:
        parse_spec(spec)
    assert message in str(err.value)
    assert err.value.exit_code == 2


def test_missing_or_broken_folders_are_clear_errors(tmp_path):
    with pytest.raises(GeneratorError, match="is not a folder"):
        load_generator(f"hf:{tmp_path / 'nope'}")
    with pytest.raises(GeneratorError, match=r"no config\.json"):
        load_generator(f"hf:{tmp_path}")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(GeneratorError, match="holds no weights"):
        load_generator(f"hf:{tmp_path}")


def test_cut_at_stop():
    assert cut_at_stop("abc\n\nDEF", ["\n\n", "X"]) == "abc"
    assert cut_at_stop("abc", []) == "abc"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, fixtures_dir):
    """A random 1-layer GPT-2 with a 16-token context and the general fixture's tokenizer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tok = AutoTokenizer.from_pretrained(fixtures_dir / "generator" / "general")
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(tok), n_positions=16, n_embd=16, n_layer=1, n_head=2,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _by_hand(folder, text, window_starts):
    """Log-probs and distribution stats of every token, from explicit windows."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(folder)
    model = GPT2LMHeadModel.from_pretrained(folder).eval()
    ids = [tok.bos_token_id, *tok(text, add_special_tokens=False)["input_ids"]]
    out = {}
    for start, first in window_starts:
        window = ids[start : start + 16]
        with torch.no_grad():
            logits = model(torch.tensor([window])).logits[0]
        for t in range(first, start + len(window)):
            if t in out:
                continue
            row = torch.log_softmax(logits[t - start - 1].double(), -1)
            p = row.exp()
            mean = float((p * row).sum())
            var = float((p * row * row).sum()) - mean**2
            out[t] = (float(row[ids[t]]), mean, math.sqrt(max(var, 0)))
    return [out[t] for t in sorted(out)], len(ids)


def test_short_texts_batched_and_padded_match_single_forward(tiny):
    gen = load_generator(f"hf:{tiny}", batch_size=4)
    texts = ["Pt denies SI/HI.", "Mood low, sleep poor for two weeks."]
    scores = gen.score(texts)
    for text, s in zip(texts, scores, strict=True):
        expected, n = _by_hand(tiny, text, [(0, 1)])
        assert len(s) == n - 1  # every token of the text, the first given BOS
        for got, want in zip(zip(s.logprobs, s.mean, s.std, strict=True), expected, strict=True):
            assert got == pytest.approx(want, abs=1e-4)
        # offsets tile the text
        assert s.offsets[0][0] == 0 and s.offsets[-1][1] == len(text)


def test_long_text_uses_the_sliding_window(tiny):
    gen = load_generator(f"hf:{tiny}", batch_size=3)
    text = "The patient reports low mood, poor sleep and reduced appetite over six weeks now."
    n = len(gen._tokenizer(text, add_special_tokens=False)["input_ids"]) + 1
    assert n > 24  # the windows below need at least three
    # context 16, stride 8: windows [0,16) score 1..15, [8,24) 16..23, [16,32) 24..31, ...
    hand = [(0, 1)] + [(s, s + 8) for s in range(8, n - 8, 8)]
    assert [(s, f) for s, _, f in gen.windows(n)] == hand
    expected, _ = _by_hand(tiny, text, hand)
    (s,) = gen.score([text])
    assert len(s) == n - 1
    for got, want in zip(zip(s.logprobs, s.mean, s.std, strict=True), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-4)


def test_greedy_generation_is_batch_independent_and_respects_max_tokens(tiny):
    gen = load_generator(f"hf:{tiny}", batch_size=4)
    prompts = ["Mood", "Patient reports poor sleep and"]
    params = GenerationParams(max_tokens=5, temperature=0)
    together = gen.generate(prompts, params)
    alone = [gen.generate([p], params)[0] for p in prompts]
    assert together == alone
    n_tokens = len(gen._tokenizer(together[0], add_special_tokens=False)["input_ids"])
    assert 1 <= n_tokens <= 6  # 5 tokens, re-tokenised


def test_sampling_is_seeded(tiny):
    gen = load_generator(f"hf:{tiny}")
    params = GenerationParams(max_tokens=8, temperature=1.0, seed=3)
    assert gen.generate(["Mood"], params) == gen.generate(["Mood"], params)


def test_describe_records_name_revision_and_weights_digest(fixtures_dir):
    gen = load_generator("fixture")
    info = gen.describe()
    assert info["name"] == "auditkit-fixture-memorising"
    assert info["revision"] and len(info["sha256"]) == 64
    assert info["spec"] == "fixture"
    assert load_generator("fixture:general").describe()["sha256"] != info["sha256"]
