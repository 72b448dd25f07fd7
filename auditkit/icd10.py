"""ICD-10 code definitions (``rules/icd10/``) and criteria mentions with ConText modifiers.

Owns reading and validating the code definitions (title, parent, clinical criteria with
surface patterns) and the ConText-style rule set (``rules/icd10/context.yaml``), looking
a code up with parent fallback (``F32.1`` -> ``F32``), and finding which criteria a text
mentions, leaving out mentions that are negated ("denies anhedonia"), about a relative
("her mother has depression") or hypothetical ("return if suicidal thoughts emerge").

The fidelity check counts criteria with it; prompt builders read titles and criteria
labels. Nothing here scores a corpus or decides anything.

File format (every ``*.yaml`` in the folder except ``context.yaml``)::

    criteria_sets:            # named lists of criteria, usable from any file
      depressive_episode:
        - id: anhedonia
          label: loss of interest or pleasure
          patterns: ['anhedoni[ac]', 'loss of (?:interest|pleasure)']
    codes:
      F32:
        title: Major depressive disorder, single episode
        include: [depressive_episode]          # a set, or one criterion: set.criterion_id
        criteria: [...]                        # criteria of this code only (optional)
      F32.1: {title: "Major depressive disorder, single episode, moderate"}

A code without ``include``/``criteria`` uses its parent's criteria; the parent of a code
is the longest defined prefix (``F43.10`` -> ``F43.1`` -> ``F43``). Patterns are
case-insensitive regular expressions matched on whole words.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditkit.errors import InputError
from auditkit.text import tokenize

CONTEXT_FILE = "context.yaml"
_CODE_RE = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?$")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")

Modifier = Literal["negated", "family", "hypothetical"]


class Icd10RulesError(InputError):
    """A file in ``rules/icd10/`` is malformed (names the file and the key)."""


# ---------------------------------------------------------------------------------------
# Schema (validated with pydantic; errors become Icd10RulesError with file and key).


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _CriterionModel(_Strict):
    id: str = Field(pattern=_ID_RE.pattern)
    label: str = Field(min_length=1)
    patterns: list[str] = Field(min_length=1)


class _CodeModel(_Strict):
    title: str = Field(min_length=1)
    include: list[str] = Field(default_factory=list)
    criteria: list[_CriterionModel] = Field(default_factory=list)


class _CodesFileModel(_Strict):
    criteria_sets: dict[str, list[_CriterionModel]] = Field(default_factory=dict)
    codes: dict[str, _CodeModel] = Field(default_factory=dict)


class _TriggerModel(_Strict):
    phrase: str = Field(min_length=1)
    category: Modifier
    direction: Literal["forward", "backward", "pseudo"]


class _TerminatorModel(_Strict):
    phrase: str = Field(min_length=1)
    categories: list[Modifier] = Field(
        default_factory=lambda: ["negated", "family", "hypothetical"]
    )


class _ContextModel(_Strict):
    max_scope: int = Field(default=12, ge=1, le=100)
    sentence_end: list[str] = Field(default_factory=lambda: [".", "!", "?"])
    terminators: list[str | _TerminatorModel] = Field(default_factory=list)
    triggers: list[_TriggerModel] = Field(min_length=1)


# ---------------------------------------------------------------------------------------
# Public types.


@dataclass(frozen=True)
class Criterion:
    """One clinical criterion concept of a code, with its surface patterns."""

    id: str
    label: str
    patterns: tuple[str, ...]

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """The patterns as one case-insensitive, whole-word regular expression."""
        return _compile(self.patterns)


@dataclass(frozen=True)
class IcdCode:
    """A known ICD-10 code: its title, parent, 3-character category and criteria."""

    code: str
    title: str
    parent: str | None
    criteria: tuple[Criterion, ...]
    file: str

    @property
    def category(self) -> str:
        """The 3-character ICD-10 category (``F32`` for ``F32.1``)."""
        return self.code[:3]


@dataclass(frozen=True)
class CodeBook:
    """Every code defined in a rules folder, with lookup by parent fallback."""

    folder: str
    codes: Mapping[str, IcdCode]

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.lookup(code) is not None

    def __len__(self) -> int:
        return len(self.codes)

    def lookup(self, code: str) -> IcdCode | None:
        """The definition of ``code``, else of its nearest defined ancestor, else None.

        ``F32.1`` is found as itself when defined, else as ``F32``; ``F17.219`` falls back
        to ``F17.21``, ``F17.2``, ``F17``.
        """
        for prefix in _ancestors(code):
            if prefix in self.codes:
                return self.codes[prefix]
        return None

    def criteria(self, code: str) -> tuple[Criterion, ...]:
        """The criteria a report of ``code`` should mention (empty if unknown)."""
        found = self.lookup(code)
        return found.criteria if found else ()


@dataclass(frozen=True)
class Trigger:
    """A ConText trigger phrase as token tuple."""

    tokens: tuple[str, ...]
    category: Modifier
    direction: Literal["forward", "backward", "pseudo"]


@dataclass(frozen=True)
class ContextRules:
    """The ConText rule set: triggers, terminators, sentence ends and scope."""

    max_scope: int
    sentence_end: frozenset[str]
    terminators: tuple[tuple[tuple[str, ...], frozenset[str]], ...]
    triggers: tuple[Trigger, ...]


@dataclass(frozen=True)
class Mention:
    """A criterion pattern found in a text, and the modifier that covers it (if any)."""

    criterion: str
    start: int
    end: int
    modifier: Modifier | None = None
    trigger: str | None = None

    @property
    def counts(self) -> bool:
        """True when the mention is an affirmed, current mention about the patient."""
        return self.modifier is None


# ---------------------------------------------------------------------------------------
# Loading.


def _ancestors(code: str) -> list[str]:
    """``F43.10`` -> ``[F43.10, F43.1, F43]``."""
    code = code.strip().upper()
    out = [code]
    while len(code) > 3:
        code = code[:-1].rstrip(".")
        out.append(code)
    return out


@cache
def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    joined = "|".join(f"(?:{p})" for p in patterns)
    return re.compile(rf"(?<![\w])(?:{joined})(?![\w])", re.IGNORECASE)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise Icd10RulesError(path, f"not valid YAML: {exc}") from None
    except OSError as exc:
        raise Icd10RulesError(path, f"cannot read: {exc.strerror}") from None


def _validate(model: type[BaseModel], raw: Any, path: Path) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise Icd10RulesError(path, err["msg"], field=key or None) from None


def _check_patterns(path: Path, key: str, patterns: Iterable[str]) -> None:
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise Icd10RulesError(
                path, f"invalid regular expression: {exc}", field=f"{key}.patterns[{i}]"
            ) from None


def default_rules_dir() -> Path:
    """The shipped ``rules/icd10`` folder."""
    from auditkit.resources import rules_dir

    return rules_dir() / "icd10"


def _criterion(model: _CriterionModel) -> Criterion:
    return Criterion(model.id, model.label, tuple(model.patterns))


@cache
def load_codes(folder: str | None = None) -> CodeBook:
    """Read and validate every code definition file of a rules/icd10 folder (cached).

    Raises:
        Icd10RulesError: naming the file and key of the first problem.
    """
    root = Path(folder) if folder else default_rules_dir()
    if not root.is_dir():
        raise Icd10RulesError(
            root, "ICD-10 rules folder not found", hint="pass a folder of code definitions"
        )
    sets: dict[str, tuple[Criterion, ...]] = {}
    set_file: dict[str, Path] = {}
    declared: dict[str, tuple[_CodeModel, Path]] = {}
    for path in sorted(root.glob("*.yaml")):
        if path.name == CONTEXT_FILE:
            continue
        raw = _read_yaml(path)
        if not isinstance(raw, dict):
            raise Icd10RulesError(path, "expected a mapping with criteria_sets and codes")
        model: _CodesFileModel = _validate(_CodesFileModel, raw, path)
        for name, items in model.criteria_sets.items():
            if name in sets:
                raise Icd10RulesError(
                    path,
                    f"criteria set {name!r} is also defined in {set_file[name].name}",
                    field=f"criteria_sets.{name}",
                )
            for i, item in enumerate(items):
                _check_patterns(path, f"criteria_sets.{name}[{i}]", item.patterns)
            _unique_ids(path, f"criteria_sets.{name}", [c.id for c in items])
            sets[name] = tuple(_criterion(c) for c in items)
            set_file[name] = path
        for code, entry in model.codes.items():
            if not _CODE_RE.match(code):
                raise Icd10RulesError(
                    path,
                    f"{code!r} is not an ICD-10 code",
                    field=f"codes.{code}",
                    hint="write codes like F32 or F43.10 (upper case, with the dot)",
                )
            if code in declared:
                raise Icd10RulesError(
                    path,
                    f"code {code} is also defined in {declared[code][1].name}",
                    field=f"codes.{code}",
                )
            for i, item in enumerate(entry.criteria):
                _check_patterns(path, f"codes.{code}.criteria[{i}]", item.patterns)
            declared[code] = (entry, path)
    if not declared:
        raise Icd10RulesError(root, "no code definitions found (*.yaml with a codes: mapping)")

    own: dict[str, tuple[Criterion, ...] | None] = {}
    for code, (entry, path) in declared.items():
        if not entry.include and not entry.criteria:
            own[code] = None  # inherits from its parent
            continue
        items: list[Criterion] = []
        for j, ref in enumerate(entry.include):
            items.extend(_resolve_include(ref, sets, path, f"codes.{code}.include[{j}]"))
        items.extend(_criterion(c) for c in entry.criteria)
        _unique_ids(path, f"codes.{code}", [c.id for c in items])
        own[code] = tuple(items)

    codes: dict[str, IcdCode] = {}
    for code, (entry, path) in sorted(declared.items()):
        parent = next((a for a in _ancestors(code)[1:] if a in declared), None)
        criteria = own[code]
        ancestor = parent
        while criteria is None and ancestor is not None:
            criteria = own[ancestor]
            ancestor = next((a for a in _ancestors(ancestor)[1:] if a in declared), None)
        codes[code] = IcdCode(code, entry.title, parent, criteria or (), path.name)
    return CodeBook(folder=str(root), codes=codes)


def _unique_ids(path: Path, key: str, ids: Sequence[str]) -> None:
    seen: set[str] = set()
    for cid in ids:
        if cid in seen:
            raise Icd10RulesError(path, f"criterion id {cid!r} appears twice", field=key)
        seen.add(cid)


def _resolve_include(
    ref: str, sets: Mapping[str, tuple[Criterion, ...]], path: Path, key: str
) -> tuple[Criterion, ...]:
    name, _, criterion_id = ref.partition(".")
    if name not in sets:
        raise Icd10RulesError(
            path,
            f"unknown criteria set {name!r}",
            field=key,
            hint=f"defined sets: {', '.join(sorted(sets))}",
        )
    if not criterion_id:
        return sets[name]
    found = [c for c in sets[name] if c.id == criterion_id]
    if not found:
        raise Icd10RulesError(
            path,
            f"criteria set {name!r} has no criterion {criterion_id!r}",
            field=key,
            hint=f"valid: {', '.join(c.id for c in sets[name])}",
        )
    return tuple(found)


def _phrase_tokens(phrase: str) -> tuple[str, ...]:
    return tuple(t.text for t in tokenize(phrase))


@cache
def load_context(path: str | None = None) -> ContextRules:
    """Read and validate the ConText rule set (default: ``rules/icd10/context.yaml``).

    Raises:
        Icd10RulesError: naming the file and key of the first problem.
    """
    p = Path(path) if path else default_rules_dir() / CONTEXT_FILE
    if not p.exists():
        raise Icd10RulesError(p, "ConText rules file not found")
    model: _ContextModel = _validate(_ContextModel, _read_yaml(p), p)
    terminators = []
    for item in model.terminators:
        t = _TerminatorModel(phrase=item) if isinstance(item, str) else item
        terminators.append((_phrase_tokens(t.phrase), frozenset(t.categories)))
    triggers = tuple(
        Trigger(_phrase_tokens(t.phrase), t.category, t.direction) for t in model.triggers
    )
    return ContextRules(
        max_scope=model.max_scope,
        sentence_end=frozenset(model.sentence_end),
        terminators=tuple(terminators),
        triggers=triggers,
    )


# ---------------------------------------------------------------------------------------
# Finding mentions.


@dataclass(frozen=True)
class _Hit:
    start: int  # token index of the first token
    end: int  # token index after the last token
    kind: Literal["trigger", "terminator"]
    category: str | frozenset[str]
    direction: str
    phrase: str


@cache
def _sentence_break(ends: frozenset[str]) -> re.Pattern[str]:
    # An end mark that the shared tokenizer makes a token of its own: not followed by a
    # letter or digit ("10.5" and "e.g" stay inside a sentence). Line breaks end one too.
    marks = "".join(re.escape(e) for e in sorted(ends))
    return re.compile(rf"[{marks}](?![^\W_])|\n")


def _sentence_spans(text: str, rules: ContextRules) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``."""
    spans = []
    start = 0
    for m in _sentence_break(rules.sentence_end).finditer(text):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


