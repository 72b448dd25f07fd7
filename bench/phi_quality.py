"""Token-level quality of the phi check on the hand-labelled PHI benchmark.

Reproduce:
    .venv/bin/python bench/phi_quality.py [--model NAME] [--errors CATEGORY] [--show-misses]

Tokens are maximal ``\\w+`` runs of the text (the benchmark README's definition), the
same for gold and predicted spans. A token is gold PHI when it overlaps a gold span, and
detected when it overlaps a predicted span: of ANY category for the "any-type" numbers
(did the PHI get caught at all?), of the SAME category for "typed" and per-category
numbers. F2 weighs recall twice as much as precision, as a missed identifier costs more
than an over-masked word.

The same numbers are printed for Presidio's out-of-the-box AnalyzerEngine with the same
spaCy model, its entities mapped to our categories with rules/phi/categories.yaml
(entities the mapping ignores, such as NRP, are dropped).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from auditkit.phi.rules import CATEGORIES, load_rules  # noqa: E402

BENCH = REPO / "fixtures" / "phi_benchmark" / "documents.jsonl"
TOKEN = re.compile(r"\w+")


def load_docs():
    return [json.loads(line) for line in BENCH.read_text().splitlines() if line.strip()]


def token_labels(text, spans):
    """For each \\w+ token: the set of categories of spans overlapping it."""
    out = []
    for m in TOKEN.finditer(text):
        cats = {c for s, e, c in spans if s < m.end() and e > m.start()}
        out.append(cats)
    return out


def score(docs, predictions):
    tp_any = fp_any = fn_any = 0
    typed = Counter()
    per = {c: Counter() for c in CATEGORIES}
    for doc, pred in zip(docs, predictions, strict=True):
        gold = token_labels(doc["text"], [(s["start"], s["end"], s["type"]) for s in doc["spans"]])
        got = token_labels(doc["text"], pred)
        for g, p in zip(gold, got, strict=True):
            if g and p:
                tp_any += 1
            elif p:
                fp_any += 1
            elif g:
                fn_any += 1
            for c in CATEGORIES:
                if c in g and c in p:
                    per[c]["tp"] += 1
                elif c in p:
                    per[c]["fp"] += 1
                elif c in g:
                    per[c]["fn"] += 1
            if g or p:
                typed["tp"] += len(g & p)
                typed["fp"] += len(p - g)
                typed["fn"] += len(g - p)
    return {"any": (tp_any, fp_any, fn_any), "typed": (typed["tp"], typed["fp"], typed["fn"])} | {
        c: (v["tp"], v["fp"], v["fn"]) for c, v in per.items()
    }


def prf(tp, fp, fn):
    r = tp / (tp + fn) if tp + fn else float("nan")
    p = tp / (tp + fp) if tp + fp else float("nan")
    f2 = 5 * p * r / (4 * p + r) if p + r and p == p and r == r else float("nan")
    return r, p, f2


def ours(docs, model):
    from auditkit.phi.engine import EngineSpec, get_engine

    engine = get_engine(EngineSpec(model=model))
    spans = engine.analyze([d["text"] for d in docs])
    return [[(s.start, s.end, s.type) for s in doc] for doc in spans]


def presidio_default(docs, model):
    import logging

    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)  # offline: no suffix list
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": model}],
        }
    )
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine())
    rules = load_rules()
    out = []
    unmapped = Counter()
    for d in docs:
        spans = []
        for r in analyzer.analyze(d["text"], language="en"):
            try:
                cat = rules.category_of(r.entity_type)
            except KeyError:
                unmapped[r.entity_type] += 1
                cat = None
            if cat:
                spans.append((r.start, r.end, cat))
        out.append(spans)
    if unmapped:
        print(f"(presidio entities without a category, dropped: {dict(unmapped)})")
    return out


def show_errors(docs, predictions, category, misses_only=False):
    """Print the gold spans of ``category`` not caught (any overlap) and, unless
    ``misses_only``, the predicted spans of it that overlap no gold span."""
    print(f"-- {category}")
    for doc, pred in zip(docs, predictions, strict=True):
        text = doc["text"]
        gold = [(s["start"], s["end"]) for s in doc["spans"] if s["type"] == category]
        mine = [(s, e) for s, e, c in pred if c == category]
        for s, e in gold:
            if not any(a < e and b > s for a, b in mine):
                print(f"  MISS {doc['id']}: {text[max(0, s - 30) : s]!r} [{text[s:e]}]")
        if misses_only:
            continue
        for s, e in mine:
            if not any(a < e and b > s for a, b in gold):
                print(f"  FP   {doc['id']}: {text[max(0, s - 30) : s]!r} [{text[s:e]}]")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--errors", default=None, help="print misses and false positives of a category")
    ap.add_argument(
        "--show-misses",
        action="store_true",
        help="print the missed gold spans of every category (no false positives)",
    )
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    from auditkit.phi.engine import resolve_model

    model = resolve_model(args.model)
    docs = load_docs()
    t = time.perf_counter()
    mine = ours(docs, model)
    t_ours = time.perf_counter() - t
    base = None
    if not args.no_baseline:
        t = time.perf_counter()
        base = presidio_default(docs, model)
        t_base = time.perf_counter() - t
    a = score(docs, mine)
    b = score(docs, base) if base else None
    print(f"PHI benchmark: {len(docs)} documents, model {model}")
    print(f"command: .venv/bin/python bench/phi_quality.py --model {model}")
    hdr = f"{'':<16}{'ours R':>8}{'P':>7}{'F2':>7}"
    if b:
        hdr += f"   {'presidio R':>10}{'P':>7}{'F2':>7}"
    print(hdr + f"{'gold tok':>10}")
    for key in ["any", "typed", *CATEGORIES]:
        label = {"any": "ALL any-type", "typed": "ALL typed"}.get(key, key)
        r, p, f2 = prf(*a[key])
        row = f"{label:<16}{r:>8.3f}{p:>7.3f}{f2:>7.3f}"
        if b:
            r2, p2, f22 = prf(*b[key])
            row += f"   {r2:>10.3f}{p2:>7.3f}{f22:>7.3f}"
        print(row + f"{a[key][0] + a[key][2]:>10}")
    print(f"time: ours {t_ours:.1f}s" + (f", presidio default {t_base:.1f}s" if b else ""))
    if args.errors:
        show_errors(docs, mine, args.errors)
    if args.show_misses:
        for category in CATEGORIES:
            show_errors(docs, mine, category, misses_only=True)


if __name__ == "__main__":
    main()
