"""Recognizers that need code, and the registry that combines them with the YAML ones.

Most PHI recognizers are data (``rules/phi/*.yaml``, Presidio's YAML format). Code is
here only where logic is needed:

- validators a YAML recognizer names with ``validator:`` (calendar dates, ages over 89,
  the NPI Luhn check, the DEA check digit);
- :class:`LastFirstNameRecognizer`: ``OKAFOR, MARIA T`` / ``Okafor, Maria`` forms, which
  look like any "Word, Word" list unless the words are checked;
- :class:`RelativeNameRecognizer`: a name after a kinship or relationship word
  ("her sister Lucía", "my brother danny"), using spaCy's part-of-speech tags so that
  "her sister lives" is not a name;
- :func:`propagate_names`: once a name is found in a document, its other mentions in
  the same document (a first name alone, a surname after a title) are names too.

Presidio is imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

from auditkit.phi.rules import PhiRules, fold_allow

# ---------------------------------------------------------------------------------------
# Validators named by YAML recognizers (``validator: date``).

_MONTHS = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_NUMBER_WORDS = {
    "ninety": 90,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "hundred": 100,
}


def valid_date(text: str) -> bool:
    """True when ``text`` is a date that exists (month 1-12, day within the month)."""
    from auditkit.phi.normalize import normalize_date

    canonical = normalize_date(text)
    if re.fullmatch(r"(?:\d{4}|-)-\d{2}(?:-\d{2})?", canonical):
        return True
    # a day of the month alone ("the 2nd"), or a month name alone
    t = text.strip().casefold()
    if re.fullmatch(r"\d{1,2}(?:st|nd|rd|th)", t):
        return 1 <= int(re.sub(r"\D", "", t)) <= 31
    return t[:3] in _MONTHS and t.isalpha()


def age_over_89(text: str) -> bool:
    """True when ``text`` is an age of 90 or more (digits or English number words)."""
    t = text.casefold()
    digits = re.sub(r"\D", "", t)
    if digits:
        return 90 <= int(digits) <= 130
    words = re.findall(r"[a-z]+", t)
    if "hundred" in words:
        return True
    return bool(words) and words[0] == "ninety"


def npi_checksum(text: str) -> bool:
    """True for a valid NPI: Luhn over the number prefixed with 80840 (CMS NPI standard)."""
    digits = re.sub(r"\D", "", text)
    if len(digits) != 10:
        return False
    return _luhn("80840" + digits)


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def dea_checksum(text: str) -> bool:
    """True for a valid DEA number: (d1+d3+d5) + 2*(d2+d4+d6), last digit == d7."""
    m = re.fullmatch(r"[A-Z][A-Z9](\d{7})", text.strip().upper())
    if not m:
        return False
    d = [int(c) for c in m[1]]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6]


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "date": valid_date,
    "age_over_89": age_over_89,
    "npi": npi_checksum,
    "dea": dea_checksum,
}


def _pattern_recognizer(spec: dict[str, Any]) -> Any:
    """Build a Presidio PatternRecognizer from a validated YAML entry (with validator)."""
    from presidio_analyzer import Pattern, PatternRecognizer

    validator_name = spec.get("validator")
    check = VALIDATORS[validator_name] if validator_name else None

    class ValidatedPatternRecognizer(PatternRecognizer):
        """A YAML pattern recognizer whose matches must pass a named validator."""

        def invalidate_result(self, pattern_text: str) -> bool | None:
            if check is None:
                return None
            return not check(pattern_text)

    return ValidatedPatternRecognizer(
        supported_entity=spec["supported_entity"],
        name=spec["name"],
        supported_language=spec.get("supported_language", "en"),
        patterns=[Pattern(p["name"], p["regex"], p["score"]) for p in spec["patterns"]] or None,
        deny_list=spec.get("deny_list") or None,
        deny_list_score=spec.get("deny_list_score", 1.0),
        context=spec.get("context") or None,
    )


# ---------------------------------------------------------------------------------------
# Name recognizers that need tokens and tags.

_KIN = (
    "sister|brother|mother|mom|mum|mommy|father|dad|daddy|wife|husband|partner|spouse|son|"
    "daughter|stepson|stepdaughter|stepmother|stepfather|stepmom|stepdad|half-sister|"
    "half-brother|twin|aunt|auntie|uncle|cousin|grandmother|grandma|granny|grandfather|"
    "grandpa|grandson|granddaughter|niece|nephew|fianc[eé]e?|boyfriend|girlfriend|ex|"
    "ex-wife|ex-husband|ex-boyfriend|ex-girlfriend|friend|roommate|neighbor|neighbour|"
    "coworker|co-worker|manager|boss|supervisor|sponsor|landlord|teacher|coach|counselor|"
    "caseworker|pastor|guardian|baby|child|kid|widow|widower|sibling|bestie|bff"
)
#: Plural relations, which may introduce two names ("his parents, Kenji and Ruth").
_KIN_PLURAL = (
    "parents|sisters|brothers|sons|daughters|kids|children|grandparents|grandkids|"
    "grandchildren|siblings|cousins|friends|roommates|twins|aunts|uncles|stepkids"
)
_KIN_RE = re.compile(
    rf"(?i)\b(?:{_KIN}|{_KIN_PLURAL})(?:\s*\([^)\n]{{0,20}}\))?(?:,?\s+|\s*\(\s*)"
    r"(?:(?:named|called|is|was)\s+)?"
    r"(?P<name>[^\W\d_][\w'’-]*(?:\s+[A-Z][\w'’-]+)?)"
)
#: Self-introductions in messages ("hi dr ibekwe this is dana", "my name is Rosa").
_INTRO_RE = re.compile(
    r"(?i)\b(?:this\s+is|my\s+name\s+is|i\s*['’]?m|i\s+am|it\s*['’]?s)\s+"
    r"(?P<name>[^\W\d_][\w'’]*)\b"
)
#: Part-of-speech tags a listed name in lower case may carry (not a verb or auxiliary).
_NAME_TAGS = frozenset({"PROPN", "NOUN"})
#: Penn Treebank tags (the tagger's ``tag_``) -> the coarse classes used here. The engine
#: runs the tagger without the attribute ruler that would fill ``pos_`` (it is not
#: needed for anything else), so the coarse class is read from the fine tag.
_COARSE = {"NNP": "PROPN", "NNPS": "PROPN", "NN": "NOUN", "NNS": "NOUN", "FW": "X", "XX": "X"}


#: ``doc.user_data`` key of the :class:`WindowTagger` that tags a document's tokens on demand.
TAGGER_KEY = "auditkit.phi.tagger"
#: ``doc.user_data`` key of the tokens' start offsets (see :func:`token_starts`).
STARTS_KEY = "auditkit.phi.starts"


def token_starts(doc: Any) -> list[int]:
    """Character offset of every token, in order (computed once per document).

    Read from the document's arrays (``doc.to_array("IDX")``) rather than by iterating
    over it: iterating creates a Python ``Token`` per word, which over every report
    costs more than the rules that need a handful of them.
    """
    starts = doc.user_data.get(STARTS_KEY)
    if starts is None:
        starts = doc.to_array("IDX").tolist()
        doc.user_data[STARTS_KEY] = starts
    return starts


def token_at(doc: Any, char: int) -> Any:
    """The token that starts at character ``char``, or None (tokens are never empty)."""
    starts = token_starts(doc)
    i = bisect.bisect_left(starts, char)
    return doc[i] if i < len(starts) and starts[i] == char else None


def coarse_pos(tok: Any) -> str:
    """PROPN, NOUN, ADJ, X or OTHER for a token, from ``pos_`` if set, else ``tag_``.

    The engine's main pass runs only the NER; a document it made carries a
    :class:`WindowTagger` that tags the few tokens the name rules ask about.
    """
    if tok.pos_:
        return str(tok.pos_)
    tag = tok.tag_
    if not tag:
        tagger = tok.doc.user_data.get(TAGGER_KEY)
        tag = tagger.tag(tok.doc, tok.i) if tagger is not None else ""
    if tag.startswith("JJ") or tag == "AFX":
        return "ADJ"
    return _COARSE.get(tag, "OTHER")


class WindowTagger:
    """Fine part-of-speech tags for single tokens, from the tagger run on a window around each.

    The NER of the spaCy models does not read the shared ``tok2vec``, so the engine's main
    pass skips ``tok2vec`` and ``tagger`` (about 40% of the pass) and the name rules,
    which ask for the tags of a few tokens per report, get them here. The small models'
    ``tok2vec`` is a window encoder: a token's vector depends on ``radius`` tokens each
    side (``window_size`` x ``depth`` of its config, 4 for ``en_core_web_sm``). Tagging
    the token with ``radius`` tokens of context on each side gives exactly its tag in the
    whole document (tested on the PHI benchmark). For a model whose encoder has no finite
    window (a transformer), ``radius`` is None and the whole document is tagged once.
    """

    def __init__(self, nlp: Any, radius: int | None) -> None:
        self.tok2vec = nlp.get_pipe("tok2vec")
        self.tagger = nlp.get_pipe("tagger")
        self.vocab = nlp.vocab
        self.radius = radius

    @staticmethod
    def receptive_radius(nlp: Any) -> int | None:
        """Tokens each side that a token's tok2vec vector depends on; None if unbounded."""
        try:
            encode = nlp.config["components"]["tok2vec"]["model"]["encode"]
            if "MaxoutWindowEncoder" not in encode["@architectures"]:
                return None
            return int(encode["window_size"]) * int(encode["depth"])
        except (KeyError, TypeError, ValueError):
            return None

    def tag(self, doc: Any, i: int) -> str:
        """The fine tag of ``doc[i]``, computed once per token and kept in the document."""
        cache: dict[int, str] = doc.user_data.setdefault(TAGGER_KEY + ".tags", {})
        if i not in cache:
            if self.radius is None:
                lo, hi = 0, len(doc)
            else:
                lo, hi = max(0, i - self.radius), min(len(doc), i + self.radius + 1)
            from spacy.tokens import Doc

            span = doc[lo:hi]
            window = Doc(
                self.vocab,
                words=[t.text for t in span],
                spaces=[bool(t.whitespace_) for t in span],
            )
            for target, source in zip(window, span, strict=True):
                # the tokenizer's exceptions set norms ("w/o" -> "without") that the
                # embedding reads; a Doc built from words would not have them
                target.norm_ = source.norm_
            window = self.tagger(self.tok2vec(window))
            if self.radius is None:
                cache.update((lo + k, t.tag_) for k, t in enumerate(window))
            else:
                cache[i] = window[i - lo].tag_
        return cache[i]


