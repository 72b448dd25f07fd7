"""Audit-first generation: ICD-10-conditioned reports that are screened before they are kept.

``auditkit generate`` asks a generator for N reports per code. Every report passes the
per-record screen before it is kept -- no PHI, no identifier of a real patient, no passage
copied from a source report, not a near-duplicate of a report already kept, a sane
length -- and what fails is written to ``quarantine.jsonl`` (gate ids and masked reasons,
never the text) and generated again with a new seed, up to ``max_attempts`` times. The
run ends with the full audit of the kept reports and its signed bundle.

The output folder is the run's state, so an interrupted run continues where it stopped:

``generation.json``
    the settings (and digests of the source, holdout, prompt and policy). A second run
    with other settings into the same folder is refused rather than mixed.
``generated.jsonl``
    the kept reports, append-only, one fsync'ed line per report.
``quarantine.jsonl``
    one line per rejected attempt, append-only.
``audit/``
    the audit bundle of the kept reports, written when every slot is settled.

Every report has a slot (``gen-<code>-<n>``) and every attempt at a slot a seed derived
from the run seed, the slot and the attempt number. Attempts are made in a fixed global
order -- first attempts of every slot in order, then second attempts, ... -- and screened
in that order, so what is kept depends only on the settings and the generator's answers,
not on where a run was interrupted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from auditkit.corpus import Corpus, Record, normalize_code
from auditkit.errors import AuditkitError, UsageError

log = logging.getLogger(__name__)

STATE_FILE = "generation.json"
KEPT_FILE = "generated.jsonl"
QUARANTINE_FILE = "quarantine.jsonl"
AUDIT_DIR = "audit"

#: In a prompt template, everything after this marker is the opening of the report itself
#: (completion prompts): it is sent as part of the prompt and kept as the report's start.
REPORT_MARKER = "<<<report>>>"
#: Completion prompts separate examples with this line; a model that starts another
#: report is stopped there.
EXAMPLE_SEPARATOR = "====="

#: Screen gate ids, in the order they are tried. Quarantine lines name these.
GATES = {
    "length": "the report's length is outside the sane range",
    "phi": "the report contains protected health information",
    "source-identifier-reuse": "the report repeats an identifier of a real source patient",
    "copied-passage": "the report copies a passage of a source report",
    "near-duplicate": "the report is a near-copy of a report already kept",
}

_THINK_BLOCK = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.S | re.I)
_THINK_CLOSE = re.compile(r"</think(?:ing)?>", re.I)
_THINK_OPEN = re.compile(r"<think(?:ing)?>", re.I)


class GenerationStopped(AuditkitError):
    """The generator kept failing; the work so far is on disk (exit code 3)."""

    exit_code = 3


# ---------------------------------------------------------------------------------------
# Small pure pieces.


def parse_codes(value: str) -> dict[str, int]:
    """Parse ``F32.1:200,F41.1:200`` into ``{code: count}`` (input order kept).

    Raises:
        UsageError: for a malformed item, a bad code, a non-positive count or a repeat.
    """
    out: dict[str, int] = {}
    hint = "write --codes as CODE:COUNT pairs separated by commas, e.g. F32.1:200,F41.1:150"
    for item in (p.strip() for p in value.split(",")):
        if not item:
            continue
        code_text, sep, count_text = item.rpartition(":")
        if not sep or not code_text:
            raise UsageError(f"--codes item {item!r} has no ':COUNT'", hint=hint)
        try:
            code = normalize_code(code_text)
        except ValueError:
            raise UsageError(
                f"--codes item {item!r}: {code_text!r} is not an ICD-10 code", hint=hint
            ) from None
        if not count_text.isdigit() or int(count_text) < 1:
            raise UsageError(
                f"--codes item {item!r}: the count must be a positive integer", hint=hint
            )
        if code in out:
            raise UsageError(f"--codes names {code} twice", hint=hint)
        out[code] = int(count_text)
    if not out:
        raise UsageError("--codes is empty", hint=hint)
    return out


def strip_reasoning(text: str) -> str:
    """Drop a reasoning model's chain of thought, keeping only the report.

    Handles ``<think>…</think>`` blocks anywhere, a bare ``</think>`` (chat templates that
    open the block in the prompt: everything before it is reasoning) and an unterminated
    ``<think>`` (the model ran out of tokens while thinking: no report at all).
    """
    text = _THINK_BLOCK.sub("", text)
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    opened = _THINK_OPEN.search(text)
    if opened:
        text = text[: opened.start()]
    return text.strip()


def attempt_seed(seed: int, slot: str, attempt: int) -> int:
    """The seed of one attempt at one slot (31 bits, what every backend accepts)."""
    digest = hashlib.sha256(f"auditkit:generate:{seed}:{slot}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def slot_ids(codes: Mapping[str, int]) -> list[tuple[str, str]]:
    """Every ``(slot id, code)`` of a request, in generation order."""
    width = max(4, len(str(max(codes.values()))))
    return [
        (f"gen-{code}-{i:0{width}d}", code) for code, n in codes.items() for i in range(1, n + 1)
    ]


# ---------------------------------------------------------------------------------------
# Prompts.


@dataclass(frozen=True)
class PromptBuilder:
    """Renders the jinja2 prompt of one attempt: code title, criteria and K examples."""

    template_path: Path
    codebook: Any  # auditkit.icd10.CodeBook
    source: Corpus | None
    examples: int

    def __post_init__(self) -> None:
        import jinja2

        env = jinja2.Environment(
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
        )
        try:
            template = env.from_string(self.template_path.read_text(encoding="utf-8"))
        except OSError as e:
            raise UsageError(
                f"cannot read prompt template {self.template_path}: {e.strerror}"
            ) from None
        except jinja2.TemplateSyntaxError as e:
            raise UsageError(
                f"{self.template_path}, line {e.lineno}: {e.message}",
                hint="fix the jinja2 syntax of the prompt template",
            ) from None
        object.__setattr__(self, "_template", template)
        by_code: dict[str, list[Record]] = {}
        for record in self.source or ():
            if record.primary_code:
                by_code.setdefault(record.primary_code, []).append(record)
        object.__setattr__(self, "_by_code", by_code)

    def candidates(self, code: str) -> list[Record]:
        """Source reports a prompt for ``code`` may quote: same code, else same category."""
        by_code: dict[str, list[Record]] = self._by_code  # type: ignore[attr-defined]
        same = by_code.get(code, [])
        if len(same) >= self.examples:
            return same
        category = [
            r for c, rs in sorted(by_code.items()) if c[:3] == code[:3] and c != code for r in rs
        ]
        return same + category

    def render(self, code: str, rng: random.Random) -> tuple[str, str, list[str]]:
        """The prompt for ``code``, the report opening it ends with, and the example ids.

        The opening is what follows :data:`REPORT_MARKER` in the rendered template (empty
        when the template has no marker); the marker itself is not sent.
        """
        import jinja2

        definition = self.codebook.lookup(code)
        pool = self.candidates(code) if self.examples else []
        chosen = rng.sample(pool, min(self.examples, len(pool)))
        try:
            prompt = self._template.render(  # type: ignore[attr-defined]
                code=code,
                title=definition.title if definition else code,
                category=code[:3],
                criteria=[c.label for c in definition.criteria] if definition else [],
                examples=[r.text for r in chosen],
            )
        except jinja2.UndefinedError as e:
            raise UsageError(
                f"prompt template {self.template_path}: {e.message}",
                hint="the template may use code, title, category, criteria and examples",
            ) from None
        head, marker, opening = prompt.partition(REPORT_MARKER)
        return head + opening, opening if marker else "", [r.id for r in chosen]


# ---------------------------------------------------------------------------------------
# The per-record screen.


@dataclass(frozen=True)
class Rejection:
    """Why one attempt was not kept: a gate id and a masked, value-free reason."""

    gate: str
    reason: str


@dataclass
class RecordScreen:
    """The per-record gates, with corpus-level state built once.

    PHI and source-identifier reuse use the ``phi`` check itself (its spans and reuse
    rules, configured from the policy), so a kept report is one the audit's record gate
    would release; copied passages use the overlap check's matcher against a source
    n-gram index built once; near-duplicates are found with the diversity check's
    shingles and MinHash, verified by exact Jaccard, against every report already kept.
    """

    policy: Any  # auditkit.policy.Policy
    context: Any  # auditkit.checks.base.CheckContext
    min_words: int
    max_words: int
    _phi: Any = field(init=False)
    _overlap_index: Any = field(init=False, default=None)
    _overlap_params: Any = field(init=False, default=None)
    _lsh: Any = field(init=False)
    _kept: dict[str, frozenset[int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        from datasketch import MinHashLSH

        from auditkit.checks.diversity import _lsh_bands
        from auditkit.checks.phi import PhiCheck

        self._phi = PhiCheck(self.policy.check_config("phi"))
        self._div = self.policy.check_config("diversity")
        self._lsh = MinHashLSH(
            num_perm=self._div.num_perm,
            params=_lsh_bands(self._div.near_duplicate_jaccard, self._div.num_perm),
        )
        source = self.context.source
        if source is not None and len(source):
            from auditkit.ngram_index import SourceIndex, encode_batch

            cfg = self.policy.check_config("overlap")
            self._overlap_params = cfg.params()
            encoded = encode_batch([r.text for r in source])
            self._overlap_index = SourceIndex.build(encoded, cfg.seed_ngram, cfg.ngram)
            self._source_ids = source.ids

    def models(self) -> list[dict[str, Any]]:
        """The models the screen used (the PHI check's spaCy model)."""
        return self._phi.models()

    def _profile(self, text: str) -> Any:
        from auditkit.checks.diversity import profile_batch

        cfg = self._div
        return profile_batch(([text], cfg.shingle_words, cfg.num_perm, self.context.seed))[0]

    def remember(self, record_id: str, text: str) -> None:
        """Add a kept report to the near-duplicate index."""
        profile = self._profile(text)
        self._lsh.insert(record_id, profile.minhash)
        self._kept[record_id] = profile.shingles

    def screen(self, records: Sequence[Record]) -> list[list[Rejection]]:
        """The rejections of each record, screened in order (earlier ones may be kept).

        A record that passes is remembered at once, so two near-copies in one batch are
        caught too.
        """
        from auditkit.checks.diversity import jaccard
        from auditkit.text import words

        masker = self.context.masker
        phi_scans = {}
        lengths = {r.id: len(words(r.text)) for r in records}
        sane = [r for r in records if self.min_words <= lengths[r.id] <= self.max_words]
        if sane:
            batch = Corpus("synthetic", "<generated>", "jsonl", "", 0, tuple(sane))
            for scan in self._phi.scan(replace(self.context, synthetic=batch)):
                phi_scans[scan.id] = scan.spans
        out: list[list[Rejection]] = []
        for record in records:
            reasons: list[Rejection] = []
            n = lengths[record.id]
            if record.id not in phi_scans:
                reasons.append(
                    Rejection(
                        "length", f"{n} words; a report must have {self.min_words}-{self.max_words}"
                    )
                )
                out.append(reasons)
                continue
            spans = phi_scans[record.id]
            if spans:
                shown = ", ".join(
                    f"{s.type} {masker.token(record.text[s.start : s.end], s.type)}"
                    for s in spans[:5]
                )
                more = f" and {len(spans) - 5} more" if len(spans) > 5 else ""
                reasons.append(Rejection("phi", f"{len(spans)} PHI span(s): {shown}{more}"))
            reused = [s for s in spans if s.in_source]
            if reused:
                kinds = sorted({s.type for s in reused})
                reasons.append(
                    Rejection(
                        "source-identifier-reuse",
                        f"{len(reused)} identifier(s) of a real source patient "
                        f"({', '.join(kinds)})",
                    )
                )
            if self._overlap_index is not None:
                reasons += self._copied(record)
            profile = self._profile(record.text)
            best = max(
                (
                    (key, jaccard(profile.shingles, self._kept[key]))
                    for key in self._lsh.query(profile.minhash)
                ),
                key=lambda kv: (kv[1], kv[0]),
                default=None,
            )
            if best is not None and best[1] >= self._div.near_duplicate_jaccard:
                reasons.append(
                    Rejection(
                        "near-duplicate",
                        f"near-copy of kept report {best[0]} (Jaccard {best[1]:.2f})",
                    )
                )
            if not reasons:
                self._lsh.insert(record.id, profile.minhash)
                self._kept[record.id] = profile.shingles
            out.append(reasons)
        return out

    def _copied(self, record: Record) -> list[Rejection]:
        from auditkit.ngram_index import encode
        from auditkit.overlap_match import match_record

        result = match_record(encode(record.text), self._overlap_index, self._overlap_params)
        leaks = [m for m in result.matches if m.leak]
        if not leaks:
            return []
        worst = max(leaks, key=lambda m: m.tokens)
        return [
            Rejection(
                "copied-passage",
                f"{len(leaks)} copied passage(s); longest {worst.tokens} words ({worst.kind}, "
                f"similarity {worst.similarity:.2f}) from source {self._source_ids[worst.source]}",
            )
        ]


def length_bounds(source: Corpus | None) -> tuple[int, int]:
    """Default sane length: half the source's 5th percentile to twice its 95th, in words.

    Without a source: 100 to 3,000 words (a mental-health evaluation is rarely outside).
    """
    from auditkit.text import words

    if source is None or len(source) < 20:
        return 100, 3000
    counts = sorted(len(words(r.text)) for r in source)
    p5 = counts[int(0.05 * (len(counts) - 1))]
    p95 = counts[int(0.95 * (len(counts) - 1))]
    return max(20, p5 // 2), max(p95 * 2, p5 + 1)


# ---------------------------------------------------------------------------------------
# The run's files.


@dataclass(frozen=True)
class Settings:
    """Everything that decides what a run generates (recorded in generation.json)."""

    codes: dict[str, int]
    generator: str
    mode: str
    prompt: str
    prompt_sha256: str
    examples: int
    temperature: float
    max_tokens: int
    seed: int
    max_attempts: int
    min_words: int
    max_words: int
    policy_sha256: str
    source_sha256: str | None
    holdout_sha256: str | None

    def to_json(self) -> dict[str, Any]:
        """The settings as recorded (codes as an ordered list of pairs)."""
        out = dict(self.__dict__)
        out["codes"] = [[c, n] for c, n in self.codes.items()]
        return out


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Lines of one of our own append-only files; a torn last line is cut off.

    A line is torn when a run died mid-write (no newline, or not JSON). Only the last line
    can be torn, since every write is one line followed by a flush; anything else is
    corruption and an error.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    out = []
    good_end = 0
    for i, raw in enumerate(lines):
        if not raw.strip():
            good_end += len(raw) + 1
            continue
        last = i == len(lines) - 1 or (i == len(lines) - 2 and not lines[-1])
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError:
            if not last:
                raise UsageError(
                    f"{path}, line {i + 1}: not JSON; the run folder is damaged",
                    hint="restore the file or start a new run in an empty --out folder",
                ) from None
            break
        if i == len(lines) - 1:  # complete JSON but no newline: still torn
            out.pop()
            break
        good_end += len(raw) + 1
    if good_end < len(data):
        log.warning("%s: cutting an incomplete last line left by an interrupted run", path)
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
    return out


class _Appender:
    """Append one JSON line at a time, flushed and fsync'ed (restart-safe)."""

    def __init__(self, path: Path) -> None:
        self._fh: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, obj: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


@dataclass
class GenerationSummary:
    """How a run ended: counts, shortfalls and the audit outcome."""

    out: Path
    requested: int
    kept: int
    quarantined: int
    attempts: int
    exhausted: list[str]
    per_code: dict[str, dict[str, int]]
    audit: Any = None  # pipeline.AuditOutcome

    @property
    def exit_code(self) -> int:
        """The verdict's exit code; 1 when the requested counts were not all produced."""
        code = self.audit.run.verdict.exit_code if self.audit is not None else 0
        return max(code, 1) if self.exhausted else code


class _Status:
    """A one-line status on stderr (TTY) or a log line every few seconds (no TTY)."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        self.total = total
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self.last = 0.0
        self.new = 0

    def update(self, kept: int, quarantined: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (0.2 if self.tty else 10.0):
            return
        self.last = now
        rate = self.new / max(now - self.start, 1e-9)
        line = (
            f"generate: {kept}/{self.total} kept, {quarantined} quarantined, "
            f"{rate * 60:.1f} attempts/min"
        )
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
            sys.stderr.flush()
        else:
            log.info(line)


# ---------------------------------------------------------------------------------------
# The loop.


def _check_settings(state: Path, settings: Settings) -> None:
    if not state.exists():
        state.write_text(json.dumps(settings.to_json(), indent=2, sort_keys=True) + "\n")
        return
    try:
        recorded = json.loads(state.read_text())
    except json.JSONDecodeError:
        raise UsageError(
            f"{state} is not JSON; the run folder is damaged",
            hint="start a new run in an empty --out folder",
        ) from None
    wanted = settings.to_json()
    differ = sorted(k for k in set(wanted) | set(recorded) if wanted.get(k) != recorded.get(k))
    if differ:
        raise UsageError(
            f"{state.parent} holds a run with other settings ({', '.join(differ)} differ)",
            hint="repeat the original command to continue that run, or use a new --out folder",
        )


def run_generation(
    settings: Settings,
    out: Path,
    generator: Any,
    prompts: PromptBuilder,
    screen: RecordScreen,
    *,
    concurrency: int = 1,
    progress: bool | None = None,
    on_wave: Callable[[int], None] | None = None,
) -> GenerationSummary:
    """Generate and screen until every slot is kept or out of attempts (resumable).

    Args:
        settings: what to generate (must match the folder's generation.json if present).
        out: the run folder.
        generator: an ``auditkit.generators.Generator``.
        prompts: renders each attempt's prompt.
        screen: the per-record gates.
        concurrency: requests in flight at once (one wave).
        progress: status line on stderr (None: when stderr is a terminal).
        on_wave: called with the number of attempts settled after each wave (tests).
    """
    from auditkit.generators import GenerationParams, GeneratorError

    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out / STATE_FILE, settings)
    kept_rows = _read_jsonl(out / KEPT_FILE)
    quarantine_rows = _read_jsonl(out / QUARANTINE_FILE)
    slots = slot_ids(settings.codes)
    known = {s for s, _ in slots}
    kept = {row["id"] for row in kept_rows}
    tried: dict[str, int] = {}
    for row in quarantine_rows:
        tried[row["slot"]] = tried.get(row["slot"], 0) + 1
    if (kept | set(tried)) - known:
        raise UsageError(
            f"{out} holds reports of slots this request does not have",
            hint="use a new --out folder",
        )
    for row in kept_rows:
        screen.remember(row["id"], row["text"])
    kept_file, quarantine_file = _Appender(out / KEPT_FILE), _Appender(out / QUARANTINE_FILE)
    status = _Status(sum(settings.codes.values()), progress)
    n_quarantined = len(quarantine_rows)
    try:
        for attempt in range(settings.max_attempts):
            todo = [(s, c) for s, c in slots if s not in kept and tried.get(s, 0) == attempt]
            for w in range(0, len(todo), max(1, concurrency)):
                wave = todo[w : w + max(1, concurrency)]
                jobs = []
                for slot, code in wave:
                    seed = attempt_seed(settings.seed, slot, attempt)
                    prompt, opening, example_ids = prompts.render(code, random.Random(seed))
                    params = GenerationParams(
                        max_tokens=settings.max_tokens,
                        temperature=settings.temperature,
                        seed=seed,
                        stop=() if settings.mode == "chat" else ("\n" + EXAMPLE_SEPARATOR,),
                        chat=settings.mode == "chat",
                    )
                    jobs.append((slot, code, seed, prompt, example_ids, params, opening))
                try:
                    texts = _generate_wave(generator, jobs, concurrency)
                except GeneratorError as e:
                    raise GenerationStopped(
                        f"the generator failed: {e.message}",
                        hint=f"{len(kept)} reports are kept in {out / KEPT_FILE}; fix the "
                        "server and run the same command again to continue",
                    ) from e
                records = [
                    Record(
                        id=job[0], text=(job[6] + strip_reasoning(text)).strip(), codes=(job[1],)
                    )
                    for job, text in zip(jobs, texts, strict=True)
                ]
                verdicts = screen.screen(records)
                for (slot, code, seed, _p, example_ids, *_), record, reasons in zip(
                    jobs, records, verdicts, strict=True
                ):
                    if reasons:
                        quarantine_file.write(
                            {
                                "slot": slot,
                                "icd10": code,
                                "attempt": attempt + 1,
                                "seed": seed,
                                "gates": [r.gate for r in reasons],
                                "reasons": [r.reason for r in reasons],
                                "text_sha256": hashlib.sha256(record.text.encode()).hexdigest(),
                                "words": len(record.text.split()),
                            }
                        )
                        tried[slot] = tried.get(slot, 0) + 1
                        n_quarantined += 1
                    else:
                        kept_file.write(
                            {
                                "id": slot,
                                "text": record.text,
                                "icd10": [code],
                                "attempt": attempt + 1,
                                "seed": seed,
                                "generator": settings.generator,
                                "examples": example_ids,
                            }
                        )
                        kept.add(slot)
                    status.new += 1
                status.update(len(kept), n_quarantined)
                if on_wave is not None:
                    on_wave(len(wave))
        status.update(len(kept), n_quarantined, final=True)
    finally:
        kept_file.close()
        quarantine_file.close()
    per_code: dict[str, dict[str, int]] = {}
    for slot, code in slots:
        entry = per_code.setdefault(code, {"requested": 0, "kept": 0, "quarantined": 0})
        entry["requested"] += 1
        entry["kept"] += slot in kept
        entry["quarantined"] += tried.get(slot, 0)
    return GenerationSummary(
        out=out,
        requested=len(slots),
        kept=len(kept),
        quarantined=n_quarantined,
        attempts=len(kept) + n_quarantined,
        exhausted=[s for s, _ in slots if s not in kept],
        per_code=per_code,
    )


def _generate_wave(generator: Any, jobs: Sequence[tuple[Any, ...]], concurrency: int) -> list[str]:
    """One text per job; requests in flight concurrently for network backends."""

    def one(job: tuple[Any, ...]) -> str:
        return generator.generate([job[3]], job[5])[0]

    if concurrency <= 1 or len(jobs) == 1:
        return [one(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, jobs))


def default_mode(generator_spec: str) -> str:
    """``chat`` for servers (instruction-tuned models), ``completion`` for local models."""
    return "chat" if generator_spec.strip().startswith("openai:") else "completion"


def default_prompt(mode: str) -> Path:
    """The shipped prompt template for a mode."""
    from auditkit.resources import rules_dir

    name = "evaluation_report.j2" if mode == "chat" else "evaluation_report_completion.j2"
    return rules_dir() / "prompts" / name


def generate(
    codes: Mapping[str, int],
    generator: str,
    out: str | Path,
    *,
    source: str | Path | None = None,
    holdout: str | Path | None = None,
    prompt: str | Path | None = None,
    mode: str | None = None,
    examples: int = 0,
    temperature: float = 0.7,
    max_tokens: int = 700,
    seed: int = 0,
    max_attempts: int = 3,
    concurrency: int = 1,
    min_words: int | None = None,
    max_words: int | None = None,
    policy: str | Path = "default",
    identity: Any | None = None,
    progress: bool | None = None,
    audit: bool = True,
    argv: Sequence[str] | None = None,
    generator_options: Mapping[str, Any] | None = None,
    engine: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
) -> GenerationSummary:
    """Generate ``codes`` reports with ``generator``, screen each, then audit the kept set.

    Args:
        codes: reports wanted per ICD-10 code.
        generator: a generator spec (``openai:URL#MODEL``, ``hf:PATH``, ``fixture``).
        out: the run folder (created; an existing run with the same settings continues).
        source: real reports: few-shot examples, and the screen's copy/reuse reference.
        holdout: real reports the generator never saw (for the final audit).
        prompt: a jinja2 template; default: the shipped one for the mode.
        mode: ``chat`` or ``completion`` (default: chat for servers, completion otherwise).
        examples: source reports quoted in each prompt (requires ``source``).
        temperature: sampling temperature (0 is greedy).
        max_tokens: longest generation, in tokens.
        seed: the run seed (every attempt's seed derives from it).
        max_attempts: attempts per report before the slot is given up.
        concurrency: requests in flight at once.
        min_words: shortest sane report (default from the source, see ``length_bounds``).
        max_words: longest sane report.
        policy: the policy of the final audit (its check settings configure the screen).
        identity: signing identity (None: the throwaway demo key).
        progress: status on stderr (None: when stderr is a terminal).
        audit: run the final audit and write the bundle to ``out/audit``.
        argv: the command line, for the manifest.
        generator_options: backend options (timeouts, retries).
        engine: where the screen's and the final audit's per-record work runs
            (``local`` or ``ray``; results are identical).
        workers: processes (or Ray CPUs) for that work.
        ray_address: an existing Ray cluster (with ``engine="ray"``).
    """
    from auditkit import signing
    from auditkit.executor import make_executor
    from auditkit.generators import load_generator, parse_spec
    from auditkit.icd10 import load_codes
    from auditkit.manifest import sha256_file
    from auditkit.pipeline import AuditInputs, make_context
    from auditkit.pipeline import audit as run_audit
    from auditkit.policy import load_policy
    from auditkit.resources import resolve_policy

    parse_spec(generator)  # a bad spec fails before anything is loaded
    if examples and source is None:
        raise UsageError("--examples needs --source: examples are drawn from the source")
    if examples < 0 or max_attempts < 1 or concurrency < 1 or max_tokens < 1:
        raise UsageError(
            "--examples must be >= 0; --max-attempts, --concurrency and --max-tokens must be >= 1"
        )
    mode = mode or default_mode(generator)
    if mode not in ("chat", "completion"):
        raise UsageError(f"--mode {mode!r}: use chat or completion")
    template = Path(prompt) if prompt else default_prompt(mode)
    pol = load_policy(resolve_policy(policy))
    inputs = AuditInputs(
        synthetic=Corpus("synthetic", "<generated>", "jsonl", "", 0, ()),
        source=_load(source, "source"),
        holdout=_load(holdout, "holdout"),
    )
    lo, hi = length_bounds(inputs.source)
    settings = Settings(
        codes=dict(codes),
        generator=generator,
        mode=mode,
        prompt=str(template),
        prompt_sha256=sha256_file(template),
        examples=examples,
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        max_attempts=max_attempts,
        min_words=min_words if min_words is not None else lo,
        max_words=max_words if max_words is not None else hi,
        policy_sha256=pol.sha256,
        source_sha256=sha256_file(source) if source else None,
        holdout_sha256=sha256_file(holdout) if holdout else None,
    )
    if settings.min_words >= settings.max_words:
        raise UsageError(
            f"--min-words {settings.min_words} must be below --max-words {settings.max_words}"
        )
    if concurrency > 1 and not generator.strip().startswith("openai:"):
        # A local model generates one request at a time (its sampling seed is global).
        log.info("--concurrency applies to servers; a local model runs one request at a time")
        concurrency = 1
    out = Path(out)
    ident = identity if identity is not None else signing.demo_identity()
    builder = PromptBuilder(template, load_codes(), inputs.source, examples)
    with make_executor(engine, workers, ray_address=ray_address) as executor:
        context = make_context(inputs, seed, executor, ident, False)
        screen = RecordScreen(pol, context, settings.min_words, settings.max_words)
        gen = load_generator(generator, **dict(generator_options or {}))
        try:
            summary = run_generation(
                settings, out, gen, builder, screen, concurrency=concurrency, progress=progress
            )
        finally:
            gen.close()
    if audit and summary.kept:
        # The membership probe scores source against holdout with the same generator; a
        # local model always can, a server only when it returns prompt log-probabilities
        # (most do not), so servers are probed with `auditkit audit --generator` instead.
        local = not generator.strip().startswith("openai:")
        summary.audit = run_audit(
            out / KEPT_FILE,
            source,
            holdout,
            generator=generator if local and holdout is not None else None,
            policy=pol,
            seed=seed,
            workers=workers,
            engine=engine,
            ray_address=ray_address,
            out=out / AUDIT_DIR,
            identity=ident,
            progress=progress,
            argv=argv,
        )
    return summary


def _load(path: str | Path | None, role: str) -> Corpus | None:
    from auditkit.corpus import load_corpus

    return load_corpus(path, role) if path else None


def iter_quarantine(out: str | Path) -> Iterator[dict[str, Any]]:
    """The quarantine lines of a run folder (for reports and tests)."""
    yield from _read_jsonl(Path(out) / QUARANTINE_FILE)