@cache
def _phrase_index(rules: ContextRules) -> dict[str, list[tuple[tuple[str, ...], _Hit]]]:
    """Triggers and terminators by first token, longest phrase first."""
    index: dict[str, list[tuple[tuple[str, ...], _Hit]]] = {}
    for trig in rules.triggers:
        hit = _Hit(0, 0, "trigger", trig.category, trig.direction, " ".join(trig.tokens))
        index.setdefault(trig.tokens[0], []).append((trig.tokens, hit))
    for toks, cats in rules.terminators:
        hit = _Hit(0, 0, "terminator", cats, "both", " ".join(toks))
        index.setdefault(toks[0], []).append((toks, hit))
    for entries in index.values():
        entries.sort(key=lambda c: -len(c[0]))
    return index


def _phrase_hits(words: Sequence[str], rules: ContextRules) -> list[_Hit]:
    """Triggers and terminators in a sentence, longest phrase first at each position."""
    index = _phrase_index(rules)
    hits: list[_Hit] = []
    i = 0
    n = len(words)
    while i < n:
        matched = None
        for toks, proto in index.get(words[i], ()):
            k = len(toks)
            if tuple(words[i : i + k]) == toks:
                matched = _Hit(i, i + k, proto.kind, proto.category, proto.direction, proto.phrase)
                break
        if matched is None:
            i += 1
            continue
        hits.append(matched)
        i = matched.end
    return hits


