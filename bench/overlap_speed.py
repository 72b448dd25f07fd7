"""Speed and memory of the overlap check's index and matcher as the source corpus grows.

Reproduce:
    .venv/bin/python bench/overlap_speed.py [--sizes 1000,10000,100000] [--synthetic 10000]
        [--workers 1|2] [--words 350] [--seed 0] [--budget 240]

Corpora (generated, deterministic, nothing written to disk):
  * source reports: sentences of fixtures/source.jsonl drawn at random (numpy
    ``default_rng([seed, 1])``) and joined until a report has ``--words`` whitespace tokens;
    then each token is replaced, with probability 0.10, by a random token of the pool's
    vocabulary, so reports are not bare permutations of 7k sentences (at 100k reports
    every source sentence is drawn about 350 times). The stream is sequential, so the 1k
    corpus is the first 1k reports of the 10k corpus.
  * synthetic reports: the same recipe over the sentences of fixtures/holdout.jsonl
    (``default_rng([seed, 2])``), identical at every size; 2% of them get one planted passage
    of 40-80 tokens from a random source report of the current size (half verbatim, half
    with 10% of tokens replaced; ``default_rng([seed, 3])``), so matching has work to do.

Measured at each size, each in a fresh subprocess (so the peaks are that size's own):
encoding the source (``encode_batch`` in batches of 128, through the executor as the
check does), ``SourceIndex.build``, saving the index (workers > 1: ``SourceIndex.save`` and
the folder path handed to ``match_batch``, memory-mapped by the workers, as the check
does), and ``match_batch`` over the synthetic records (encoding included). With
``--budget`` seconds of matching used up, the rest is extrapolated from the measured rate
and the figure is labelled "extrapolated". Wall time, CPU time of the main process and
peak RSS are taken per stage; the peak is the process's VmHWM, reset through
/proc/self/clear_refs before each stage. With workers > 1, each worker's own VmHWM is
added; it counts the memory-mapped index pages the worker touched, which the page cache
shares, so "main + workers" over-counts. On a busy machine the wall times are inflated
(the load average is printed); the CPU seconds (workers=1) are the steadier figure.

A benchmark: it prints measured figures next to the targets and never asserts them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SOURCE = REPO / "fixtures" / "source.jsonl"
HOLDOUT = REPO / "fixtures" / "holdout.jsonl"
NOISE = 0.10
PLANT_SHARE = 0.02
BATCH = 128
GIB = 1024**3
MIB = 1024**2
TARGET_SECONDS = 180
TARGET_BYTES = 4 * GIB
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


# -- corpora ---------------------------------------------------------------------------


def sentence_pool(path: Path) -> list[list[str]]:
    """Whitespace tokens of every sentence (or line) of every report in ``path``."""
    pool = []
    for line in path.read_text(encoding="utf-8").splitlines():
        for sentence in _SENTENCE.split(json.loads(line)["text"]):
            toks = sentence.split()
            if toks:
                pool.append(toks)
    return pool


class ReportGenerator:
    """Reports of about ``n_words`` tokens: random pool sentences, 10% of tokens replaced."""

    def __init__(self, pool: list[list[str]], rng, n_words: int) -> None:
        import numpy as np

        self.pool = pool
        self.vocab = sorted({t for s in pool for t in s})
        self.rng = rng
        self.n_words = n_words
        self.mean_len = float(np.mean([len(s) for s in pool]))

    def tokens(self) -> list[str]:
        rng = self.rng
        picks = rng.integers(0, len(self.pool), int(self.n_words / self.mean_len * 1.6) + 4)
        toks: list[str] = []
        for i in picks.tolist():
            toks.extend(self.pool[i])
            if len(toks) >= self.n_words:
                break
        toks = toks[: self.n_words]
        noisy = (rng.random(len(toks)) < NOISE).nonzero()[0].tolist()
        swaps = rng.integers(0, len(self.vocab), len(noisy)).tolist()
        for pos, v in zip(noisy, swaps, strict=True):
            toks[pos] = self.vocab[v]
        return toks

    def reports(self, n: int) -> list[str]:
        return [" ".join(self.tokens()) for _ in range(n)]


def make_corpora(size: int, n_synthetic: int, n_words: int, seed: int):
    """(source texts, synthetic texts, planted: {synthetic index: source index})."""
    import numpy as np

    source = ReportGenerator(sentence_pool(SOURCE), np.random.default_rng([seed, 1]), n_words)
    synthetic = ReportGenerator(sentence_pool(HOLDOUT), np.random.default_rng([seed, 2]), n_words)
    src_texts = source.reports(size)
    syn_tokens = [synthetic.tokens() for _ in range(n_synthetic)]
    plant = np.random.default_rng([seed, 3])
    planted = {}
    targets = plant.choice(n_synthetic, max(1, int(PLANT_SHARE * n_synthetic)), replace=False)
    for j in sorted(targets.tolist()):
        s = int(plant.integers(0, size))
        src = src_texts[s].split()
        length = int(plant.integers(40, 81))
        at = int(plant.integers(0, len(src) - length))
        passage = src[at : at + length]
        if plant.random() < 0.5:  # near copy: 10% of tokens replaced
            for pos in plant.choice(length, length // 10, replace=False).tolist():
                passage[pos] = synthetic.vocab[int(plant.integers(0, len(synthetic.vocab)))]
        where = int(plant.integers(0, len(syn_tokens[j])))
        syn_tokens[j] = syn_tokens[j][:where] + passage + syn_tokens[j][where:]
        planted[j] = s
    return src_texts, [" ".join(t) for t in syn_tokens], planted


# -- one size, in a child process --------------------------------------------------------


def _worker_peak(_: object) -> tuple[int, int]:
    """(pid, VmHWM bytes) of the worker running this task."""
    import os

    time.sleep(0.5)  # long enough that every worker takes one of these tasks
    return os.getpid(), _status("VmHWM")


def _status(field: str) -> int:
    """A memory field of /proc/self/status, in bytes (0 when unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Stages:
    """Wall time, CPU time of this process and peak RSS of each stage.

    The peak is this process's VmHWM after resetting it through /proc/self/clear_refs
    (Linux), so each stage's peak is its own; without that, it is the running peak.
    """

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}

    def run(self, name: str, fn):
        import os

        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
        wall, cpu = time.perf_counter(), time.process_time()
        load = os.getloadavg()[0]
        value = fn()
        self.rows[name] = {
            "wall": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu,
            "peak": _status("VmHWM"),
            "load": load,
        }
        return value


