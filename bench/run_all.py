"""Every stage of the audit next to the baseline a user would otherwise run, in one run.

Reproduce:
    make bench                                   # the full run; writes bench/RESULTS.md
    .venv/bin/python bench/run_all.py --quick --out /tmp/RESULTS.md   # smoke test, tiny sizes

Sizes of the full run (each can be raised for a bigger machine, see --help):
    --phi-docs 100         reports for PHI (ours, Presidio default, bare spaCy)
    --source 5000          source reports for overlap vs MinHash LSH and for local vs Ray
    --synthetic 500        synthetic reports matched against them
    --brute-pairs 8        synthetic x source pairs scored by brute-force rapidfuzz
    --engine-phi-docs 48   reports for PHI through each engine
    --growth 1000,10000,100000   source sizes of the growth series (fresh process each)
    --growth-synthetic 200 synthetic reports matched at each growth size
    --growth-budget 60     seconds of matching per size before the rest is extrapolated
The full run took 266 s on 2 idle cores (2026-11-28, bench/RESULTS.md); on a shared
machine pass smaller sizes, as bench/RESULTS.md then records.
Bigger, e.g. on a 16-core machine with 64 GB: ``--phi-docs 1000 --source 100000
--synthetic 10000 --growth 1000,10000,100000,1000000 --growth-synthetic 10000
--growth-budget 600``.

Stages, each measured side by side with its baseline in the same process and minute:

1. PHI: auditkit's engine (``analyze_batch``, one in-process worker, engine warm) vs
   Presidio's default AnalyzerEngine (one ``analyze`` per document) on the same model,
   and bare spaCy ``nlp.pipe`` as the ceiling (PHI detection cannot be faster than the
   NER it runs). Reports: bench/phi_speed.py's ``make_reports`` (the labelled PHI
   benchmark, cut to 350 words).
2. Overlap: the check's pipeline (encode the source, build the index, match each
   synthetic report: passage level, with offsets) vs datasketch ``MinHashLSH(0.8, 128)``
   over whole documents (bench/overlap_quality.py's ``run_minhash``), and brute force
   ``rapidfuzz.fuzz.partial_ratio`` of every synthetic report against every source report
   timed on a sample of pairs and extrapolated. Corpora: bench/overlap_speed.py's
   ``make_corpora`` (2% of synthetic reports carry a planted source passage; the recall of
   those is printed, because a fast method that misses them is not a baseline that wins).
3. Membership scoring: bench/mia_speed.py (batched vs one record at a time) when that
   module exists on this branch.
4. Engines: the same per-record work (PHI batches; overlap matching against the source
   index) through ``LocalExecutor(2)`` and ``RayExecutor(2)`` on a local Ray runtime,
   both warm; the ratio is Ray's overhead on one machine.
5. Growth: bench/overlap_speed.py's ``measure`` at each source size in a fresh process
   (CPU seconds of encode, build and match; index bytes), MinHash insertion at the
   smaller sizes, PHI at two sizes.
6. The cluster estimate for 1M synthetic vs 10M source reports in one hour, computed
   from the per-record costs above (the arithmetic is written out).

The machine (cores, load average at start and end) is in the output. On a shared machine
wall times are inflated; the ratios, measured side by side, are the steadier figures.
A benchmark: it prints measured figures next to the targets and never asserts them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import itertools
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import overlap_speed  # noqa: E402
import phi_speed  # noqa: E402

WORDS = 350
BATCH = 64
HOUR = 3600.0
TARGET_SYNTHETIC, TARGET_SOURCE = 1_000_000, 10_000_000
CORES_PER_NODE = 16
NODE_MEMORY_GIB = 64  # a typical node: above this the index is sharded in the estimate
SHARDS = 16  # index_shards measured in section 2 (and used for the estimate)


@dataclass
class Report:
    """The sections of RESULTS.md and the numbers the estimate needs."""

    sections: list[str] = field(default_factory=list)
    costs: dict[str, float] = field(default_factory=dict)

    def add(self, title: str, lines: list[str]) -> None:
        text = f"## {title}\n\n" + "\n".join(lines) + "\n"
        print(text, flush=True)
        self.sections.append(text)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return [*out, ""]


def per_s(n: int, seconds: float) -> str:
    return f"{n / seconds:,.1f}/s" if seconds > 0 else "n/a"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


@contextlib.contextmanager
def timed(out: dict, key: str):
    """Wall seconds in ``out[key]``, CPU seconds of this process in ``out[key + '_cpu']``.

    CPU time is what a busy machine inflates least, so per-record costs use it.
    """
    t, c = time.perf_counter(), time.process_time()
    yield
    out[key] = time.perf_counter() - t
    out[key + "_cpu"] = time.process_time() - c


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def machine() -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f", {kb / 1024**2:.0f} GiB RAM"
    return [
        f"- machine: {os.cpu_count()} CPU cores ({cpu}){mem}, {platform.platform()}",
        f"- Python {platform.python_version()}",
    ]


# -- 1. PHI ----------------------------------------------------------------------------


def stage_phi(args: argparse.Namespace, rep: Report) -> None:
    from auditkit.executor import LocalExecutor
    from auditkit.phi.engine import EngineSpec, analyze_batch, get_engine, resolve_model

    model = resolve_model(None)
    reports = phi_speed.make_reports(args.phi_docs, WORDS)
    spec = EngineSpec(model=model)
    m: dict = {}
    with timed(m, "startup"):
        engine = get_engine(spec)
        engine.analyze(reports[:4])

    def ours(docs: list[str]) -> None:
        jobs = [(spec, docs[i : i + BATCH]) for i in range(0, len(docs), BATCH)]
        with LocalExecutor(1) as ex:
            n = sum(len(b) for b in ex.map(analyze_batch, jobs))
        assert n == len(docs)

    quarter = reports[: max(4, len(reports) // 4)]
    with timed(m, "ours_quarter"):
        ours(quarter)
    # Its email recognizer tries to download the public suffix list, then falls back to
    # its bundled copy: the failed lookup is the baseline's, and its traceback is noise.
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    with timed(m, "presidio_startup"):
        default = phi_speed.presidio_default(model)
    # ours, Presidio's default and bare spaCy take turns every BATCH reports (paired)
    times = phi_speed.baselines(engine, model, reports, BATCH, default)["times"]
    del default
    for key in ("ours", "presidio", "full", "reduced"):
        m[key], m[key + "_cpu"] = times[key]
    n = len(reports)
    rep.costs["phi"] = m["ours_cpu"] / n
    rep.costs["phi_growth"] = (m["ours_cpu"] / n) / (m["ours_quarter_cpu"] / len(quarter))
    names = {
        "ours": "auditkit phi engine (batches of 64, 1 worker)",
        "presidio": "Presidio default AnalyzerEngine, one analyze() per doc",
        "full": "bare spaCy nlp.pipe, the model's full pipeline (ceiling)",
        "reduced": "bare spaCy nlp.pipe, the engine's main pass (NER only)",
    }
    rows = [
        [
            name,
            per_s(n, m[key]),
            f"{m[key] / n * 1000:.1f}",
            f"{m[key + '_cpu'] / n * 1000:.1f}",
            ratio(m[key + "_cpu"], m["ours_cpu"]),
        ]
        for key, name in names.items()
    ]
    lines = [
        f"{n} reports of ~{WORDS} words (the PHI benchmark documents, cut), model `{model}`; "
        f"engine start-up {m['startup']:.1f} s (once per worker), Presidio default start-up "
        f"{m['presidio_startup']:.1f} s; load average before: {load()}.",
        "",
        *table(
            [
                "method",
                "throughput (wall)",
                "wall ms/doc",
                "CPU ms/doc",
                "its CPU time / auditkit's",
            ],
            rows,
        ),
        f"auditkit's throughput is **{ratio(m['presidio_cpu'], m['ours_cpu'])} that of "
        f"Presidio's default engine** (CPU time; {ratio(m['presidio'], m['ours'])} in wall "
        f"time; target: at or ahead, >= 1.00x) and {m['full_cpu'] / m['ours_cpu']:.0%} of "
        "the bare-spaCy ceiling (the full pipeline). The methods took turns every "
        f"{BATCH} reports, so a drift of the machine's speed falls on all of them alike. "
        "Presidio default detects fewer PHI categories (no MRN, relative names, partial "
        "dates), so it is a speed baseline only; quality: "
        "bench/phi_quality.py. Its email recognizer tries to download the public suffix "
        "list first (no network here: it falls back to its bundled copy).",
    ]
    rep.add("1. PHI detection", lines)


# -- 2. overlap --------------------------------------------------------------------------


@dataclass
class Corpora:
    source: list[str]
    synthetic: list[str]
    planted: dict[int, int]


def make_corpora(n_source: int, n_synthetic: int) -> Corpora:
    src, syn, planted = overlap_speed.make_corpora(n_source, n_synthetic, WORDS, 0)
    return Corpora(src, syn, planted)


def overlap_ours(c: Corpora, executor=None, shards: int = 0) -> dict:
    """The check's per-record path, in-process: encode, build, match (timed separately)."""
    from auditkit.checks.overlap import OverlapConfig, match_batch
    from auditkit.executor import LocalExecutor
    from auditkit.ngram_index import SourceIndex, encode_batch

    cfg = OverlapConfig()
    params = cfg.params()
    m: dict = {}
    ex = executor or LocalExecutor(1)
    with timed(m, "encode"):
        batches = [c.source[i : i + 128] for i in range(0, len(c.source), 128)]
        encoded = [e for part in ex.map(encode_batch, batches) for e in part]
    with timed(m, "build"):
        index = SourceIndex.build(encoded, cfg.seed_ngram, cfg.ngram)
    if shards:  # the same encodings into a sharded index (index_shards = record_shards)
        from auditkit.index_shards import ShardedIndex

        with tempfile.TemporaryDirectory() as tmp, timed(m, "sharded_build"):
            ShardedIndex.build(
                encoded, cfg.seed_ngram, cfg.ngram, shards, shards, Path(tmp),
                sizes=[len(t) for t in c.source],
            )  # fmt: skip
    del encoded
    found = 0
    with timed(m, "match"):
        jobs = [(c.synthetic[i : i + 128], index, params) for i in range(0, len(c.synthetic), 128)]
        for n, results in enumerate(ex.map(match_batch, jobs)):
            for k, (_, res) in enumerate(results):
                i = n * 128 + k
                if i in c.planted and any(
                    mt.leak and mt.source == c.planted[i] for mt in res.matches
                ):
                    found += 1
    m["found"] = found
    m["index"] = index
    return m