_LAST_FIRST_RE = re.compile(
    r"(?<![\w,])(?P<last>[A-Z][A-Za-z'’-]+(?:[- ][A-Z][A-Za-z'’-]+)?),[ \t]?"
    r"(?P<first>[A-Z][A-Za-z'’-]+)(?P<rest>(?:\s[A-Z]\.?(?![\w]))|(?:\s(?:Jr|Sr|II|III|IV)\.?))?"
    r"(?P<more>\s(?:Jr|Sr|II|III|IV)\.?)?"
)
_LABEL_BEFORE = re.compile(
    r"(?i)(?:^|\b(?:patient|pt|name|client|resident|member|re|student|inmate|subscriber|"
    r"insured|guardian|child|minor|youth|defendant|respondent|petitioner|for|caller|"
    r"informant)\b\W{0,4})$"
)
_STOP_NAMES = frozenset(
    {
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "so",
        "he",
        "she",
        "they",
        "it",
        "his",
        "her",
        "him",
        "them",
        "my",
        "our",
        "your",
        "their",
        "this",
        "that",
        "these",
        "those",
        "is",
        "was",
        "are",
        "were",
        "be",
        "been",
        "has",
        "had",
        "have",
        "do",
        "did",
        "not",
        "no",
        "yes",
        "ok",
        "okay",
        "also",
        "then",
        "who",
        "what",
        "when",
        "where",
        "why",
        "how",
        "which",
        "with",
        "without",
        "for",
        "from",
        "to",
        "of",
        "in",
        "on",
        "at",
        "by",
        "as",
    }
)


