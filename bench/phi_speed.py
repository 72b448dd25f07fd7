"""Throughput of the phi check against its ceiling and Presidio's default engine.

Reproduce:
    .venv/bin/python bench/phi_speed.py [--docs 1000] [--words 350] [--model NAME]

Corpus: the 90 hand-labelled benchmark documents (fixtures/phi_benchmark) concatenated
in a fixed cyclic order and cut into reports of ``--words`` words (cut at a word
boundary with auditkit.text.prefix_end), until ``--docs`` reports exist. Every report is
therefore real clinical-style text with PHI at the benchmark's density.

Printed, in documents per second:
  1. bare spaCy ``nlp.pipe`` with the model as the engine loads it (the ceiling), and
     with the full pipeline (parser included);
  2. Presidio's default AnalyzerEngine, one ``analyze`` call per document;
  3. the phi engine through auditkit's executor with 1 and 2 worker processes, engines
     warmed first (start-up -- importing Presidio and loading the model -- is printed
     separately), plus peak resident memory per worker.
"""

from __future__ import annotations

import argparse
import json
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


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.1f} docs/s  ({n} docs in {seconds:.1f}s)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--words", type=int, default=350)
    ap.add_argument("--model", default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers-only", action="store_true", help="skip the baselines")
    args = ap.parse_args()

    from auditkit.phi.engine import EngineSpec, get_engine, resolve_model

    model = resolve_model(args.model)
    reports = make_reports(args.docs, args.words)
    mean_words = sum(len(words(r)) for r in reports) / len(reports)
    print(f"{len(reports)} reports, {mean_words:.0f} words each on average; model {model}")
    print(
        f"command: .venv/bin/python bench/phi_speed.py --docs {args.docs} --words {args.words}"
        f" --model {model}\n"
    )
    spec = EngineSpec(model=model)

    t = time.perf_counter()
    engine = get_engine(spec)
    print(
        f"start-up (import Presidio + load model, once per worker): {time.perf_counter() - t:.1f}s"
    )
    engine.analyze(reports[:8])  # warm
    if not args.workers_only:
        baselines(engine, model, reports, args.batch)
    workers(spec, reports, args.batch)


def spacy_pipe_seconds(nlp, reports, batch) -> float:
    """Seconds for ``nlp.pipe`` over every report (the ceiling: tokenise, tag, NER only)."""
    t = time.perf_counter()
    for _ in nlp.pipe(reports, batch_size=batch):
        pass
    return elapsed(t)


def presidio_default(model):
    """Presidio's default AnalyzerEngine on ``model``, warmed on one document."""
    import logging

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


def presidio_seconds(default, reports) -> float:
    """Seconds for one ``analyze`` call per report, as a Presidio user would write it."""
    t = time.perf_counter()
    for r in reports:
        default.analyze(r, language="en")
    return elapsed(t)


def baselines(engine, model, reports, batch):
    import spacy

    nlp = engine.nlp_engine.nlp["en"]
    seconds = spacy_pipe_seconds(nlp, reports, batch)
    print(f"{'spaCy nlp.pipe, engine pipeline (no parser)':<44} {rate(len(reports), seconds)}")
    full = spacy.load(model)
    seconds = spacy_pipe_seconds(full, reports, batch)
    print(f"{'spaCy nlp.pipe, full pipeline':<44} {rate(len(reports), seconds)}")
    del full

    default = presidio_default(model)
    seconds = presidio_seconds(default, reports)
    print(f"{'Presidio default, one doc at a time':<44} {rate(len(reports), seconds)}")
    del default


def workers(spec, reports, batch):
    from auditkit.executor import LocalExecutor
    from auditkit.phi.engine import analyze_batch

    jobs = [(spec, reports[i : i + batch]) for i in range(0, len(reports), batch)]
    for n_workers in (1, 2):
        with LocalExecutor(n_workers) as ex:
            t = time.perf_counter()
            list(ex.map(analyze_batch, [(spec, reports[:4])] * n_workers))  # build engines
            startup = elapsed(t)
            t = time.perf_counter()
            n = sum(len(b) for b in ex.map(analyze_batch, jobs))
            seconds = elapsed(t)
            mem = list(ex.map(rss_mb, range(n_workers))) if n_workers > 1 else [rss_mb()]
        where = "in-process" if n_workers == 1 else "per pool worker"
        print(
            f"phi engine, {n_workers} worker(s):             {rate(n, seconds)}; "
            f"warm-up {startup:.1f}s; resident memory {where}: "
            + ", ".join(f"{m:.0f} MB" for m in mem)
        )


if __name__ == "__main__":
    main()
