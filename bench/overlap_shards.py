"""Cost of the sharded source index against the replicated one, on the same corpora.

Reproduce:
    .venv/bin/python bench/overlap_shards.py [--size 5000] [--synthetic 500]
        [--shards 1,4,16] [--record-shards R] [--workers 1|2] [--seed 0] [--repo PATH]

Corpora: those of bench/overlap_speed.py (generated, deterministic). Each setting runs in
a fresh subprocess, so its peaks are its own. ``--shards 1`` is the replicated index
(``SourceIndex.build`` and ``match_batch``, as the check does with ``index_shards: 1``);
K > 1 is ``ShardedIndex.build`` into a temporary folder (shards written and memory-mapped
as they are built, n-gram shards built in executor jobs, as the check does) and
``match_sharded`` through the same executor, with ``R = --record-shards`` (default K)
record shards. The build stage is the check's: the source encoded in batches through the
executor and streamed into the build (the source texts stay in memory, as the check's
loaded corpus does). ``--repo`` imports auditkit from another checkout (e.g. main, to
measure before and after with the same script); a checkout whose ``ShardedIndex.build``
takes no executor builds on the driver, as its check does.

Measured: wall seconds; CPU seconds of the driver and of the pool's workers (from
/proc, their user + system time during the stage); peak RSS (VmHWM, reset per stage) of
the driver and of the largest worker, and the driver's RSS before the stage (the corpora
it holds); the driver's own share of the matching wall time (outside the executor's map:
merging and assembling), the number of jobs per phase, the bytes of the jobs' query
arrays and answers (what crosses to and from workers besides the index or shards; a
phase C job counts its batch's token arrays, which Ray puts in its store once per batch),
and whether every synthetic record's result equals the replicated index's.

A benchmark: it prints measured figures and never asserts them. On a busy machine the wall
times are inflated; the load average is printed.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from overlap_speed import BATCH, MIB, Stages, _status, make_corpora  # noqa: E402


def _children() -> list[Path]:
    """The /proc folders of this process's live child processes (Linux; [] elsewhere)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid():
            out.append(stat.parent)
    return out


def _children_cpu() -> float:
    """User + system CPU seconds of the live child processes (the pool's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in _children():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _children_peak(reset: bool = False) -> int:
    """The largest child's peak RSS in bytes (VmHWM); ``reset`` clears the peaks instead."""
    peak = 0
    for proc in _children():
        try:
            if reset:
                (proc / "clear_refs").write_text("5")
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            continue
    return peak


def staged(st: Stages, name: str, fn):
    """``st.run`` plus the workers' CPU and peak, and the driver's RSS before the stage."""
    _children_peak(reset=True)
    before, cpu = _status("VmRSS"), _children_cpu()
    value = st.run(name, fn)
    st.rows[name].update(before=before, workers_cpu=_children_cpu() - cpu,
                         workers_peak=_children_peak())  # fmt: skip
    return value