def _word_ok(word: str, rules: PhiRules) -> bool:
    w = word.strip("'’-")
    return (
        len(w) >= 2
        and any(c in "aeiouyAEIOUY" for c in w)
        and w.casefold() not in _STOP_NAMES
        and fold_allow(w) not in rules.allow.whole_span
    )


_DOTTED_INITIALS = re.compile(r"(?:[A-Z]\.\s?){1,2}[A-Z]\.?")


def is_name_like(value: str, rules: PhiRules) -> bool:
    """False when no word of a NAME span could be a name ("this", "the patient").

    Dotted initials ("J.R.", a sign-off) are name-like although they have no vowel.
    """
    if _DOTTED_INITIALS.fullmatch(value.strip()):
        return True
    return any(_word_ok(w, rules) for w in _NAME_TOKEN.findall(value))


#: Geographic heads: after a name that is also a word, they make a place (Rose Hill).
_PLACE_HEADS = frozenset(
    {"Hill", "Hills", "Park", "Valley", "Lake", "Springs", "Heights", "Point", "City", "Creek"}
    | {"Falls", "Beach", "Ferry", "Junction", "Village", "Township", "County", "Grove"}
)
#: Words ending an establishment's name, never a surname before ", First".
_ESTABLISHMENTS = frozenset(
    {"Center", "Centre", "Clinic", "Hospital", "Recovery", "Services", "School", "Program"}
    | {"Health", "Inc", "LLC", "Associates", "Pharmacy", "Institute", "Foundation", "Court"}
)