def stage_overlap(args: argparse.Namespace, rep: Report, c: Corpora) -> dict:
    import overlap_quality

    ours = overlap_ours(c, shards=SHARDS)
    rep.costs["shard_build_factor"] = ours["sharded_build_cpu"] / ours["build_cpu"]
    src = [{"id": str(i), "text": t} for i, t in enumerate(c.source)]
    syn = [{"id": str(i), "text": t} for i, t in enumerate(c.synthetic)]
    lsh: dict = {}
    with timed(lsh, "total"):
        caught, lsh_build, lsh_query = overlap_quality.run_minhash(src, syn)
    lsh_found = sum(str(s) in caught[str(i)] for i, s in c.planted.items())
    brute = brute_force(c, args.brute_pairs)
    n_src, n_syn, planted = len(c.source), len(c.synthetic), len(c.planted)
    ours_total = ours["encode"] + ours["build"] + ours["match"]
    lsh_total = lsh_build + lsh_query
    ours_cpu = ours["encode_cpu"] + ours["build_cpu"] + ours["match_cpu"]
    brute_total = brute * n_src * n_syn
    rows = [
        [
            "auditkit overlap (passage level, offsets)",
            f"{ours['encode']:.1f} + {ours['build']:.1f}",
            f"{ours['match']:.1f}",
            f"{ours_total:.1f}",
            f"{ours_cpu:.1f}",
            f"{ours['found']}/{planted}",
            "1.00x",
        ],
        [
            "datasketch MinHashLSH(0.8, 128), document level",
            f"{lsh_build:.1f}",
            f"{lsh_query:.1f}",
            f"{lsh_total:.1f}",
            f"{lsh['total_cpu']:.1f}",
            f"{lsh_found}/{planted}",
            ratio(lsh["total_cpu"], ours_cpu),
        ],
        [
            "brute force rapidfuzz partial_ratio, all pairs",
            "0",
            f"{brute_total:,.0f} (extrap.)",
            f"{brute_total:,.0f} (extrap.)",
            f"{brute_total:,.0f} (extrap.)",
            "not scored",
            ratio(brute_total, ours_cpu),
        ],
    ]
    lines = [
        f"{n_src:,} source and {n_syn:,} synthetic reports of ~{WORDS} words "
        f"(bench/overlap_speed.py corpora, seed 0; {planted} synthetic reports carry a "
        f"planted 40-80-word source passage, half of them with 10% of words replaced); one "
        f"process; load average before: {load()}.",
        "",
        *table(
            [
                "method",
                "index s (encode + build)",
                "query s",
                "total s",
                "total CPU s",
                "planted passages found",
                "its CPU time / auditkit's",
            ],
            rows,
        ),
        f"Brute force: {args.brute_pairs} (synthetic, source) pairs timed, "
        f"{brute * 1000:.2f} CPU ms a pair, times {n_src:,} x {n_syn:,} pairs. "
        f"Per synthetic report against {n_src:,} source reports (wall): auditkit "
        f"{ours['match'] / n_syn * 1000:.1f} ms, MinHash {lsh_query / n_syn * 1000:.1f} ms; "
        f"brute force {brute * n_src * 1000:,.0f} CPU ms.",
        "",
        f"Sharded index (`index_shards: {SHARDS}`, `record_shards: {SHARDS}`), built in "
        f"process from the same encodings: {ours['sharded_build_cpu']:.1f} CPU s against "
        f"{ours['build_cpu']:.1f} s for the replicated index "
        f"({rep.costs['shard_build_factor']:.2f}x: each n-gram shard rehashes the source).",
        "",
        f"MinHash LSH at Jaccard 0.8 answers a different, cheaper question (is the whole "
        f"document a near-duplicate?): it found {lsh_found} of the {planted} passages "
        f"planted in otherwise new text, auditkit {ours['found']}, with offsets.",
    ]
    rep.add("2. Overlap with the source", lines)
    rep.costs["overlap_match"] = ours["match_cpu"] / n_syn
    return ours