def measure(size: int, n_synthetic: int, shards: int, record_shards: int, workers: int,
            seed: int) -> dict:  # fmt: skip
    """One setting, in this (fresh) process."""
    from auditkit import sharded_match
    from auditkit.checks.overlap import OverlapConfig, match_batch
    from auditkit.executor import LocalExecutor
    from auditkit.index_shards import GramShard, RecordShard, ShardedIndex
    from auditkit.ngram_index import SourceIndex, encode_batch

    cfg = OverlapConfig()
    params = cfg.params()
    src_texts, syn_texts, _ = make_corpora(size, n_synthetic, 350, seed)
    st = Stages()
    out: dict = {"size": size, "synthetic": n_synthetic, "shards": shards,
                 "record_shards": record_shards, "workers": workers}  # fmt: skip
    batches = [syn_texts[i : i + BATCH] for i in range(0, len(syn_texts), BATCH)]
    traffic = {"jobs": {}, "bytes": {}}

    kept: list[tuple[str, list, list]] = []

    def counting(executor):
        """The executor's map, keeping each phase's jobs and answers to size them later."""

        def map_fn(fn, jobs):
            jobs = list(jobs)
            start = time.perf_counter()
            results = list(executor.map(fn, jobs))
            traffic["in_map"] = traffic.get("in_map", 0.0) + time.perf_counter() - start
            kept.append((fn.__name__, jobs, results))
            return results

        return map_fn

    with LocalExecutor(workers) as executor, tempfile.TemporaryDirectory() as tmp:
        src_batches = [src_texts[i : i + BATCH] for i in range(0, len(src_texts), BATCH)]

        def encoded():
            """The source encoded in executor jobs, streamed in order (as the check does)."""
            for part in executor.map(encode_batch, src_batches):
                yield from part

        if shards == 1:
            index = staged(st, "build", lambda: SourceIndex.build(encoded(), 4, 8))
            ref = index
            if workers > 1:
                index.save(Path(tmp))
                ref = tmp
            jobs = [(b, ref, params) for b in batches]
            results = staged(st, "match", lambda: [
                res for part in counting(executor)(match_batch, jobs) for _, res in part
            ])  # fmt: skip
        else:
            build = ShardedIndex.build
            kwargs: dict = {}
            if "map_fn" in inspect.signature(build).parameters:  # else: built on the driver
                kwargs = {"sizes": [len(t) for t in src_texts], "map_fn": executor.map,
                          "worker_files": workers > 1}  # fmt: skip
            out["executor_build"] = bool(kwargs)
            index = staged(st, "build", lambda: build(
                encoded(), 4, 8, shards, record_shards, folder=Path(tmp), **kwargs
            ))  # fmt: skip
            grams, owners = list(index.gram_shards), list(index.record_shards)
            if workers > 1:
                grams = [str(index.gram_folder(Path(tmp), k)) for k in range(shards)]
                owners = [str(index.record_folder(Path(tmp), r)) for r in range(record_shards)]
            results = staged(st, "match", lambda: [
                res for part in sharded_match.match_sharded(
                    batches, index, grams, owners, params, counting(executor)
                ) for _, res in part
            ])  # fmt: skip
        out["index_bytes"] = index.nbytes()
    # Outside the timings: what the jobs carry besides the index or shard (which a pool
    # worker memory-maps and Ray puts in the object store once), and what comes back.
    shared = (SourceIndex, GramShard, RecordShard, str)
    for name, jobs, answers in kept:
        light = [tuple(p for p in job if not isinstance(p, shared)) for job in jobs]
        moved = sum(len(pickle.dumps(j)) for j in light) + sum(
            len(pickle.dumps(a)) for a in answers
        )
        traffic["jobs"][name] = traffic["jobs"].get(name, 0) + len(jobs)
        traffic["bytes"][name] = traffic["bytes"].get(name, 0) + moved
    out["stages"] = st.rows
    out["traffic"] = traffic
    out["results"] = pickle.dumps(results).hex()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=5000)
    ap.add_argument("--synthetic", type=int, default=500)
    ap.add_argument("--shards", default="1,4,16")
    ap.add_argument("--record-shards", type=int, default=None)
    ap.add_argument("--workers", type=int, choices=(1, 2), default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repo", type=Path, default=REPO, help="checkout to import auditkit from")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        sys.path.insert(0, str(args.repo.resolve()))  # spawned pool workers inherit it
        r = args.record_shards or args.child
        row = measure(args.size, args.synthetic, args.child, r, args.workers, args.seed)
        print(json.dumps(row))
        return
    rows = []
    for k in (int(s) for s in args.shards.split(",")):
        cmd = [sys.executable, __file__, "--child", str(k), "--size", str(args.size),
               "--synthetic", str(args.synthetic), "--workers", str(args.workers),
               "--seed", str(args.seed), "--repo", str(args.repo)]  # fmt: skip
        if args.record_shards:
            cmd += ["--record-shards", str(args.record_shards)]
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    # Compared as values (every RecordOverlap field): pickled bytes differ with how the
    # results travelled (a pool worker's pickle shares and types objects differently).
    sys.path.insert(0, str(args.repo.resolve()))
    reference = pickle.loads(bytes.fromhex(rows[0]["results"]))
    print(f"overlap sharded index: {args.size:,} source x {args.synthetic:,} synthetic reports "
          f"of ~350 words; workers={args.workers}; auditkit from {args.repo.resolve()}; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()}")  # fmt: skip
    print(
        "K = n-gram shards (1 = replicated SourceIndex), R = record shards; build = encode "
        "the source through the executor + build the index; CPU = driver + workers"
    )
    header = ("K", "R", "n-gram shards built in", "build s", "build CPU s", "driver RSS before MiB",
              "build peak MiB (driver/worker)", "match s", "match CPU s",
              "match peak MiB (driver/worker)", "driver s", "jobs (encode/A/C)",
              "job+answer MiB (encode/A/C)", "index MiB", "same results")  # fmt: skip
    print(" | ".join(header))
    for row in rows:
        b, m = row["stages"]["build"], row["stages"]["match"]
        jobs = row["traffic"]["jobs"]
        counts = "/".join(str(jobs.get(name, 0)) for name in ("encode_queries", "lookup_job",
                                                               "align_job"))  # fmt: skip
        if row["shards"] == 1:
            counts = f"{jobs.get('match_batch', 0)} (one per batch)"
        sizes = row["traffic"]["bytes"]
        moved = "/".join(f"{sizes.get(name, 0) / MIB:.1f}" for name in
                         ("encode_queries", "lookup_job", "align_job"))  # fmt: skip
        if row["shards"] == 1:
            moved = f"{sizes.get('match_batch', 0) / MIB:.1f}"
        where = "-" if row["shards"] == 1 else "jobs" if row["executor_build"] else "driver"
        same = "reference"
        if row is not rows[0]:
            same = str(pickle.loads(bytes.fromhex(row["results"])) == reference)
        print(" | ".join([
            str(row["shards"]), str(row["record_shards"] if row["shards"] > 1 else "-"), where,
            f"{b['wall']:.1f}", f"{b['cpu']:.1f} + {b['workers_cpu']:.1f}",
            f"{b['before'] / MIB:.0f}",
            f"{b['peak'] / MIB:.0f}/{b['workers_peak'] / MIB:.0f}",
            f"{m['wall']:.1f}", f"{m['cpu']:.1f} + {m['workers_cpu']:.1f}",
            f"{m['peak'] / MIB:.0f}/{m['workers_peak'] / MIB:.0f}",
            f"{m['wall'] - row['traffic']['in_map']:.1f}", counts,
            moved, f"{row['index_bytes'] / MIB:.0f}", same,
        ]))  # fmt: skip
    print(f"load average at the end: {os.getloadavg()}")
    opts = f"--size {args.size} --synthetic {args.synthetic} --shards {args.shards}"
    if args.record_shards:
        opts += f" --record-shards {args.record_shards}"
    if args.repo.resolve() != REPO:
        opts += f" --repo {args.repo}"
    print(f"reproduce: .venv/bin/python bench/overlap_shards.py {opts} --workers {args.workers}")


if __name__ == "__main__":
    main()