def find_last_first_names(text: str, rules: PhiRules) -> list[tuple[int, int]]:
    """``LAST, FIRST [M]`` names: all caps anywhere, mixed case after a label or line start.

    Both words must look like names (a vowel, two letters or more, not a stop word, not an
    allow-listed word such as a state or an abbreviation like "SI, HI").
    """
    out = []
    for m in _LAST_FIRST_RE.finditer(text):
        last, first = m["last"], m["first"]
        if not (_word_ok(last.split()[-1], rules) and _word_ok(first, rules)):
            continue
        if any(w.casefold() in rules.allow.vocabulary for w in (*last.split(), first)):
            continue  # "Center for Eating Disorders, Chagrin Valley" is not LAST, FIRST
        after = text[m.end() : m.end() + 30].split()
        if (after and after[0].strip(",.;") in _PLACE_HEADS) or last in _ESTABLISHMENTS:
            continue  # "Center for Recovery, Maple Heights": an establishment, then a town
        caps = last.isupper() and first.isupper() and len(last) > 2 and len(first) > 2
        line_start = text.rfind("\n", 0, m.start()) + 1
        before = text[max(line_start, m.start() - 40) : m.start()]
        labelled = bool(_LABEL_BEFORE.search(before)) or not before.strip()
        if not labelled and not caps:
            continue
        if not caps and (last.isupper() or first.isupper()):
            continue
        out.append((m.start(), m.end()))
    return out


def find_relative_names(text: str, doc: Any, rules: PhiRules) -> list[tuple[int, int]]:
    """Names right after a kinship or relationship word ("her daughter Chioma").

    The candidate must be tagged a proper noun by spaCy, or be capitalised and not a
    common word; a lower-case name ("my sister keisha", "my brother danny") counts when
    tagged a proper noun, or when it is a listed given name (rules/phi/given_names.yaml)
    that spaCy reads as a noun. A hyphenated or second capitalised word (a surname)
    joins the name.
    """
    if doc is None:
        return []
    out = []
    for m in _KIN_RE.finditer(text):
        start = m.start("name")
        tok = token_at(doc, start)
        if tok is None:
            continue
        word = tok.text
        if not _word_ok(word, rules) or tok.is_stop or tok.like_num:
            continue
        pos = coarse_pos(tok)
        proper = pos == "PROPN"
        capital = word[:1].isupper() and pos in ("PROPN", "NOUN", "ADJ", "X")
        # a lower-case listed name must follow the kin word directly: in "(daughter,
        # faith, work)" the comma makes it a list of supports
        listed = (
            word.islower() and "," not in text[m.start() : start] and _listed_name(word, tok, rules)
        )
        if not (proper or capital or listed):
            continue
        end = _hyphen_end(text, tok.idx + len(word))
        nxt = token_at(doc, end + 1)
        if (
            nxt is not None
            and nxt.text[:1].isupper()
            and coarse_pos(nxt) == "PROPN"
            and _word_ok(nxt.text, rules)
        ):
            end = _hyphen_end(text, nxt.idx + len(nxt.text))
        out.append((start, end))
    return out


def _listed_name(word: str, tok: Any, rules: PhiRules) -> bool:
    """A listed given name; one that is also a word (will, rose) only when tagged a noun."""
    w = word.casefold()
    if w not in rules.given_names:
        return False
    return w not in rules.ambiguous_names or coarse_pos(tok) in _NAME_TAGS


_HYPHEN_TAIL = re.compile(r"(?:[-'’][^\W\d_][\w]*)+")


def _hyphen_end(text: str, end: int) -> int:
    """Extend a name's end over a hyphenated or apostrophe tail (Mbeki-Ward, O'Halloran)."""
    m = _HYPHEN_TAIL.match(text, end)
    return m.end() if m else end


def find_introduced_names(text: str, doc: Any, rules: PhiRules) -> list[tuple[int, int]]:
    """A listed given name after "this is", "my name is", "I'm" (any case, as in messages)."""
    if doc is None:
        return []
    out = []
    for m in _INTRO_RE.finditer(text):
        tok = token_at(doc, m.start("name"))
        word = m["name"]
        if tok is None or word.casefold() in rules.ambiguous_names:
            continue
        if word.casefold() in rules.given_names and coarse_pos(tok) in _NAME_TAGS:
            out.append(m.span("name"))
    return out


