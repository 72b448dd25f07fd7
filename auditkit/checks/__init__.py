"""Checks: each computes metrics and per-record findings over the corpora; none judges."""
