"""Load ``rules/phi/``: YAML recognizers, allow-lists and the entity -> category mapping.

Every YAML file in the folder is read by its top-level key: ``recognizers:`` (Presidio's
YAML recognizer format), ``allow_list:``, ``categories:`` or ``given_names:`` (a
frequency list of given names the name rules consult). Files are validated before
any text is analysed; errors name the file and key. This module never runs a recognizer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditkit.errors import InputError

#: The categories every PHI span is reported in (HIPAA Safe Harbor, made concrete).
CATEGORIES: tuple[str, ...] = (
    "NAME",
    "DATE",
    "AGE_OVER_89",
    "PHONE",
    "FAX",
    "EMAIL",
    "SSN",
    "MRN",
    "HEALTH_PLAN_ID",
    "ACCOUNT_NUMBER",
    "LICENSE_NUMBER",
    "VEHICLE_ID",
    "DEVICE_ID",
    "URL",
    "IP_ADDRESS",
    "LOCATION",
    "FACILITY",
    "OTHER_ID",
)


class RulesError(InputError):
    """A file in rules/phi/ is malformed."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _PatternModel(_Strict):
    name: str
    regex: str
    score: float = Field(ge=0, le=1)


class _RecognizerModel(_Strict):
    name: str
    supported_language: str = "en"
    supported_entity: str
    patterns: list[_PatternModel] = Field(default_factory=list)
    context: list[str] = Field(default_factory=list)
    deny_list: list[str] = Field(default_factory=list)
    deny_list_score: float = Field(default=1.0, ge=0, le=1)
    validator: str | None = Field(
        default=None, description="name of a code validator (auditkit.phi.recognizers)"
    )


class _AllowModel(_Strict):
    phrases: dict[str, list[str]] = Field(default_factory=dict)
    patterns: dict[str, str] = Field(default_factory=dict)
    whole_span: dict[str, list[str]] = Field(default_factory=dict)
    whole_span_patterns: dict[str, str] = Field(default_factory=dict)
    vocabulary_only: dict[str, list[str]] = Field(default_factory=dict)


class _GivenNamesModel(_Strict):
    female: list[str] = Field(default_factory=list)
    male: list[str] = Field(default_factory=list)
    also_words: list[str] = Field(default_factory=list)


class _CategoriesModel(_Strict):
    categories: dict[str, list[str]]
    precedence: list[str]
    ignore: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class AllowList:
    """What is never PHI: phrases and patterns (containment), and whole-span values."""

    phrases: tuple[str, ...]
    patterns: tuple[tuple[str, str], ...]  # (name, regex)
    whole_span: frozenset[str]
    whole_span_patterns: tuple[tuple[str, str], ...]
    vocabulary: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PhiRules:
    """Everything in ``rules/phi/``, validated."""

    folder: str
    recognizers: tuple[dict[str, Any], ...]
    allow: AllowList
    entity_category: Mapping[str, str]
    precedence: tuple[str, ...]
    ignored: Mapping[str, str]
    #: Given names, case-folded; ``ambiguous_names`` are also ordinary words (Will, Rose).
    given_names: frozenset[str] = frozenset()
    ambiguous_names: frozenset[str] = frozenset()

    def category_of(self, entity: str) -> str | None:
        """The category of a Presidio entity; None when the entity is declared ignored.

        Raises:
            KeyError: an entity that is neither mapped nor ignored (a rules bug).
        """
        if entity in self.entity_category:
            return self.entity_category[entity]
        if entity in self.ignored:
            return None
        raise KeyError(f"entity {entity!r} has no category in rules/phi/categories.yaml")


def default_rules_dir() -> Path:
    """The shipped ``rules/phi`` folder."""
    from auditkit.resources import rules_dir

    return rules_dir() / "phi"


def _validate_regex(path: Path, key: str, regex: str) -> None:
    import regex as re2  # the engine Presidio uses: allows variable-length look-behind

    try:
        re2.compile(regex)
    except re2.error as exc:
        raise RulesError(path, f"invalid regular expression: {exc}", field=key) from None


@cache
def load_rules(folder: str | None = None) -> PhiRules:
    """Read and validate every YAML file of a rules/phi folder (cached per folder).

    Raises:
        RulesError: naming the file and key of the first problem.
    """
    root = Path(folder) if folder else default_rules_dir()
    if not root.is_dir():
        raise RulesError(root, "PHI rules folder not found", hint="pass a folder with rules")
    recognizers: list[dict[str, Any]] = []
    allow: _AllowModel | None = None
    cats: _CategoriesModel | None = None
    names = _GivenNamesModel()
    for path in sorted(root.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RulesError(path, f"not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise RulesError(path, "expected a mapping with recognizers, allow_list or categories")
        try:
            if "recognizers" in raw:
                for i, item in enumerate(raw["recognizers"]):
                    model = _RecognizerModel.model_validate(item)
                    for j, pat in enumerate(model.patterns):
                        _validate_regex(path, f"recognizers[{i}].patterns[{j}].regex", pat.regex)
                    recognizers.append(model.model_dump(exclude_defaults=False))
            elif "allow_list" in raw:
                allow = _AllowModel.model_validate(raw["allow_list"])
                for name, regex in {**allow.patterns, **allow.whole_span_patterns}.items():
                    _validate_regex(path, f"allow_list.{name}", regex)
            elif "categories" in raw:
                cats = _CategoriesModel.model_validate(raw)
            elif "given_names" in raw:
                names = _GivenNamesModel.model_validate(raw["given_names"])
            else:
                raise RulesError(
                    path, "unknown rules file: no recognizers/allow_list/categories/given_names"
                )
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise RulesError(path, err["msg"], field=key) from None
    if cats is None:
        raise RulesError(root / "categories.yaml", "missing: the entity -> category mapping")
    entity_category: dict[str, str] = {}
    for category, entities in cats.categories.items():
        if category not in CATEGORIES:
            raise RulesError(
                root / "categories.yaml",
                f"unknown category {category!r}",
                field=f"categories.{category}",
                hint=f"valid: {', '.join(CATEGORIES)}",
            )
        for entity in entities:
            if entity in entity_category:
                raise RulesError(
                    root / "categories.yaml", f"entity {entity!r} mapped twice", field=category
                )
            entity_category[entity] = category
    if sorted(cats.precedence) != sorted(CATEGORIES):
        raise RulesError(
            root / "categories.yaml", "precedence must list every category exactly once"
        )
    a = allow or _AllowModel()
    return PhiRules(
        folder=str(root),
        recognizers=tuple(recognizers),
        allow=AllowList(
            phrases=tuple(p for group in a.phrases.values() for p in group),
            patterns=tuple(a.patterns.items()),
            whole_span=frozenset(fold_allow(v) for g in a.whole_span.values() for v in g),
            whole_span_patterns=tuple(a.whole_span_patterns.items()),
            vocabulary=frozenset(w.casefold() for g in a.vocabulary_only.values() for w in g),
        ),
        entity_category=entity_category,
        precedence=tuple(cats.precedence),
        ignored=dict(cats.ignore),
        given_names=frozenset(
            n.casefold() for n in [*names.female, *names.male, *names.also_words]
        ),
        ambiguous_names=frozenset(n.casefold() for n in names.also_words),
    )


_POSSESSIVE = re.compile(r"['’]s?$")


def fold_allow(value: str) -> str:
    """The comparison form for whole-span allow-list entries: trimmed, folded, no 's."""
    v = value.strip().strip(".,;:()").casefold()
    return _POSSESSIVE.sub("", v) if len(v) > 3 else v