def brute_force(c: Corpora, pairs: int) -> float:
    """Seconds per (synthetic, source) pair of rapidfuzz ``partial_ratio``, on a sample."""
    from rapidfuzz import fuzz

    per_row = max(1, min(len(c.source), pairs // 3))
    rows = max(1, pairs // per_row)
    done = 0
    t = time.process_time()
    for i in range(rows):
        query = c.synthetic[i % len(c.synthetic)]
        for s in c.source[:per_row]:
            fuzz.partial_ratio(query, s)
            done += 1
    return (time.process_time() - t) / done


# -- 3. membership -----------------------------------------------------------------------


def stage_membership(args: argparse.Namespace, rep: Report) -> None:
    path = BENCH / "mia_speed.py"
    if importlib.util.find_spec("mia_speed") is None or not path.exists():
        rep.add(
            "3. Membership scoring",
            ["not available on this branch (bench/mia_speed.py is not here)."],
        )
        return
    try:
        import mia_speed
    except Exception as exc:  # another branch's module: never let it sink the report
        rep.add(
            "3. Membership scoring",
            [f"bench/mia_speed.py failed to import ({type(exc).__name__}); not measured."],
        )
        return
    measure = getattr(mia_speed, "run_all_stage", None)
    if callable(measure):
        # Contract: run_all_stage(quick) -> {"lines": [...markdown...], "per_record_s": float}
        out = measure(args.quick)
        rep.costs["membership"] = float(out.get("per_record_s", 0.0))
        rep.add("3. Membership scoring", list(out["lines"]))
        return
    cmd = [sys.executable, str(path)]
    if args.quick and "--quick" in path.read_text():
        cmd.append("--quick")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    rep.add(
        "3. Membership scoring",
        [
            f"Output of `{' '.join(['.venv/bin/python', 'bench/mia_speed.py', *cmd[2:]])}` "
            f"(exit code {proc.returncode}), as printed:",
            "",
            "```",
            *(proc.stdout.strip().splitlines() or ["(no output)"]),
            "```",
        ],
    )


# -- 4. local vs Ray -------------------------------------------------------------------


def stage_engines(args: argparse.Namespace, rep: Report, c: Corpora, index) -> None:
    from auditkit.checks.overlap import OverlapConfig, match_batch
    from auditkit.executor import LocalExecutor, RayExecutor
    from auditkit.ngram_index import encode_batch
    from auditkit.phi.engine import EngineSpec, analyze_batch, resolve_model

    params = OverlapConfig().params()
    spec = EngineSpec(model=resolve_model(None))
    phi_docs = phi_speed.make_reports(args.engine_phi_docs, WORDS)
    phi_jobs = [(spec, phi_docs[i : i + 16]) for i in range(0, len(phi_docs), 16)]
    syn = c.synthetic
    m: dict = {}
    for name in ("local", "ray"):
        executor = LocalExecutor(2) if name == "local" else RayExecutor(2)
        with executor as ex, tempfile.TemporaryDirectory() as tmp:
            with timed(m, f"{name}_startup"):  # processes, imports and PHI engines
                list(ex.map(analyze_batch, [(spec, ["Warm up."])] * 4))
                list(ex.map(encode_batch, [["warm up"]] * 4))
            with timed(m, f"{name}_overlap"):
                ref = index
                if ex.local_files:  # what the check does: a memory-mapped folder
                    index.save(Path(tmp))
                    ref = tmp
                jobs = [(syn[i : i + 128], ref, params) for i in range(0, len(syn), 128)]
                n = sum(len(r) for r in ex.map(match_batch, jobs))
            assert n == len(syn)
            with timed(m, f"{name}_phi"):
                n = sum(len(r) for r in ex.map(analyze_batch, phi_jobs))
            assert n == len(phi_docs)
    overlap_ratio = m["ray_overlap"] / m["local_overlap"]
    phi_ratio = m["ray_phi"] / m["local_phi"]
    rep.costs["ray_overhead"] = max(overlap_ratio, phi_ratio, 1.0)
    rows = [
        [
            f"overlap matching, {len(syn):,} synthetic vs {len(c.source):,} source",
            f"{m['local_overlap']:.1f}",
            f"{m['ray_overlap']:.1f}",
            f"{overlap_ratio:.2f}x",
        ],
        [
            f"PHI, {len(phi_docs)} reports in batches of 16",
            f"{m['local_phi']:.1f}",
            f"{m['ray_phi']:.1f}",
            f"{phi_ratio:.2f}x",
        ],
        [
            "start-up: processes, imports, PHI engine (not in the rows above)",
            f"{m['local_startup']:.1f}",
            f"{m['ray_startup']:.1f}",
            "-",
        ],
    ]
    lines = [
        f"2 workers each: `LocalExecutor(2)` (spawn process pool; the overlap index saved once "
        "and memory-mapped by the workers, as the check does) vs `RayExecutor(2)` on a local "
        "Ray runtime (num_cpus=2; the index put once in the object store and mapped "
        f"zero-copy by the workers). Load average before: {load()}.",
        "",
        *table(["work", "local s", "Ray s", "Ray / local"], rows),
        f"Target: Ray within 1.30x of local on one machine; measured {overlap_ratio:.2f}x "
        f"(overlap) and {phi_ratio:.2f}x (PHI). Start-up includes the Ray runtime itself "
        "(once per command).",
    ]
    rep.add("4. Local vs Ray engine, 2 workers", lines)


# -- 5. growth ---------------------------------------------------------------------------


def stage_growth(args: argparse.Namespace, rep: Report) -> None:
    sizes = [int(s) for s in args.growth.split(",")]
    ns = argparse.Namespace(
        synthetic=args.growth_synthetic, workers=1, words=WORDS, seed=0, budget=args.growth_budget
    )
    rows_raw = []
    for size in sizes:
        row = overlap_speed.derived(overlap_speed.run_size(ns, size))
        print(
            f"  growth: {size:,} source reports measured in {row['wall_s']:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        rows_raw.append(row)
    lsh = minhash_growth([s for s in sizes if s <= args.minhash_max])
    rows = []
    for r in rows_raw:
        size = r["size"]
        rows.append(
            [
                f"{size:,}",
                f"{r['encode_cpu']:.1f}",
                f"{r['build_cpu']:.1f}",
                f"{r['match_s']:.1f}" + (" (extrap.)" if r["extrapolated"] else ""),
                f"{r['match_cpu'] / r['matched'] * 1000:.1f}",
                overlap_speed.fmt_bytes(r["index_bytes"]),
                overlap_speed.fmt_bytes(r["main_maxrss"]),
                f"{lsh[size]:.1f}" if size in lsh else "-",
            ]
        )
    growth = []
    for a, b in itertools.pairwise(rows_raw):
        k = b["size"] / a["size"]
        parts = [
            f"encode {b['encode_cpu'] / a['encode_cpu'] / k:.2f}",
            f"build {b['build_cpu'] / a['build_cpu'] / k:.2f}",
            f"index bytes {b['index_bytes'] / a['index_bytes'] / k:.2f}",
            "match CPU per synthetic report "
            f"{(b['match_cpu'] / b['matched']) / (a['match_cpu'] / a['matched']):.2f}",
        ]
        if a["size"] in lsh and b["size"] in lsh:
            parts.append(f"MinHash insert {lsh[b['size']] / lsh[a['size']] / k:.2f}")
        growth.append(f"- {a['size']:,} -> {b['size']:,} (x{k:g}): " + ", ".join(parts))
    big = rows_raw[-1]
    rep.costs.update(
        encode=big["encode_cpu"] / big["size"],
        build=big["build_cpu"] / big["size"],
        index_bytes=big["index_bytes"] / big["size"],
        growth_size=big["size"],
        match_big=big["match_cpu"] / big["matched"],
    )
    if len(rows_raw) > 1:
        a, b = rows_raw[-2], rows_raw[-1]
        per_a, per_b = a["match_cpu"] / a["matched"], b["match_cpu"] / b["matched"]
        rep.costs["match_exponent"] = max(
            0.0, math.log(per_b / per_a) / math.log(b["size"] / a["size"])
        )
    lines = [
        f"Overlap stages at each source size, {args.growth_synthetic:,} synthetic reports "
        "matched, 1 worker, each size in a fresh process (bench/overlap_speed.py `measure`): "
        "encode and build in CPU seconds of the process; match in wall seconds"
        + (f", extrapolated past {args.growth_budget:g} s" if args.growth_budget else "")
        + f". Load average before: {load()}.",
        "",
        *table(
            [
                "source reports",
                "encode CPU s",
                "build CPU s",
                "match s",
                "match CPU ms per synthetic",
                "index memory",
                "peak RSS",
                "MinHash insert CPU s",
            ],
            rows,
        ),
        "Growth, cost ratio / size ratio (1.00 = linear; for matching, the ratio of the "
        "per-synthetic cost, 1.00 = flat):",
        "",
        *growth,
        "- PHI (each report is analysed alone, so its cost does not depend on corpus size): "
        f"per-report cost of the full PHI sample / of its first quarter = "
        f"{rep.costs.get('phi_growth', float('nan')):.2f}",
        "",
        "Target: linear growth (about 1.00).",
    ]
    rep.add("5. Growth with the source corpus", lines)


def minhash_growth(sizes: list[int]) -> dict[int, float]:
    """CPU seconds to sketch and insert ``size`` source reports into MinHashLSH(0.8, 128)."""
    import overlap_quality
    from datasketch import MinHash, MinHashLSH

    out = {}
    for size in sizes:
        src, _, _ = overlap_speed.make_corpora(size, 1, WORDS, 0)
        t = time.process_time()
        lsh = MinHashLSH(threshold=0.8, num_perm=128)
        for i, text in enumerate(src):
            mh = MinHash(num_perm=128, seed=1)
            mh.update_batch(list(overlap_quality.shingles(text)))
            lsh.insert(str(i), mh)
        out[size] = time.process_time() - t
    return out


# -- 6. the estimate -------------------------------------------------------------------


def stage_estimate(rep: Report) -> None:
    c = rep.costs
    need = ("phi", "encode", "build", "match_big", "index_bytes")
    if any(k not in c for k in need):
        rep.add(
            "6. Cluster size for 1M synthetic vs 10M source in one hour",
            ["not computed: a stage it needs did not run."],
        )
        return
    n_syn, n_src = TARGET_SYNTHETIC, TARGET_SOURCE
    exponent = c.get("match_exponent", 0.0)
    scale = (n_src / c["growth_size"]) ** exponent
    match_10m = c["match_big"] * scale
    mia = c.get("membership", 0.0)
    overhead = c.get("ray_overhead", 1.0)
    phi_cs = (n_syn + n_src) * c["phi"]
    enc_cs = n_src * c["encode"]
    match_cs = n_syn * match_10m
    # The probe scores a sample of the generator's training records and of the holdout
    # (MembershipConfig.sample, each), however large the synthetic set is.
    from auditkit.checks.membership import MembershipConfig

    sample = MembershipConfig().sample
    probe_n = 2 * sample
    mia_cs = probe_n * mia
    index_gb = n_src * c["index_bytes"] / 1024**3
    # A replicated index is built in one process on the driver, before matching can
    # start; an index beyond a node's memory is sharded, and its build runs as one job
    # per n-gram shard on the workers (more CPU in all: each job rehashes the source).
    sharded = index_gb > NODE_MEMORY_GIB
    factor = c.get("shard_build_factor", 1.0)
    build_cs = n_src * c["build"] * factor if sharded else 0.0
    build_s = 0.0 if sharded else n_src * c["build"]
    total = phi_cs + enc_cs + match_cs + mia_cs + build_cs
    window = HOUR - build_s
    serial_fits = window > 0
    if not serial_fits:  # the one-process build alone overruns the hour
        window = HOUR
    cores = math.ceil(total * overhead / window)
    nodes = math.ceil(cores / CORES_PER_NODE)
    if sharded:
        build_line = (
            f"build    {n_src:,} x {c['build']:.6f} s x {factor:.2f} (sharded, section 2) = "
            f"{build_cs:,.0f}"
        )
        index_line = (
            f"index    {index_gb:,.1f} GiB > {NODE_MEMORY_GIB} GiB per node: sharded "
            f"(index_shards), built by the workers"
        )
        cores_line = (
            f"cores    {total * overhead:,.0f} / {HOUR:.0f} s = {cores:,} cores = {nodes:,} "
            f"nodes of {CORES_PER_NODE} cores"
        )
    else:
        build_line = "build    (replicated index: serial on the driver, below)"
        index_line = (
            f"serial   index build {n_src:,} x {c['build']:.6f} s = {build_s:,.0f} s on the "
            f"driver; index {index_gb:,.1f} GiB, replicated"
        )
        cores_line = (
            f"cores    {total * overhead:,.0f} / ({HOUR:.0f} - {build_s:,.0f}) s = {cores:,} "
            f"cores = {nodes:,} nodes of {CORES_PER_NODE} cores"
            if serial_fits
            else f"cores    the serial build ({build_s:,.0f} s) alone overruns the hour: "
            f"{total * overhead:,.0f} / {HOUR:.0f} s = {cores:,} cores = {nodes:,} nodes of "
            f"{CORES_PER_NODE} cores once the build is sharded"
        )
    lines = [
        "Per-record costs measured above, in CPU seconds of one core (this run, this machine):",
        "",
        f"- PHI: {c['phi'] * 1000:.1f} CPU ms per report; it runs on every synthetic report and "
        "on every source report (the source's identifiers are what reuse is checked against)",
        f"- overlap encode: {c['encode'] * 1000:.2f} ms per source report; index build "
        f"(replicated, one process): {c['build'] * 1000:.3f} ms per source report, sharded "
        f"{factor:.2f}x that in all (section 2); index {c['index_bytes'] / 1024:.1f} KiB per "
        "source report",
        f"- overlap match: {c['match_big'] * 1000:.1f} ms per synthetic report at "
        f"{c['growth_size']:,} source reports; measured growth exponent {exponent:.2f} "
        f"-> x{scale:.2f} at {n_src:,} = {match_10m * 1000:.1f} ms",
        f"- membership scoring: {mia * 1000:.1f} ms per scored record with the fixture "
        f"generator; the probe scores {sample:,} members and {sample:,} "
        "non-members whatever the corpus size (`checks.membership.sample`)"
        + ("" if "membership" in c else " (not measured in this run: counted as 0)"),
        f"- Ray overhead factor: {overhead:.2f} (the larger of the two ratios in section 4, "
        "at least 1)",
        "",
        "Core-seconds of distributed work:",
        "",
        "```",
        f"PHI      ({n_syn:,} + {n_src:,}) x {c['phi']:.4f} s = {phi_cs:,.0f}",
        f"encode   {n_src:,} x {c['encode']:.5f} s = {enc_cs:,.0f}",
        build_line,
        f"match    {n_syn:,} x {match_10m:.4f} s = {match_cs:,.0f}",
        f"member.  {probe_n:,} x {mia:.4f} s = {mia_cs:,.0f}",
        f"total    {total:,.0f} core-s x {overhead:.2f} (Ray overhead) = "
        f"{total * overhead:,.0f} core-s",
        index_line,
        cores_line,
        "```",
        "",
        f"Estimate: about **{cores:,} cores ({nodes:,} x {CORES_PER_NODE}-core nodes)** to "
        f"audit {n_syn:,} synthetic against {n_src:,} source reports in one hour, PHI being "
        f"{phi_cs / total:.0%} of the work.",
        "",
        "Caveats: the costs are CPU seconds of this 2-core machine, taken as what one core of "
        "a cluster node does; the calibrated embedding distance test (MiniLM embeddings of "
        "source, synthetic and holdout) runs on the driver and is not included; the "
        "membership cost is the fixture generator's (a production LLM costs orders of "
        "magnitude more per scored record, on 2,000 records); the PHI scan cache makes a "
        "re-audit of the same source nearly free."
        + (
            f" Sharded, the driver still holds the loaded source texts and writes the "
            f"{index_gb:,.0f} GiB index to its local disk (README, design notes)."
            if sharded
            else ""
        ),
    ]
    rep.add("6. Cluster size for 1M synthetic vs 10M source in one hour", lines)


# -- the driver --------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not timings")
    ap.add_argument("--out", default=str(BENCH / "RESULTS.md"))
    ap.add_argument("--phi-docs", type=int)
    ap.add_argument("--source", type=int)
    ap.add_argument("--synthetic", type=int)
    ap.add_argument("--brute-pairs", type=int)
    ap.add_argument("--engine-phi-docs", type=int)
    ap.add_argument("--growth")
    ap.add_argument("--growth-synthetic", type=int)
    ap.add_argument("--growth-budget", type=float, help="seconds of matching per growth size")
    ap.add_argument("--minhash-max", type=int, help="largest source size of MinHash growth")
    ap.add_argument(
        "--skip",
        default="",
        help="comma-separated stages to skip: phi,overlap,membership,engines,growth",
    )
    args = ap.parse_args(argv)
    full = dict(
        phi_docs=100,
        source=5000,
        synthetic=500,
        brute_pairs=8,
        engine_phi_docs=48,
        growth="1000,10000,100000",
        growth_synthetic=200,
        growth_budget=60.0,
        minhash_max=10_000,
    )
    quick = dict(
        phi_docs=8,
        source=200,
        synthetic=40,
        brute_pairs=2,
        engine_phi_docs=8,
        growth="100,200",
        growth_synthetic=20,
        growth_budget=20.0,
        minhash_max=200,
    )
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def command(args: argparse.Namespace) -> str:
    extra = f" --skip {args.skip}" if args.skip else ""
    if args.quick:
        return f".venv/bin/python bench/run_all.py --quick --out {args.out}{extra}"
    return (
        ".venv/bin/python bench/run_all.py"
        + extra
        + " "
        + " ".join(
            f"--{k.replace('_', '-')} {getattr(args, k)}"
            for k in (
                "phi_docs",
                "source",
                "synthetic",
                "brute_pairs",
                "engine_phi_docs",
                "growth",
                "growth_synthetic",
                "growth_budget",
                "minhash_max",
            )
        )
    )


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("AUDITKIT_NO_CACHE", "1")  # time the work, not the cache
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse(argv)
    skip = set(filter(None, args.skip.split(",")))
    started = dt.datetime.now(dt.timezone.utc)
    load_start = load()
    t0 = time.perf_counter()
    rep = Report()
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
        ).stdout.strip()
        or "unknown"
    )
    titles = {
        "phi": "1. PHI detection",
        "overlap": "2. Overlap with the source",
        "membership": "3. Membership scoring",
        "engines": "4. Local vs Ray engine, 2 workers",
        "growth": "5. Growth with the source corpus",
    }
    for name in sorted(skip & set(titles)):
        rep.add(titles[name], [f"skipped in this run (--skip {name})."])
    if "phi" not in skip:
        stage_phi(args, rep)
    corpora = make_corpora(args.source, args.synthetic)
    index = None
    if "overlap" not in skip:
        index = stage_overlap(args, rep, corpora)["index"]
    if "membership" not in skip:
        stage_membership(args, rep)
    if "engines" not in skip:
        if index is None:
            index = overlap_ours(corpora)["index"]
        stage_engines(args, rep, corpora, index)
    if "growth" not in skip:
        stage_growth(args, rep)
    stage_estimate(rep)
    rep.sections.sort(key=lambda text: text.split(".", 1)[0])
    head = [
        "# auditkit performance report",
        "",
        "Written by `bench/run_all.py` (do not edit by hand); every figure below was "
        "measured in the run described here, each stage side by side with its baseline.",
        "",
        f"- run: {started:%Y-%m-%d %H:%M} UTC, {time.perf_counter() - t0:.0f} s, "
        f"auditkit commit {commit}"
        + (" (**--quick: tiny sizes, not timings**)" if args.quick else ""),
        *machine(),
        f"- load average at start: {load_start}",
        f"- load average at end: {load()}",
        f"- command: `{command(args)}`",
        "- note: the machine was shared with other jobs when the load average exceeds the "
        "core count; wall times are then inflated, and ratios measured side by side in the "
        "same minute are the steadier figures.",
        "",
    ]
    Path(args.out).write_text("\n".join(head) + "\n" + "\n".join(rep.sections))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
