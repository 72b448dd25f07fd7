"""Membership probe speed on the fixture generator.

Prints scoring throughput (tokens/s) batched vs one record at a time, and the wall time
of the whole probe (scoring, attacks, bootstrap, blind baseline, extraction) on 300
members + 100 non-members. Run from the repository root:

    .venv/bin/python bench/mia_speed.py [--generator fixture] [--single 40] [--batch 16]

Figures measured while other processes load the machine are pessimistic; the load
average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def scoring(generator: str, texts: list[str], batch: int) -> dict:
    """Per-token log-probabilities of ``texts``: one record per call vs batches of ``batch``.

    Wall and CPU seconds (all threads of this process) of each, after loading the model
    and scoring two records outside the timings. The two must give the same token count.
    """
    from auditkit.generators import load_generator

    gen = load_generator(generator, batch_size=batch)
    gen.score(texts[:2])  # load the model outside the timings
    out: dict = {"n": len(texts)}
    start, cpu = time.perf_counter(), time.process_time()
    scores = [gen.score([t])[0] for t in texts]
    out["single"], out["single_cpu"] = time.perf_counter() - start, time.process_time() - cpu
    out["tokens"] = sum(len(s) for s in scores)
    start, cpu = time.perf_counter(), time.process_time()
    batched = gen.score(texts)
    out["batched"], out["batched_cpu"] = time.perf_counter() - start, time.process_time() - cpu
    assert sum(len(s) for s in batched) == out["tokens"]
    return out


def run_all_stage(quick: bool) -> dict:
    """Section 3 of bench/RESULTS.md: scoring with the generator, batched vs one at a time.

    The generator is the memorising fixture model (a 2-layer GPT-2 of about 240k
    parameters, fixtures/generators): it shows the batching's effect, not what a
    production LLM costs per record (a 7B model costs several orders of magnitude more).
    """
    import torch

    from auditkit.corpus import load_corpus

    n = 8 if quick else 64
    texts = [r.text for r in load_corpus(REPO / "fixtures" / "source.jsonl", "source").records]
    m = scoring("fixture", texts[:n], 16)
    rows = [
        ("auditkit (batches of 16)", m["batched"], m["batched_cpu"]),
        ("one record at a time", m["single"], m["single_cpu"]),
    ]
    lines = [
        f"{n} fixture source reports ({m['tokens']:,} tokens) scored by the fixture generator "
        f"(memorising 2-layer GPT-2, `--generator fixture`), torch threads: "
        f"{torch.get_num_threads()}; load average before: {os.getloadavg()[0]:.2f}.",
        "",
        "| method | tokens/s (wall) | wall ms/report | CPU ms/report | its CPU time / auditkit's |",
        "|---|---|---|---|---|",
    ]
    for name, wall, cpu in rows:
        lines.append(
            f"| {name} | {m['tokens'] / wall:,.0f} | {wall / n * 1000:.1f} | "
            f"{cpu / n * 1000:.1f} | {cpu / m['batched_cpu']:.2f}x |"
        )
    lines += [
        "",
        f"Batched scoring is **{m['single_cpu'] / m['batched_cpu']:.2f}x** one record at a time "
        f"(CPU time; {m['single'] / m['batched']:.2f}x in wall time). The whole probe (attacks, "
        "bootstrap, blind baseline, extraction) on 300 + 100 records: "
        "`.venv/bin/python bench/mia_speed.py`. This is the fixture model's cost: a production "
        "generator (billions of parameters) costs orders of magnitude more per record, so the "
        "cluster estimate below counts the fixture's cost only and says so.",
    ]
    return {"lines": lines, "per_record_s": m["batched_cpu"] / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generator", default="fixture")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--single", type=int, default=40, help="records scored one at a time")
    ap.add_argument("--members", type=int, default=300)
    ap.add_argument("--nonmembers", type=int, default=100)
    ap.add_argument("--no-probe", action="store_true", help="only the throughput comparison")
    args = ap.parse_args()

    import torch

    from auditkit.checks.membership import MembershipCheck, probe_summary
    from auditkit.corpus import load_corpus
    from auditkit.pipeline import run_single_check

    source = load_corpus(REPO / "fixtures" / "source.jsonl", "source")
    texts = [r.text for r in source.records]
    print(f"torch threads: {torch.get_num_threads()}, load average before: {os.getloadavg()}")

    m = scoring(args.generator, texts[: args.single], args.batch)
    print(f"scoring {m['n']} reports ({m['tokens']} tokens):")
    print(f"  one at a time : {m['tokens'] / m['single']:8.0f} tokens/s ({m['single']:.1f} s)")
    rate = m["tokens"] / m["batched"]
    print(f"  batch of {args.batch:<5}: {rate:8.0f} tokens/s ({m['batched']:.1f} s)")
    print(f"  speed-up      : {m['single'] / m['batched']:.2f}x")

    if args.no_probe:
        return
    with tempfile.TemporaryDirectory() as tmp:
        members = Path(tmp) / "members.jsonl"
        nonmembers = Path(tmp) / "nonmembers.jsonl"
        for path, name, n in ((members, "source", args.members),
                              (nonmembers, "holdout", args.nonmembers)):  # fmt: skip
            lines = (REPO / "fixtures" / f"{name}.jsonl").read_text().splitlines(keepends=True)
            path.write_text("".join(lines[:n]))
        start = time.perf_counter()
        result = run_single_check(
            MembershipCheck, members, source=members, holdout=nonmembers,
            generator=args.generator,
        )  # fmt: skip
        wall = time.perf_counter() - start
    summary = probe_summary(result)
    print(
        f"full probe, {summary['n_members']} members + {summary['n_nonmembers']} non-members: "
        f"{wall:.1f} s (worst AUC {summary['worst_auc']:.3f}, blind {summary['blind_auc']:.3f})"
    )
    print(f"load average after: {os.getloadavg()}")
    print("reproduce: .venv/bin/python bench/mia_speed.py")


if __name__ == "__main__":
    main()
