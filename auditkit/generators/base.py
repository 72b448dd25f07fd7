"""The generator interface every backend implements, and the spec parser.

A generator does two things for auditkit: it scores a text (the log-probability of each
of its tokens, and, where the backend can see the whole next-token distribution, that
distribution's mean and standard deviation of log-probabilities, which Min-K%++ needs),
and it generates text from a prompt. Backends: ``hf:PATH`` (a local transformers folder),
``openai:BASE_URL#MODEL`` (an OpenAI-compatible server) and ``fixture[:NAME]`` (the tiny
models shipped in ``fixtures/generator/``).

This module imports nothing heavy; the backends import torch or the HTTP stack lazily.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from auditkit.errors import AuditkitError, UsageError

#: The shipped fixture generators (folders under fixtures/generator/). ``fixture`` alone
#: means the memorising one: it is the model trained on fixtures/source.jsonl.
FIXTURE_NAMES = ("memorising", "general")
DEFAULT_FIXTURE = "memorising"

SPEC_FORMS = (
    "hf:PATH (a local transformers causal-LM folder), "
    "openai:BASE_URL#MODEL (an OpenAI-compatible server, e.g. "
    "openai:http://localhost:8000/v1#my-model), "
    f"fixture, fixture:{', fixture:'.join(FIXTURE_NAMES)} (the shipped tiny models)"
)


class GeneratorError(AuditkitError):
    """A generator cannot be loaded or cannot do what was asked (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class TokenScores:
    """The generator's view of one text, token by token.

    Attributes:
        logprobs: natural-log probability of each scored token given everything before it.
        offsets: ``(start, end)`` character span of each scored token in the text.
        mean: per token, the mean of log p(z) over the next-token distribution
            (E_z[log p(z)]); None when the backend only exposes the chosen token.
        std: per token, the standard deviation of log p(z) under the same distribution.
    """

    logprobs: tuple[float, ...]
    offsets: tuple[tuple[int, int], ...]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.logprobs)
        if len(self.offsets) != n or any(
            x is not None and len(x) != n for x in (self.mean, self.std)
        ):
            raise ValueError("every per-token field must have one value per token")

    def __len__(self) -> int:
        return len(self.logprobs)


@dataclass(frozen=True)
class GenerationParams:
    """How to generate: ``temperature`` 0 is greedy; ``seed`` drives sampling.

    ``chat`` sends the prompt as one user message of a chat (the model's chat template, or
    the server's ``/chat/completions``) instead of continuing it as plain text.
    """

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    chat: bool = False

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut a generated text before the earliest stop string (the stop itself is dropped)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


class Generator(ABC):
    """A model auditkit can score texts with and generate from."""

    spec: str

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Name, revision and sha256 of the weights (what the manifest records)."""

    @abstractmethod
    def score(self, texts: Sequence[str]) -> list[TokenScores]:
        """Per-token log-probabilities of each text (one TokenScores per text)."""

    @abstractmethod
    def generate(self, prompts: Sequence[str], params: GenerationParams) -> list[str]:
        """The continuation of each prompt (without the prompt)."""

    @property
    def has_distribution(self) -> bool:
        """True when :meth:`score` fills ``mean``/``std`` (Min-K%++ can run)."""
        return False

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (network sessions, model memory)."""


@dataclass(frozen=True)
class GeneratorSpec:
    """A parsed ``--generator`` value."""

    kind: str  # hf | openai | fixture
    target: str  # folder, base URL or fixture name
    model: str | None = None  # the server-side model name (openai)
    raw: str = field(default="", compare=False)


_URL = re.compile(r"^https?://[^\s/#]+(/[^\s#]*)?$")


def parse_spec(spec: str) -> GeneratorSpec:
    """Parse a generator spec, raising a UsageError that lists the valid forms."""
    raw = spec
    spec = spec.strip()
    kind, sep, rest = spec.partition(":")
    hint = f"valid forms: {SPEC_FORMS}"
    if kind == "fixture":
        name = rest if sep else DEFAULT_FIXTURE
        if name not in FIXTURE_NAMES:
            raise UsageError(
                f"generator {raw!r}: unknown fixture generator {name!r}",
                hint=f"use one of: fixture, fixture:{', fixture:'.join(FIXTURE_NAMES)}",
            )
        return GeneratorSpec("fixture", name, raw=raw)
    if kind == "hf":
        if not rest:
            raise UsageError(
                f"generator {raw!r}: hf: needs a folder, e.g. hf:./my-model", hint=hint
            )
        return GeneratorSpec("hf", rest, raw=raw)
    if kind in ("http", "https"):
        raise UsageError(
            f"generator {raw!r}: a server is given as openai:BASE_URL#MODEL",
            hint=f"e.g. openai:{spec}#MODEL",
        )
    if kind == "openai":
        url, hash_, model = rest.partition("#")
        if not hash_ or not model:
            raise UsageError(
                f"generator {raw!r}: the model name is missing after '#'",
                hint="e.g. openai:http://localhost:8000/v1#Qwen/Qwen2.5-0.5B",
            )
        if not _URL.match(url):
            raise UsageError(
                f"generator {raw!r}: {url!r} is not an http(s) base URL",
                hint="e.g. openai:http://localhost:8000/v1#MODEL",
            )
        return GeneratorSpec("openai", url.rstrip("/"), model=model, raw=raw)
    raise UsageError(f"generator {raw!r}: unknown kind {kind!r}", hint=hint)


def load_generator(spec: str | GeneratorSpec, **options: Any) -> Generator:
    """Open the generator a spec names (never downloads anything).

    Args:
        spec: ``hf:PATH``, ``openai:BASE_URL#MODEL``, ``fixture`` or ``fixture:NAME``.
        **options: backend options (``batch_size`` for hf; ``timeout``, ``retries`` and
            ``api_key_env`` for openai).

    Raises:
        UsageError: for a malformed spec.
        GeneratorError: when the model or server cannot be used.
    """
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    if parsed.kind == "openai":
        from auditkit.generators.openai import OpenAIGenerator

        return OpenAIGenerator(parsed.target, parsed.model or "", spec=parsed.raw, **options)
    from auditkit.generators.hf import HFGenerator

    if parsed.kind == "fixture":
        from auditkit.resources import fixtures_dir

        folder = fixtures_dir() / "generator" / parsed.target
        return HFGenerator(folder, spec=parsed.raw or f"fixture:{parsed.target}", **options)
    return HFGenerator(parsed.target, spec=parsed.raw, **options)
