"""Throughput of the phi check against its ceiling and Presidio's default engine.

Reproduce:
    .venv/bin/python bench/phi_speed.py [--docs 1000] [--words 350] [--model NAME] [--repeats 3]

Corpus: the 90 hand-labelled benchmark documents (fixtures/phi_benchmark) concatenated
in a fixed cyclic order and cut into reports of ``--words`` words (cut at a word
boundary with auditkit.text.prefix_end), until ``--docs`` reports exist. Every report is
therefore real clinical-style text with PHI at the benchmark's density.

Printed, in documents per second of wall-clock time and, for the runs inside this
process, documents per CPU-second (on a shared machine the wall figure depends on the
other load; the per-core targets are read from the CPU figures):
  1. bare spaCy ``nlp.pipe`` with the model's full pipeline (the ceiling the targets are
     measured against), and with the reduced pipeline the engine's main pass runs (the
     NER only; tok2vec and tagger tag single tokens on demand), so both are visible;
  2. Presidio's default AnalyzerEngine, one ``analyze`` call per document, and our
     engine in this process (a 1-worker run). Items 1 and 2 take turns every ``--batch``
     reports and sum their CPU time, so that the drift of a shared virtual machine's
     speed (10-20% over minutes, measured here) falls on every method alike;
  3. the phi engine through auditkit's executor with 1 and 2 worker processes, engines
     warmed first (start-up -- importing Presidio and loading the model -- is printed
     separately), plus resident memory per worker; ``--repeats`` alternating rounds
     (1 worker, 2 workers, 1, 2, ...), each round's 2-worker/1-worker ratio printed and
     their median reported, so that a slow spell of the machine does not fall on one
     side of the ratio only;
  4. the ratios the targets are stated in, and the load average before and after (the
     machine may be shared: a loaded machine makes every figure pessimistic).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from auditkit.text import prefix_end, words  # noqa: E402

BENCH = REPO / "fixtures" / "phi_benchmark" / "documents.jsonl"


def make_reports(n: int, n_words: int) -> list[str]:
    docs = [json.loads(line)["text"] for line in BENCH.read_text().splitlines() if line.strip()]
    out, buffer, i = [], "", 0
    while len(out) < n:
        while len(words(buffer)) < n_words:
            buffer += ("\n\n" if buffer else "") + docs[i % len(docs)]
            i += 1
        cut = prefix_end(buffer, n_words)
        out.append(buffer[:cut])
        buffer = buffer[cut:].lstrip()
    return out


def rss_mb(_: object = None) -> float:
    """Resident memory of this process now, in MB (after a run: the engine's footprint).

    Not ru_maxrss: a spawned worker inherits its parent's high-water mark at fork time.
    """
    time.sleep(0.5)  # so each pool worker takes one of these jobs
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def elapsed(since: float) -> float:
    return time.perf_counter() - since


def rate(n: int, seconds: float, cpu: float | None = None) -> str:
    """Wall-clock docs/s, and (in-process runs) docs per CPU-second of this process.

    On a shared machine the wall figure depends on what else runs; the CPU figure is
    what one core does when it is free, so the per-core ratios are read from it.
    """
    out = f"{n / seconds:8.1f} docs/s  ({n} docs in {seconds:.1f}s)"
    if cpu:
        out += f"; {n / cpu:6.1f} docs per CPU-second"
    return out


class Timer:
    """Wall and CPU (this process) seconds of a block."""

    def __enter__(self) -> Timer:
        self.t, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t
        self.cpu = time.process_time() - self.c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--words", type=int, default=350)
    ap.add_argument("--model", default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers-only", action="store_true", help="skip the baselines")
    ap.add_argument("--baselines-only", action="store_true", help="skip the worker rounds")
    ap.add_argument(
        "--repeats", type=int, default=3, help="alternating 1- and 2-worker rounds (median)"
    )
    args = ap.parse_args()

    from auditkit.phi.engine import EngineSpec, get_engine, resolve_model

    model = resolve_model(args.model)
    reports = make_reports(args.docs, args.words)
    mean_words = sum(len(words(r)) for r in reports) / len(reports)
    print(f"{len(reports)} reports, {mean_words:.0f} words each on average; model {model}")
    print(
        f"command: .venv/bin/python bench/phi_speed.py --docs {args.docs} --words {args.words}"
        f" --model {model} --repeats {args.repeats}"
        + (" --workers-only" if args.workers_only else "")
        + (" --baselines-only" if args.baselines_only else "")
        + "\n"
    )
    spec = EngineSpec(model=model)

    t = time.perf_counter()
    engine = get_engine(spec)
    print(
        f"start-up (import Presidio + load model, once per worker): {time.perf_counter() - t:.1f}s"
    )
    engine.analyze(reports[:8])  # warm
    print(f"load average before: {_load()}")
    rates = baselines(engine, model, reports, args.batch) if not args.workers_only else {}
    if not args.baselines_only:
        rates |= workers(spec, reports, args.batch, args.repeats)
    print(f"load average after:  {_load()}")
    if "presidio" in rates:
        one_cpu = rates["ours"]
        print("per core (docs per CPU-second, load-independent):")
        print(f"  ours (1 worker) / Presidio default:          {one_cpu / rates['presidio']:.2f}x")
        print(f"  ours (1 worker) / full-pipeline ceiling:     {one_cpu / rates['full']:.2f}x")
        print(f"  ours (1 worker) / reduced-pipeline ceiling:  {one_cpu / rates['reduced']:.2f}x")
    if "scaling" not in rates:
        return
    rounds = ", ".join(f"{r:.2f}x" for r in rates["scaling_all"])
    print(
        f"2 workers / 1 worker (wall clock, median of {len(rates['scaling_all'])} rounds):"
        f" {rates['scaling']:.2f}x  (rounds: {rounds})"
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" (on {os.cpu_count()} CPUs)"


def baselines(engine, model, reports, batch, default=None):
    """Per-core throughput of the ceiling, Presidio's default engine and ours, paired.

    The methods take turns batch by batch (``batch`` reports each: the full spaCy
    pipeline, the engine's reduced pipeline, Presidio one document at a time, then our
    engine on the same reports in this process, which is what a 1-worker run does), and
    each method's CPU time is summed over all batches. The speed of a shared virtual
    machine drifts by 10-20% over minutes; taking turns every few seconds puts every
    method under the same conditions, so the ratios do not depend on when each ran.
    """
    import spacy

    logging.getLogger("tldextract").setLevel(logging.CRITICAL)  # offline: no suffix list
    full = spacy.load(model)
    reduced = engine.nlp_engine.nlp["en"]
    default = default or presidio_default(model)

    def run_full(docs):
        for _ in full.pipe(docs, batch_size=batch):
            pass

    def run_reduced(docs):
        for _ in reduced.pipe(docs, batch_size=batch):
            pass

    def run_presidio(docs):
        for r in docs:
            default.analyze(r, language="en")

    methods = {
        "full": ("spaCy nlp.pipe, full pipeline (ceiling)", run_full),
        "reduced": (
            f"spaCy nlp.pipe, engine pipeline ({', '.join(reduced.pipe_names)})",
            run_reduced,
        ),
        "presidio": ("Presidio default, one doc at a time", run_presidio),
        "ours": ("phi engine, 1 worker (in process)", engine.analyze),
    }
    wall = dict.fromkeys(methods, 0.0)
    cpu = dict.fromkeys(methods, 0.0)
    for i in range(0, len(reports), batch):
        docs = reports[i : i + batch]
        for key, (_, run) in methods.items():
            with Timer() as t:
                run(docs)
            wall[key] += t.wall
            cpu[key] += t.cpu
    n = len(reports)
    print(f"taking turns every {batch} reports:")
    for key, (label, _) in methods.items():
        print(f"  {label:<44} {rate(n, wall[key], cpu[key])}")
    return {key: n / cpu[key] for key in methods} | {
        "times": {k: (wall[k], cpu[k]) for k in methods}
    }


def workers(spec, reports, batch, repeats=1):
    """The engine through auditkit's executor, 1 and then 2 workers, ``repeats`` rounds.

    Both executors stay open and warm; the rounds alternate (1, 2, 1, 2, ...) so a slow
    spell on a shared machine (another virtual machine on the host, a noisy neighbour)
    falls on both sides of a ratio rather than on one. Each round's ratio is printed;
    the figure reported is their median.
    """
    from statistics import median

    from auditkit.executor import LocalExecutor
    from auditkit.phi.engine import analyze_batch

    jobs = [(spec, reports[i : i + batch]) for i in range(0, len(reports), batch)]
    executors = {n: LocalExecutor(n) for n in (1, 2)}
    rates: dict = {"ours_1_cpu": [], "ours_1": [], "ours_2": []}
    try:
        for n_workers, ex in executors.items():
            t = time.perf_counter()
            list(ex.map(analyze_batch, [(spec, reports[:4])] * n_workers))  # build engines
            print(f"phi engine, {n_workers} worker(s): warm-up {elapsed(t):.1f}s")
        for round_ in range(1, repeats + 1):
            for n_workers, ex in executors.items():
                with Timer() as t:
                    n = sum(len(b) for b in ex.map(analyze_batch, jobs))
                rates[f"ours_{n_workers}"].append(n / t.wall)
                # one worker runs in this process: its CPU time is ours; a pool's is not
                cpu = t.cpu if n_workers == 1 else None
                if cpu:
                    rates["ours_1_cpu"].append(n / cpu)
                print(f"round {round_}, phi engine, {n_workers} worker(s): {rate(n, t.wall, cpu)}")
            print(
                f"round {round_}, 2 workers / 1 worker: "
                f"{rates['ours_2'][-1] / rates['ours_1'][-1]:.2f}x"
            )
        mem = [rss_mb(), *executors[2].map(rss_mb, range(2))]
        print(
            "resident memory: in-process (1 worker) "
            + f"{mem[0]:.0f} MB; per pool worker "
            + ", ".join(f"{m:.0f} MB" for m in mem[1:])
        )
    finally:
        for ex in executors.values():
            ex.close()
    ratios = [two / one for one, two in zip(rates["ours_1"], rates["ours_2"], strict=True)]
    return {
        "ours_1_cpu": median(rates["ours_1_cpu"]),
        "ours_1": median(rates["ours_1"]),
        "ours_2": median(rates["ours_2"]),
        "scaling": median(ratios),
        "scaling_all": ratios,
    }


# -- building blocks bench/run_all.py uses ---------------------------------------------


def presidio_default(model):
    """Presidio's default AnalyzerEngine on ``model``, warmed on one document."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": model}],
        }
    )
    default = AnalyzerEngine(nlp_engine=provider.create_engine())
    default.analyze("Warm up.", language="en")
    return default


if __name__ == "__main__":
    main()
