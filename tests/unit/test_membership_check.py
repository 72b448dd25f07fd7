"""The membership check's logic with a deterministic fake generator (no model)."""

import json
import re

import pytest

from auditkit.checks.base import CheckContext
from auditkit.checks.membership import MembershipCheck, probe_summary
from auditkit.corpus import load_corpus
from auditkit.executor import LocalExecutor
from auditkit.generators import Generator, TokenScores
from auditkit.masking import Masker
from auditkit.progress import Progress

WORDS = [f"w{i}" for i in range(40)]


class FakeGenerator(Generator):
    """Scores every word of a known member ``member_lp``, others ``-2`` (with a small
    per-text offset), and continues a member's prompt with its true text when it memorises."""

    spec = "fake"

    def __init__(self, members, member_lp=-1.0, memorise=True):
        self.members = {t for t in members}
        self.member_lp = member_lp
        self.memorise = memorise

    def describe(self):
        return {"kind": "generator", "name": "fake", "revision": None, "sha256": None}

    @property
    def has_distribution(self):
        return True

    def score(self, texts):
        out = []
        for text in texts:
            spans = [m.span() for m in re.finditer(r"\S+", text)]
            jitter = (sum(map(ord, text)) % 97) / 1000
            lp = self.member_lp if text in self.members else -2.0
            n = len(spans)
            out.append(TokenScores((lp - jitter,) * n, tuple(spans), (-1.5,) * n, (1.0,) * n))
        return out

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            full = next((t for t in self.members if t.startswith(p)), None)
            out.append(full[len(p) :] if full is not None and self.memorise else " zz zz")
        return out


def _write(path, texts, prefix):
    path.write_text(
        "".join(
            json.dumps({"id": f"{prefix}-{i}", "text": t, "icd10": "F32.1"}) + "\n"
            for i, t in enumerate(texts)
        )
    )
    return load_corpus(path, prefix)


def _texts(seed, n, header="Note:"):
    import random

    rng = random.Random(seed)
    return [f"{header} " + " ".join(rng.choice(WORDS) for _ in range(90)) for _ in range(n)]


def _run(tmp_path, members, nonmembers, generator, seed=0, **config):
    source = _write(tmp_path / "source.jsonl", members, "source")
    holdout = _write(tmp_path / "holdout.jsonl", nonmembers, "holdout")
    context = CheckContext(
        synthetic=source, source=source, holdout=holdout, seed=seed,
        executor=LocalExecutor(1), masker=Masker(b"k" * 16), progress=Progress(False),
        generator=generator,
    )  # fmt: skip
    check = MembershipCheck(MembershipCheck.configure({"bootstrap": 200, **config}))
    return check.run(context), check


def test_skipped_without_a_generator(tmp_path):
    source = _write(tmp_path / "s.jsonl", _texts(1, 10), "source")
    context = CheckContext(
        synthetic=source, source=source, holdout=source, seed=0, executor=LocalExecutor(1),
        masker=Masker(b"k" * 16), progress=Progress(False),
    )  # fmt: skip
    assert "--generator" in MembershipCheck().missing_inputs(context)


def test_separable_generator_is_found_and_extracted(tmp_path):
    members, nonmembers = _texts(1, 40), _texts(2, 30)
    result, check = _run(tmp_path, members, nonmembers, FakeGenerator(members))
    s = probe_summary(result)
    assert s["attacks"]["loss"]["auc"] == 1.0 and s["worst_auc_ci"][0] > 0.9
    assert set(s["attacks"]) == {"loss", "zlib", "min_k", "min_k_pp"}
    ext = s["extraction"]
    assert ext["member_exact_rate"] == 1.0 and ext["nonmember_exact_rate"] == 0.0
    assert ext["member_prefix_tokens"] == 48 and ext["extracted_records"] == 40
    assert not s["probe_unreliable"]
    assert check.models()[0]["role"] == "generator"
    # evidence names records and offsets, never their text
    dumped = result.model_dump_json()
    assert all(t[20:60] not in dumped for t in members)


def test_no_signal_when_members_score_like_nonmembers(tmp_path):
    members, nonmembers = _texts(3, 40), _texts(4, 40)
    gen = FakeGenerator(members, member_lp=-2.0, memorise=False)
    s = probe_summary(_run(tmp_path, members, nonmembers, gen)[0])
    lo, hi = s["worst_auc_ci"]
    assert lo < 0.5 < hi
    assert s["extraction"]["extracted_records"] == 0
    assert s["records_needed"] is None or s["records_needed"] > 80


def test_template_continuations_do_not_count_as_extracted(tmp_path):
    members, nonmembers = _texts(5, 20), _texts(6, 20)
    # every member's text also sits inside a holdout record: reproducing it is no leak
    nonmembers = [m + " tail" for m in members]
    s = probe_summary(_run(tmp_path, members, nonmembers, FakeGenerator(members))[0])
    assert s["extraction"]["member_exact_rate"] == 1.0
    assert s["extraction"]["extracted_records"] == 0


def test_blind_baseline_fires_on_a_mismatched_split(tmp_path):
    members = _texts(7, 40, header="DISCHARGE SUMMARY, inpatient unit:")
    nonmembers = _texts(8, 40, header="Progress note:")
    result, _ = _run(tmp_path, members, nonmembers, FakeGenerator(members))
    s = probe_summary(result)
    assert s["blind_auc"] > 0.9 and s["probe_unreliable"]
    assert result.evidence[0].title.startswith("Probe unreliable")


def test_same_seed_same_result_other_seed_other_intervals(tmp_path):
    members, nonmembers = _texts(9, 40), _texts(10, 40)
    gen = FakeGenerator(members[:20], memorise=False)  # half the members leak
    one, _ = _run(tmp_path, members, nonmembers, gen, seed=1)
    two, _ = _run(tmp_path, members, nonmembers, gen, seed=1)
    other, _ = _run(tmp_path, members, nonmembers, gen, seed=2)
    assert one == two
    assert one.metric("auc[loss]").interval != other.metric("auc[loss]").interval


def test_curves_are_bounded_and_named(tmp_path):
    members, nonmembers = _texts(11, 30), _texts(12, 30)
    result, _ = _run(tmp_path, members, nonmembers, FakeGenerator(members), curve_points=10)
    names = {c.name for c in result.curves}
    assert names == {"roc:loss", "roc:zlib", "roc:min_k", "roc:min_k_pp", "roc:blind"}
    assert all(len(c.points) <= 10 for c in result.curves)


@pytest.mark.parametrize("bad", [{"min_k": 0}, {"bootstrap": 5}, {"nope": 1}])
def test_bad_config_is_rejected(bad):
    with pytest.raises(ValueError):
        MembershipCheck.configure(bad)