def _drain(items: list) -> Iterator:
    """Yield the items of a list in order, removing each from the list."""
    items.reverse()
    while items:
        yield items.pop()


def measure(size: int, n_synthetic: int, n_words: int, workers: int, seed: int, budget: float):
    """Time and memory of every stage at one source size (run in a fresh process).

    The source texts stay in memory throughout, as the check's loaded corpus does.
    """
    import numpy as np

    from auditkit.checks.overlap import OverlapConfig, match_batch
    from auditkit.executor import LocalExecutor
    from auditkit.ngram_index import SourceIndex, encode_batch
    from auditkit.text import ngram_hashes

    cfg = OverlapConfig()
    params = cfg.params()
    st = Stages()
    out: dict = {"size": size, "synthetic": n_synthetic, "workers": workers}
    src_texts, syn_texts, planted = st.run(
        "generate", lambda: make_corpora(size, n_synthetic, n_words, seed)
    )
    out["source_words"] = sum(len(t.split()) for t in src_texts)
    with LocalExecutor(workers) as executor, tempfile.TemporaryDirectory() as tmp:
        if workers > 1:  # start the pool outside the timings, as a long-lived check would
            list(executor.map(_worker_peak, range(workers)))
        batches = [src_texts[i : i + BATCH] for i in range(0, len(src_texts), BATCH)]
        encoded = st.run(
            "encode",
            lambda: [enc for part in executor.map(encode_batch, batches) for enc in part],
        )
        out["source_tokens"] = int(sum(len(e) for e in encoded))
        # As the check does: the index takes the encodings over and frees them once
        # concatenated (the list is drained, so nothing else keeps them alive).
        build = functools.partial(SourceIndex.build, _drain(encoded), cfg.seed_ngram, cfg.ngram)
        index = st.run("build", build)
        del build, encoded
        out["index_bytes"] = index.nbytes()
        # How much work a query gets: share of synthetic 4-grams that seed, postings per seed.
        sample = encode_batch(syn_texts[:200])
        grams = np.concatenate([ngram_hashes(e.tokens, cfg.seed_ngram) for e in sample])
        loc, found = index.lookup(grams)
        df = np.where(found, index.df[loc], 0)
        seeds = found & (df <= params.seed_max_df)
        out["seed_share"] = float(seeds.mean())
        out["found_share"] = float(found.mean())
        out["postings_per_seed"] = float(df[seeds].mean()) if seeds.any() else 0.0
        ref: SourceIndex | str = index
        if workers > 1:
            st.run("save", lambda: index.save(Path(tmp)))
            ref = tmp
        jobs = [(syn_texts[i : i + BATCH], ref, params) for i in range(0, len(syn_texts), BATCH)]
        tally = {"done": 0, "tokens": 0, "leaks": 0, "found": 0}

        def match() -> None:
            t0 = time.perf_counter()
            for n, results in enumerate(executor.map(match_batch, jobs)):
                for k, (enc, res) in enumerate(results):
                    i = n * BATCH + k
                    tally["tokens"] += len(enc)
                    tally["leaks"] += res.leak
                    hit = any(m.leak and m.source == planted.get(i) for m in res.matches)
                    tally["found"] += i in planted and hit
                tally["done"] += len(results)
                if time.perf_counter() - t0 > budget and tally["done"] < len(syn_texts):
                    break

        st.run("match", match)
        out["matched"] = tally["done"]
        out["match_tokens"] = tally["tokens"]
        out["leak_records"] = tally["leaks"]
        out["planted"] = sum(1 for i in planted if i < tally["done"])
        out["planted_found"] = tally["found"]
        out["worker_hwm"] = []
        if workers > 1:
            peaks: dict[int, int] = {}
            for pid, hwm in executor.map(_worker_peak, range(workers * 2)):
                peaks[pid] = max(peaks.get(pid, 0), hwm)
            out["worker_hwm"] = sorted(peaks.values())
    out["stages"] = st.rows
    # Resetting VmHWM also resets ru_maxrss on Linux: the peak is the largest stage peak.
    rusage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["main_maxrss"] = max([rusage] + [row["peak"] for row in st.rows.values()])
    return out