def find_given_names(
    doc: Any, rules: PhiRules, text: str | None = None
) -> list[tuple[int, int, float]]:
    """Capitalised listed given names: with a capitalised surname, or alone as a proper noun.

    ``Nadia Sokolova`` is a name even where the model reads it as an organisation. A
    listed name that is also a word (Will, Grace, May) counts only before a surname that
    spaCy tags a proper noun; a listed name alone counts when spaCy tags it a proper noun
    and it is not such a word. Returns ``(start, end, score)``: 0.7 with a surname, 0.6
    alone.
    """
    if doc is None or not rules.given_names:
        return []
    out = []
    if text is None:
        text = doc.text
    # Words are read as slices of the text (a token's text is exactly that slice); a
    # Token object is made only for the few that are listed given names.
    lengths = doc.to_array("LENGTH").tolist()
    for i, (start, length) in enumerate(zip(token_starts(doc), lengths, strict=True)):
        word = text[start : start + length]
        if not (word[:1].isupper() and word[1:].islower() and len(word) >= 2):
            continue
        folded = word.casefold()
        if folded not in rules.given_names:
            continue
        tok = doc[i]
        ambiguous = folded in rules.ambiguous_names
        nxt = doc[tok.i + 1] if tok.i + 1 < len(doc) else None
        surname = (
            nxt is not None
            and nxt.idx == tok.idx + len(word) + 1
            and nxt.text[:1].isupper()
            and nxt.text[1:].islower()
            and nxt.is_alpha
            and _word_ok(nxt.text, rules)
            and nxt.text.casefold() not in rules.allow.vocabulary
            and (not ambiguous or (coarse_pos(nxt) == "PROPN" and nxt.text not in _PLACE_HEADS))
        )
        if surname:
            out.append((tok.idx, _hyphen_end(text, nxt.idx + len(nxt.text)), 0.7))
        elif not ambiguous and coarse_pos(tok) == "PROPN" and _word_ok(word, rules):
            out.append((tok.idx, tok.idx + len(word), 0.6))
    return out


_NAME_TOKEN = re.compile(r"[^\W\d_][\w'’]*(?:-[^\W\d_][\w'’]*)?")


def propagate_names(
    text: str, name_spans: Iterable[tuple[int, int]], rules: PhiRules
) -> list[tuple[int, int]]:
    """Other mentions, in the same document, of name words already found in it.

    A word qualifies when it was part of a detected name, is capitalised there, has at
    least three letters and is not a stop word or allow-listed word. Its other
    occurrences match with the same capitalisation or in all capitals, so "Will" the name
    does not make every "will" a name.
    """
    words: set[str] = set()
    for s, e in name_spans:
        for m in _NAME_TOKEN.finditer(text, s, e):
            w = m.group()
            if len(w) >= 3 and w[0].isupper() and _word_ok(w, rules):
                words.add(w)
    if not words:
        return []
    forms = words | {w.upper() for w in words}
    alternatives = "|".join(re.escape(w) for w in sorted(forms, key=len, reverse=True))
    rx = re.compile(rf"(?<![\w'’-])(?:{alternatives})(?![\w-])")
    return [m.span() for m in rx.finditer(text)]


# ---------------------------------------------------------------------------------------
# The registry.

#: Presidio's own recognizers we reuse, by class name (all general-purpose formats).
#: CreditCardRecognizer is left out: card numbers do not occur in these notes, and its
#: Luhn check also accepts IMEI device numbers (which the labelled device rule finds).
PRESIDIO_RECOGNIZERS: tuple[str, ...] = (
    "EmailRecognizer",
    "IpRecognizer",
    "UrlRecognizer",
    "PhoneRecognizer",
    "UsSsnRecognizer",
    "UsMbiRecognizer",
    "IbanRecognizer",
)


@cache
def offline_tld_extractor() -> Any:
    """A tldextract extractor that uses its bundled suffix-list snapshot, never the network."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def _offline_email_recognizer() -> Any:
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's EmailRecognizer, validating the domain offline (no suffix-list fetch)."""

        def validate_result(self, pattern_text: str) -> bool:
            return offline_tld_extractor()(pattern_text).fqdn != ""

    return OfflineEmailRecognizer(supported_language="en", name="EmailRecognizer")


