"""Readable descriptions of pydantic validation errors, for error messages at every boundary."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["field_errors", "describe_validation_error"]


def field_errors(exc: ValidationError, limit: int = 5) -> list[tuple[str, str]]:
    """(dotted field path, message) for the first ``limit`` errors; the path is ``<root>`` for the whole value."""
    return [(".".join(str(p) for p in e["loc"]) or "<root>", e["msg"]) for e in exc.errors()[:limit]]


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """``field: message; field: message`` for the first ``limit`` errors."""
    return "; ".join(f"{field}: {message}" for field, message in field_errors(exc, limit))
