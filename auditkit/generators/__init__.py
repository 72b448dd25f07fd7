"""Generation and scoring backends: ``hf:PATH``, ``openai:BASE_URL#MODEL``, ``fixture``.

Importing this package is cheap; torch and transformers load when a model is used.
"""

from auditkit.generators.base import (
    DEFAULT_FIXTURE,
    FIXTURE_NAMES,
    GenerationParams,
    Generator,
    GeneratorError,
    GeneratorSpec,
    TokenScores,
    load_generator,
    parse_spec,
)

__all__ = [
    "DEFAULT_FIXTURE",
    "FIXTURE_NAMES",
    "GenerationParams",
    "Generator",
    "GeneratorError",
    "GeneratorSpec",
    "TokenScores",
    "load_generator",
    "parse_spec",
]