def token_context_enhancer() -> Any:
    """Presidio's context enhancer, reading lower-case token text instead of lemmas.

    Same rule as Presidio's LemmaContextAwareEnhancer (a recognizer's context word found,
    as a substring, among the five content words before a match raises its score by
    0.35, to at least 0.4), but the engine's pipeline has no lemmatizer, and the token
    holding a match is found by bisection instead of a scan of the document per match.
    Context words are written so that a substring match covers their inflections
    ("licen" in "licenses").
    """
    import bisect

    from presidio_analyzer import RecognizerResult
    from presidio_analyzer.context_aware_enhancers import (
        ContextAwareEnhancer,
        LemmaContextAwareEnhancer,
    )

    class TokenContextEnhancer(LemmaContextAwareEnhancer):
        """Context from the lower-case words before a match (see the factory)."""

        def _extract_surrounding_words(self, nlp_artifacts: Any, word: str, start: int) -> Any:
            doc = nlp_artifacts.tokens
            if not doc:
                return [""]
            index = max(0, bisect.bisect_right(nlp_artifacts.tokens_indices, start) - 1)
            words: list[str] = []
            i, remaining = index, self.context_prefix_count + 1
            while i >= 0 and remaining > 0:
                tok = doc[i]
                if not (tok.is_stop or tok.is_punct or tok.is_space):
                    words.extend(w for w in tok.lower_.split(":") if w)
                    remaining -= 1
                i -= 1
            return list(dict.fromkeys(words))

        def enhance_using_context(
            self,
            text: str,
            raw_results: list[Any],
            nlp_artifacts: Any,
            recognizers: list[Any],
            context: list[str] | None = None,
        ) -> list[Any]:
            """Presidio's rule, applied to the results in place.

            Presidio deep-copies every result first (about 5% of a scan); the analyzer
            never reads the raw results again, so they are updated where they are.
            """
            if nlp_artifacts is None:
                return raw_results
            by_id = {r.id: r for r in recognizers}
            given = [w.lower() for w in context or []]
            for result in raw_results:
                meta = result.recognition_metadata or {}
                recognizer = by_id.get(meta.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
                if (
                    recognizer is None
                    or not recognizer.context
                    or meta.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY)
                ):
                    continue
                words = self._extract_surrounding_words(
                    nlp_artifacts, text[result.start : result.end], result.start
                )
                word = self._find_supportive_word_in_context(
                    [*words, *given], recognizer.context, self.context_matching_mode
                )
                if word:
                    result.score = min(
                        ContextAwareEnhancer.MAX_SCORE,
                        max(
                            result.score + self.context_similarity_factor,
                            self.min_score_with_context_similarity,
                        ),
                    )
                    result.analysis_explanation.set_supportive_context_word(word)
                    result.analysis_explanation.set_improved_score(result.score)
            return raw_results

    return TokenContextEnhancer()


def build_registry(rules: PhiRules, ner_entities: Sequence[str]) -> Any:
    """A Presidio RecognizerRegistry: Presidio's generic recognizers, spaCy NER, YAML rules."""
    import presidio_analyzer.predefined_recognizers as predefined
    from presidio_analyzer import RecognizerRegistry

    registry = RecognizerRegistry(supported_languages=["en"])
    for name in PRESIDIO_RECOGNIZERS:
        if name == "EmailRecognizer":
            registry.add_recognizer(_offline_email_recognizer())
            continue
        if name == "PhoneRecognizer":
            # North American numbering only (US and Canada share it); numbers written
            # with a +country prefix are still found. Presidio's default tries eight
            # regions, each a full scan of the text.
            registry.add_recognizer(
                predefined.PhoneRecognizer(supported_language="en", supported_regions=("US",))
            )
            continue
        registry.add_recognizer(getattr(predefined, name)(supported_language="en"))
    registry.add_recognizer(
        predefined.SpacyRecognizer(supported_language="en", supported_entities=list(ner_entities))
    )
    for spec in rules.recognizers:
        registry.add_recognizer(_pattern_recognizer(spec))
    return registry


def emitted_entities(rules: PhiRules, ner_entities: Sequence[str]) -> set[str]:
    """Every entity name a recognizer of this registry can emit (for the mapping test)."""
    import presidio_analyzer.predefined_recognizers as predefined

    out = set(ner_entities) | {"PERSON"}
    for name in PRESIDIO_RECOGNIZERS:
        out.update(getattr(predefined, name)(supported_language="en").supported_entities)
    out.update(spec["supported_entity"] for spec in rules.recognizers)
    return out
