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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generator", default="fixture")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--single", type=int, default=40, help="records scored one at a time")
    ap.add_argument("--members", type=int, default=300)
    ap.add_argument("--nonmembers", type=int, default=100)
    args = ap.parse_args()

    import torch

    from auditkit.checks.membership import MembershipCheck, probe_summary
    from auditkit.corpus import load_corpus
    from auditkit.generators import load_generator
    from auditkit.pipeline import run_single_check

    source = load_corpus(REPO / "fixtures" / "source.jsonl", "source")
    texts = [r.text for r in source.records]
    print(f"torch threads: {torch.get_num_threads()}, load average before: {os.getloadavg()}")

    gen = load_generator(args.generator, batch_size=args.batch)
    gen.score(texts[:2])  # load the model outside the timings
    sample = texts[: args.single]
    start = time.perf_counter()
    scores = [gen.score([t])[0] for t in sample]
    single = time.perf_counter() - start
    tokens = sum(len(s) for s in scores)
    start = time.perf_counter()
    batched_scores = gen.score(sample)
    batched = time.perf_counter() - start
    assert sum(len(s) for s in batched_scores) == tokens
    print(f"scoring {len(sample)} reports ({tokens} tokens):")
    print(f"  one at a time : {tokens / single:8.0f} tokens/s ({single:.1f} s)")
    print(f"  batch of {args.batch:<5}: {tokens / batched:8.0f} tokens/s ({batched:.1f} s)")
    print(f"  speed-up      : {single / batched:.2f}x")

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
