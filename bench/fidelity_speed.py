"""Time of the fidelity check on 1,000 synthetic vs 3,000 source reports, stage by stage.

Reproduce:
    .venv/bin/python bench/fidelity_speed.py [--synthetic 1000] [--source 3000] [--seed 0]
        [--workers 1] [--full] [--embed-sample 100]

Corpora (generated in memory with the fixture builder's own functions, seeded, written to a
temporary folder): source reports from ``fixtures/build_fixtures.build_real`` (clinician
register, fictional identifiers), synthetic reports from ``compose_sized`` in the "llm"
register with ``make_synthetic_patient``, codes from the builder's ``code_schedule`` (19
codes, balanced), as the shipped fixtures are built but without the overlap rejection.

Stages timed inside one run of the check (wall seconds): reading both corpora (tokens and
criteria with ConText), code agreement (cross-validated ceiling + fit + predict), TSTR,
coverage, and the embedding distribution test. Embedding dominates and is cached by text
digest, so the distribution test is measured twice:

* default: the check runs with embeddings on a fresh cache for ``--embed-sample`` reports
  only, the per-report cold and warm (cached) embedding times are measured on that sample,
  and the full-size embedding stage is extrapolated linearly and labelled so;
* ``--full``: the whole check runs twice, first on an empty cache (cold), then again
  (warm), and both are measured end to end.

The load average is printed: the machine is shared, and figures measured under load are
pessimistic. A benchmark: it prints measured figures and never asserts them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "fixtures"))

STAGES = ("_analyse", "_agreement", "_tstr", "_coverage", "_distribution")


def build_corpora(n_syn: int, n_src: int, seed: int, out: Path) -> tuple[Path, Path]:
    import build_fixtures as B

    world = B.make_world(seed)
    world["people"] = B.People(seed, "patients")
    source, _, _ = B.build_real(seed, world, "bench-source", "src", n_src)
    rng = B.stream(seed, "bench-synthetic/compose")
    synthetic = []
    for i, code in enumerate(B.code_schedule(B.stream(seed, "bench-synthetic/codes"), n_syn)):
        genre, setting = B.pick_genre_setting(rng, code)
        text, _, sec = B.compose_sized(
            rng, "llm", code, genre, setting, B.make_synthetic_patient(rng, code)
        )
        synthetic.append({"id": f"syn-{i + 1:05d}", "text": text, "icd10": [code, *sec]})
    paths = []
    for name, rows in (("synthetic", synthetic), ("source", source)):
        path = out / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths.append(path)
    return paths[0], paths[1]


def timed_run(syn: Path, src: Path, seed: int, workers: int, embeddings: bool):
    """Run the check once; return (total seconds, {stage: seconds}, result)."""
    from auditkit.checks.base import CheckContext
    from auditkit.checks.fidelity import FidelityCheck, FidelityConfig
    from auditkit.corpus import load_corpus
    from auditkit.executor import LocalExecutor
    from auditkit.masking import Masker
    from auditkit.progress import Progress

    spent: dict[str, float] = defaultdict(float)
    originals = {name: getattr(FidelityCheck, name) for name in STAGES}

    def wrap(name, fn):
        def inner(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t

        return inner

    for name, fn in originals.items():
        setattr(FidelityCheck, name, wrap(name, fn))
    try:
        t0 = time.perf_counter()
        synthetic, source = load_corpus(syn, "synthetic"), load_corpus(src, "source")
        spent["load corpora"] = time.perf_counter() - t0
        with LocalExecutor(workers) as executor:
            context = CheckContext(
                synthetic=synthetic,
                source=source,
                seed=seed,
                executor=executor,
                masker=Masker(b"bench" * 8),
                progress=Progress(False),
            )
            result = FidelityCheck(FidelityConfig(embeddings=embeddings)).run(context)
        return time.perf_counter() - t0, dict(spent), result
    finally:
        for name, fn in originals.items():
            setattr(FidelityCheck, name, fn)


def embed_rates(texts: list[str]) -> tuple[float, float]:
    """Seconds per report to embed on an empty cache, and to read back from the cache."""
    from auditkit import embeddings

    embeddings.embed(texts[:2])  # load the model outside the measurement
    t = time.perf_counter()
    embeddings.embed(texts[2:])
    cold = (time.perf_counter() - t) / max(1, len(texts) - 2)
    t = time.perf_counter()
    embeddings.embed(texts[2:])
    warm = (time.perf_counter() - t) / max(1, len(texts) - 2)
    return cold, warm


def report(label: str, total: float, spent: dict[str, float]) -> None:
    print(f"\n{label}: {total:.1f} s")
    names = {
        "load corpora": "load + validate both corpora",
        "_analyse": "tokens + criteria (ConText), both corpora",
        "_agreement": "code agreement (CV ceiling, fit, predict)",
        "_tstr": "TSTR / TRTR",
        "_coverage": "criteria coverage + bootstrap",
        "_distribution": "embeddings + detection AUC",
    }
    for key, text in names.items():
        if key in spent:
            print(f"  {text:<46} {spent[key]:8.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--synthetic", type=int, default=1000)
    ap.add_argument("--source", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--full", action="store_true", help="embed everything, cold then warm")
    ap.add_argument("--embed-sample", type=int, default=100)
    args = ap.parse_args()

    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AUDITKIT_CACHE_DIR"] = str(Path(tmp) / "cache")
        t = time.perf_counter()
        syn, src = build_corpora(args.synthetic, args.source, args.seed, Path(tmp))
        print(
            f"built {args.synthetic} synthetic and {args.source} source reports "
            f"in {time.perf_counter() - t:.1f} s"
        )
        if args.full:
            total, spent, result = timed_run(syn, src, args.seed, args.workers, embeddings=True)
            report("cold cache (every report embedded)", total, spent)
            total, spent, result = timed_run(syn, src, args.seed, args.workers, embeddings=True)
            report("warm cache (embeddings read back)", total, spent)
        else:
            total, spent, result = timed_run(syn, src, args.seed, args.workers, embeddings=False)
            report("without the embedding stage", total, spent)
            texts = [json.loads(line)["text"] for line in syn.open()][: args.embed_sample + 2]
            cold, warm = embed_rates(texts)
            n = args.synthetic + args.source
            print(
                f"\nembedding, measured on {len(texts) - 2} reports: {cold:.3f} s/report cold, "
                f"{warm * 1000:.2f} ms/report from the cache"
            )
            print(
                f"extrapolated to {n} reports: {cold * n:.0f} s cold, {warm * n:.1f} s warm "
                f"-> check total about {total + cold * n:.0f} s cold, {total + warm * n:.0f} s "
                "warm (plus the detection classifiers, a few seconds)"
            )
        value = lambda k: result.metric(k).value if result.metric(k) else None  # noqa: E731
        print(
            f"\nsanity: agreement {value('agreement_accuracy'):.3f}, ceiling "
            f"{value('ceiling_accuracy'):.3f}, TSTR {value('tstr_macro_f1'):.3f} vs TRTR "
            f"{value('trtr_macro_f1'):.3f}, coverage {value('coverage'):.3f} vs "
            f"{value('coverage_source'):.3f}, detection AUC {value('detection_auc')}"
        )
    print(f"load average at end: {os.getloadavg()}")
    print(
        "command: .venv/bin/python bench/fidelity_speed.py "
        f"--synthetic {args.synthetic} --source {args.source} --seed {args.seed} "
        f"--workers {args.workers}" + (" --full" if args.full else "")
    )


if __name__ == "__main__":
    main()
