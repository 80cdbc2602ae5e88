"""Domain errors: what a use case refuses, and why. No web framework, driver or I/O library here.

A service raises one of these with a machine-readable `code`, a human `message` and the `field` it
concerns (a dotted path such as ``choices.0``, or None). Only the HTTP layer (`runtime/http.py`)
knows status codes: RuleViolation → 422, NotFound → 404, Conflict → 409.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal a use case can answer with."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, field={self.field!r})"


class RuleViolation(DomainError):
    """The input is well-formed but a business rule refuses it (a date outside the edition, ...)."""


class NotFound(DomainError):
    """The thing the request names does not exist (or is not visible here)."""


class Conflict(DomainError):
    """The request clashes with the current state (closed edition, deadline passed, already exists)."""


class Unauthenticated(DomainError):
    """No credentials, or credentials that are not valid (unknown, revoked or expired key or token)."""


class Forbidden(DomainError):
    """Valid credentials whose role may not do this (e.g. the national role asking for personal data)."""