# -- the driver --------------------------------------------------------------------------


def run_size(args: argparse.Namespace, size: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(size)]
    for opt in ("synthetic", "workers", "words", "seed", "budget"):
        cmd += [f"--{opt}", str(getattr(args, opt))]
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["wall_s"] = time.perf_counter() - start
    return row


def derived(row: dict) -> dict:
    for name in ("generate", "encode", "build", "save", "match"):
        stage = row["stages"].get(name, {"wall": 0.0, "cpu": 0.0, "peak": 0, "load": 0.0})
        row[f"{name}_s"], row[f"{name}_cpu"] = stage["wall"], stage["cpu"]
        row[f"{name}_peak"], row[f"{name}_load"] = stage["peak"], stage["load"]
    row["match_s_measured"] = row["match_s"]
    rate = row["matched"] / row["match_s_measured"]
    row["records_per_s"] = rate
    row["tokens_per_s"] = row["match_tokens"] / row["match_s_measured"]
    row["extrapolated"] = row["matched"] < row["synthetic"]
    row["match_s"] = row["synthetic"] / rate
    row["end_to_end_s"] = row["encode_s"] + row["build_s"] + row["save_s"] + row["match_s"]
    row["peak_bytes"] = row["main_maxrss"] + sum(row["worker_hwm"])
    return row


