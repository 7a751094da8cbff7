"""How every ``scaleout`` command reports a failure: one line naming the URL, file or field, and what to do.

``json_argument`` parses a JSON command-line value locally, so a typo is refused with its line and column before
anything is sent; ``describe_failure`` turns any exception a command lets through into that one line.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

__all__ = ["ArgumentError", "json_argument", "describe_failure", "LOOKS_LIKE_JSON"]

LOOKS_LIKE_JSON = ("{", "[", '"')
"""Text starting with one of these must be valid JSON; other text is sent as a plain string."""


_EXAMPLE_VALUE = """ '{"text": "hello"}'"""


class ArgumentError(ValueError):
    """A command-line value that cannot be used; the message says which one and how to fix it."""


def json_argument(text: str, name: str, example: str | None = None) -> Any:
    """``text`` parsed as JSON; text that does not look like JSON (see ``LOOKS_LIKE_JSON``) is returned as it is.

    Raises ``ArgumentError`` naming ``name`` with the parse error's line and column, and ``example`` (a valid
    command line; default ``NAME '{"text": "hello"}'``)."""
    if not text.lstrip().startswith(LOOKS_LIKE_JSON):
        try:
            return json.loads(text)  # a number, true, false or null
        except json.JSONDecodeError:
            return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArgumentError(
            f"{name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; quote keys and strings "
            f"with double quotes, e.g. {example or name + _EXAMPLE_VALUE}"
        ) from None


def _request_url(exc: httpx.HTTPError) -> str | None:
    try:
        return str(exc.request.url)
    except RuntimeError:  # an error raised before a request was attached
        return None


def describe_failure(exc: BaseException, *, url: str | None = None, server_hint: str = "") -> str:
    """One line for ``exc``: what failed, where (the URL or file), and what to do; ``url`` is the server the
    command talks to (used when the error does not carry one), ``server_hint`` how to start that server."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:  # a task group's single failure
        exc = exc.exceptions[0]
    hint = f"; {server_hint}" if server_hint else ""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        where = url or _request_url(exc) or "the server"
        reason = str(exc) or "connection failed"
        if "CERTIFICATE_VERIFY_FAILED" in reason or "SSL" in reason:
            return f"the TLS certificate of {where} is not trusted ({reason}); pass --ca-file with its CA (PEM)"
        return f"cannot reach {where} ({reason}){hint or '; check that the server is running there'}"
    if isinstance(exc, httpx.TimeoutException):
        where = _request_url(exc) or url or "the server"
        return f"no answer from {where} in time ({type(exc).__name__}); check that the server is not overloaded"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return f"not a usable URL {url or ''}: {exc}; give one like http://127.0.0.1:8100".replace("  ", " ")
    if isinstance(exc, httpx.HTTPError):
        where = _request_url(exc) or url or "the server"
        return f"the request to {where} failed: {type(exc).__name__}: {exc}"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no file {exc.filename}: check the path"
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot use {exc.filename}: {exc.strerror or exc}"
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ArgumentError | ValueError | LookupError | PermissionError | OSError):
        return message
    known = type(exc).__module__.split(".")[0] in {"protocol", "agents", "registry", "orchestrator", "scenarios"}
    if known:
        return message
    return f"{type(exc).__name__}: {message} (run 'scaleout --debug ...' for the traceback)"
