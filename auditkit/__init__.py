"""auditkit: certify LLM-generated synthetic clinical text before release.

The public API is small and imports nothing heavy until it is called::

    import auditkit
    corpus = auditkit.load_corpus("synthetic.jsonl")
    outcome = auditkit.audit("synthetic.jsonl", source="source.jsonl", out="bundle/")
    outcome.run.verdict.outcome     # "pass" | "pass_with_warnings" | "fail" | "error"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from auditkit.corpus import Corpus
    from auditkit.pipeline import AuditOutcome

__all__ = ["__version__", "audit", "load_corpus"]


def audit(*args: Any, **kwargs: Any) -> AuditOutcome:
    """Run an audit; see :func:`auditkit.pipeline.audit` for the arguments."""
    from auditkit.pipeline import audit as _audit

    return _audit(*args, **kwargs)


def load_corpus(*args: Any, **kwargs: Any) -> Corpus:
    """Load and validate a corpus; see :func:`auditkit.corpus.load_corpus`."""
    from auditkit.corpus import load_corpus as _load

    return _load(*args, **kwargs)