def fmt_bytes(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


def _extrap(row: dict, text: str) -> str:
    return text + (" (extrap.)" if row["extrapolated"] else "")


def _stage_rows(name: str, key: str) -> list[tuple[str, object]]:
    return [
        (f"{name}, s", lambda r: f"{r[key + '_s']:.1f}"),
        ("  CPU s, main process", lambda r: f"{r[key + '_cpu']:.1f}"),
        ("  peak RSS, main process", lambda r: fmt_bytes(r[key + "_peak"])),
    ]


def report(rows: list[dict], args: argparse.Namespace) -> None:
    import hashlib
    import os

    print(
        f"overlap check speed: {args.synthetic:,} synthetic reports of ~{args.words} words; "
        f"workers={args.workers}; seed={args.seed}; {os.cpu_count()} CPUs"
    )
    print(
        "corpora: source = random sentences of fixtures/source.jsonl, synthetic = random "
        f"sentences of fixtures/holdout.jsonl, joined to ~{args.words} tokens,\n"
        f"  {NOISE:.0%} of tokens replaced by random pool tokens; {PLANT_SHARE:.0%} of "
        "synthetic reports carry a planted 40-80-token source passage"
    )
    code = ", ".join(
        f"{name} {hashlib.sha256((REPO / 'auditkit' / name).read_bytes()).hexdigest()[:12]}"
        for name in ("checks/overlap.py", "overlap_match.py", "ngram_index.py", "text.py")
    )
    print(f"check code: {code}")
    print(
        "load average at the end (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    cols = [
        ("source reports", lambda r: f"{r['size']:,}"),
        ("source tokens", lambda r: f"{r['source_tokens']:,}"),
        ("load average at start of matching", lambda r: f"{r['match_load']:.2f}"),
        ("generate corpora, s (not the check)", lambda r: f"{r['generate_s']:.1f}"),
        *_stage_rows("encode source", "encode"),
        *_stage_rows("SourceIndex.build", "build"),
        ("index save, s", lambda r: f"{r['save_s']:.1f}"),
        ("match synthetic, s", lambda r: _extrap(r, f"{r['match_s']:.1f}")),
        ("  CPU s, main process", lambda r: f"{r['match_cpu']:.1f}"),
        ("  peak RSS, main process", lambda r: fmt_bytes(r["match_peak"])),
        ("  records/s", lambda r: f"{r['records_per_s']:.0f}"),
        ("  tokens/s", lambda r: f"{r['tokens_per_s']:,.0f}"),
        ("  matched (measured)", lambda r: f"{r['matched']:,}/{r['synthetic']:,}"),
        ("end to end (encode+build+save+match), s", lambda r: _extrap(r, f"{r['end_to_end_s']:.1f}")),  # noqa: E501
        ("index memory (nbytes)", lambda r: fmt_bytes(r["index_bytes"])),
        ("  bytes per source token", lambda r: f"{r['index_bytes'] / r['source_tokens']:.1f}"),
        ("peak RSS, main process (all stages)", lambda r: fmt_bytes(r["main_maxrss"])),
        ("peak RSS, each worker (VmHWM)", lambda r: ", ".join(fmt_bytes(b) for b in r["worker_hwm"]) or "-"),  # noqa: E501
        ("peak RSS, main + workers", lambda r: fmt_bytes(r["peak_bytes"])),
        ("query 4-grams found in source", lambda r: f"{r['found_share']:.1%}"),
        ("query 4-grams that seed (df<=50)", lambda r: f"{r['seed_share']:.1%}"),
        ("  mean postings per seed", lambda r: f"{r['postings_per_seed']:.1f}"),
        ("records with a leak", lambda r: f"{r['leak_records']:,}"),
        ("planted passages found", lambda r: f"{r['planted_found']}/{r['planted']}"),
    ]  # fmt: skip
    width = max(len(c[0]) for c in cols) + 2
    print()
    for name, get in cols:
        print(f"  {name:{width}s}" + "".join(f"{get(r):>20s}" for r in rows))
    if len(rows) > 1:
        print("\ngrowth between sizes (cost ratio / size ratio; 1.0 = linear):")
        keys = [("encode_s", "encode"), ("build_s", "build"), ("match_s", "match"),
                ("index_bytes", "index bytes"), ("main_maxrss", "peak RSS")]  # fmt: skip
        if args.workers == 1:
            keys[:3] = [("encode_cpu", "encode CPU"), ("build_cpu", "build CPU"),
                        ("match_cpu", "match CPU")]  # fmt: skip
        for a, b in itertools.pairwise(rows):
            k = b["size"] / a["size"]
            parts = [f"{name} {b[key] / a[key] / k:.2f}" for key, name in keys if a[key]]
            print(f"  {a['size']:,} -> {b['size']:,} (x{k:g}): " + ", ".join(parts))
    print(
        f"\ntargets: {args.synthetic:,} synthetic vs 100,000 source <= 3 min end to end and "
        "<= 4 GiB peak; about linear growth"
    )
    big = [r for r in rows if r["size"] == 100_000]
    if big:
        r = big[0]
        note = " (match time extrapolated)" if r["extrapolated"] else ""
        print(
            f"measured at 100,000: end to end {r['end_to_end_s']:.0f} s{note} "
            f"(target {TARGET_SECONDS} s), peak {fmt_bytes(r['peak_bytes'])} "
            f"(target {fmt_bytes(TARGET_BYTES)})"
        )
    else:
        print(f"largest size measured: {rows[-1]['size']:,} (no 100,000 run)")
    if max(r["match_load"] for r in rows) > args.workers + 0.5:
        print(
            "note: the load average was above the worker count: other processes shared the "
            "CPUs, so wall times are inflated; CPU seconds are the steadier figure."
        )
    sizes = ",".join(str(r["size"]) for r in rows)
    opts = f"--synthetic {args.synthetic} --workers {args.workers} --budget {args.budget:g}"
    print(f"reproduce: .venv/bin/python bench/overlap_speed.py --sizes {sizes} {opts}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--synthetic", type=int, default=10_000)
    ap.add_argument("--workers", type=int, choices=(1, 2), default=2)
    ap.add_argument("--words", type=int, default=350)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--budget",
        type=float,
        default=240.0,
        help="seconds of matching per size before the rest is extrapolated",
    )
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        row = measure(args.child, args.synthetic, args.words, args.workers, args.seed, args.budget)
        print(json.dumps(row))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        row = derived(run_size(args, size))
        print(f"  measured {size:,} source reports in {row['wall_s']:.0f} s", file=sys.stderr)
        rows.append(row)
    report(rows, args)


if __name__ == "__main__":
    main()