def _covering(
    span: tuple[int, int], hits: Sequence[_Hit], max_scope: int
) -> tuple[Modifier, str] | None:
    """The first trigger whose scope covers the token span ``[s, e)``, if any."""
    s, e = span
    for h in hits:
        if h.kind != "trigger" or h.direction == "pseudo":
            continue
        if h.start < e and s < h.end:
            continue  # the trigger is part of the mention itself ("no interest")
        category = h.category
        assert isinstance(category, str)
        if h.direction == "forward" and h.end <= s < h.end + max_scope:
            between = (h.end, s)
        elif h.direction == "backward" and e <= h.start and h.start - e < max_scope:
            between = (e, h.start)
        else:
            continue
        blocked = any(
            t.kind == "terminator"
            and category in t.category
            and between[0] <= t.start
            and t.end <= between[1]
            for t in hits
        )
        if not blocked:
            return category, h.phrase  # type: ignore[return-value]
    return None


def find_mentions(
    text: str, criteria: Sequence[Criterion], rules: ContextRules | None = None
) -> list[Mention]:
    """Every pattern match of ``criteria`` in ``text``, each with its ConText modifier.

    A mention is covered by a forward trigger up to ``max_scope`` tokens after it, by a
    backward trigger before it, within one sentence, unless a terminator of the trigger's
    category lies in between. A trigger inside the matched words does not cover them
    ("no interest in hobbies" is a mention of anhedonia).
    """
    rules = rules if rules is not None else load_context()
    if not criteria:
        return []
    spans = _sentence_spans(text, rules)
    starts = [a for a, _ in spans]
    # Only sentences that hold a mention are tokenised and searched for triggers.
    parsed: dict[int, tuple[list[int], list[int], list[_Hit]]] = {}
    out: list[Mention] = []
    for criterion in criteria:
        for m in criterion.regex.finditer(text):
            k = bisect.bisect_right(starts, m.start()) - 1
            if k < 0:
                continue
            if k not in parsed:
                a, b = spans[k]
                toks = tokenize(text[a:b])
                parsed[k] = (
                    [a + t.start for t in toks],
                    [a + t.end for t in toks],
                    _phrase_hits([t.text for t in toks], rules),
                )
            tok_starts, tok_ends, hits = parsed[k]
            first = bisect.bisect_right(tok_ends, m.start())
            last = max(bisect.bisect_left(tok_starts, m.end()), first + 1)
            cover = _covering((first, last), hits, rules.max_scope)
            out.append(
                Mention(
                    criterion=criterion.id,
                    start=m.start(),
                    end=m.end(),
                    modifier=cover[0] if cover else None,
                    trigger=cover[1] if cover else None,
                )
            )
    out.sort(key=lambda x: (x.start, x.end, x.criterion))
    return out


def criteria_mentioned(
    text: str, criteria: Sequence[Criterion], rules: ContextRules | None = None
) -> tuple[str, ...]:
    """Ids of the criteria with at least one affirmed mention in ``text``, in rule order."""
    affirmed = {m.criterion for m in find_mentions(text, criteria, rules) if m.counts}
    return tuple(c.id for c in criteria if c.id in affirmed)
