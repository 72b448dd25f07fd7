"""Masking of evidence: raw PHI and source text never leave auditkit unmasked.

A value becomes ``[TYPE#h]``: ``h`` is a short HMAC of the normalised value under the run's
mask key, so the same value gets the same token throughout a run (a reader can see that
two findings are the same name) but cannot be reversed or dictionary-attacked without the
key. The key is derived from the signing key, never written to the bundle.
"""

from __future__ import annotations

import hashlib
import hmac

from auditkit.text import normalize

TOKEN_HEX = 8


class Masker:
    """Turns sensitive values into keyed tokens and texts into short masked excerpts."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("mask key must be at least 16 bytes")
        self._key = key

    def token(self, value: str, category: str) -> str:
        """Return the masked token for ``value`` of the given category."""
        digest = hmac.new(
            self._key, f"{category}\0{normalize(value)}".encode(), hashlib.sha256
        ).hexdigest()
        return f"[{category}#{digest[:TOKEN_HEX]}]"

    def fingerprint(self, value: str) -> str:
        """A keyed, non-reversible fingerprint of a text (for 'same passage' links)."""
        return hmac.new(self._key, normalize(value).encode(), hashlib.sha256).hexdigest()[:16]
