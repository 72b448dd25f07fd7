"""The auditkit error hierarchy.

Every error a user can cause is an :class:`AuditkitError` whose message names the bad
value (file, line, field, key) and what to do about it. The CLI maps the hierarchy to
exit codes; nothing here formats for a terminal.

Messages must never contain raw record text or PHI: name the place, not the content.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class AuditkitError(Exception):
    """Base class of every error auditkit raises on purpose."""

    exit_code: int = EXIT_INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(AuditkitError):
    """A bad option, a missing file, or a combination of options that cannot work."""

    exit_code = EXIT_USAGE


class InputError(AuditkitError):
    """An input file (corpus, policy, key) is malformed. Always names the file."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}", hint=hint)


class CorpusError(InputError):
    """A corpus file cannot be read as a set of records."""


class PolicyError(InputError):
    """A policy file is not valid YAML or does not match the policy schema."""


class ModelUnavailableError(AuditkitError):
    """A model that a check needs is not installed locally (auditkit never downloads)."""

    exit_code = EXIT_USAGE


class SigningError(AuditkitError):
    """A key or certificate cannot be loaded or used."""

    exit_code = EXIT_USAGE


class VerificationError(AuditkitError):
    """A bundle does not match what was signed: a changed, missing or extra file."""

    exit_code = EXIT_GATE_FAILED


class CheckError(AuditkitError):
    """A check failed while computing; the audit cannot certify the data."""

    exit_code = EXIT_INTERNAL
