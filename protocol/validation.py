"""Readable descriptions of pydantic validation errors, for error messages at every boundary."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints, ValidationError

__all__ = ["field_errors", "describe_validation_error", "stored_text"]


def field_errors(exc: ValidationError, limit: int = 5) -> list[tuple[str, str]]:
    """(dotted field path, message) for the first ``limit`` errors; the path is ``<root>`` for the whole value."""
    return [(".".join(str(p) for p in e["loc"]) or "<root>", e["msg"]) for e in exc.errors()[:limit]]


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """``field: message; field: message`` for the first ``limit`` errors."""
    return "; ".join(f"{field}: {message}" for field, message in field_errors(exc, limit))


def _no_control(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    return value


def _single_line(value: str) -> str:
    if any(c in value for c in "\r\n\x00"):
        raise ValueError("must be one line with no NUL, carriage return or newline")
    return value


def stored_text(max_length: int, *, min_length: int = 0, single_line: bool = True, pattern: str | None = None) -> Any:
    """A string type that fits a database column: at most ``max_length`` characters, no NUL (which PostgreSQL
    refuses and SQLite keeps), one line unless ``single_line=False``, and ``pattern`` matched over the whole value
    (pydantic's regex has no trailing-newline loophole). Use it for every request field that reaches a column."""
    check = _single_line if single_line else _no_control
    constraints = StringConstraints(min_length=min_length, max_length=max_length, pattern=pattern)
    return Annotated[str, constraints, AfterValidator(check)]
