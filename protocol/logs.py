"""One logging configuration for every ``serve`` command: level, text or JSON lines, ids, and redaction.

``configure_logging`` puts one handler on the root logger (stderr). Every record it writes carries the run, task
and attempt ids set with ``log_context`` and the current trace and span ids, where known. Every line passes
``redact`` first: ``Authorization`` headers, bearer tokens, JWTs and the secrets named with ``add_secret`` (e.g. the
tokens of ``--agent-credentials``) never reach a log line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Literal

from protocol.telemetry import current_ids

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "LOG_FIELDS",
    "REDACTED",
    "ContextFilter",
    "RedactingFormatter",
    "JsonFormatter",
    "configure_logging",
    "log_context",
    "add_secret",
    "redact",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FIELDS = ("run_id", "task_id", "attempt_id", "trace_id", "span_id")  # on every record, None where unknown
REDACTED = "[REDACTED]"
_TEXT_IDS = (("run", "run_id"), ("task", "task_id"), ("attempt", "attempt_id"), ("trace", "trace_id"))
_CHATTY = ("httpx", "httpcore", "httpx2")
_MIN_SECRET = 8  # shorter strings are too likely to be ordinary words to scrub

_ids: ContextVar[tuple[str | None, str | None, str | None]] = ContextVar("scaleout_log_ids", default=(None,) * 3)
_secrets: set[str] = set()
_PATTERNS = (
    # an Authorization header (any scheme) as "Authorization: X", 'authorization': 'X', authorization=X
    re.compile(r"""(?i)(authorization["']?\s*[:=]\s*["']?)(?:(?:bearer|basic|token)\s+)?[^\s"',;}]+"""),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"),  # a bearer token anywhere
    re.compile(r"()eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),  # a JWT (header.payload.signature)
)


def add_secret(*values: str | None) -> None:
    """Scrub these strings (e.g. configured tokens) from every log line from now on; short or empty ones are
    ignored (they would redact ordinary words)."""
    for value in values:
        if value and len(value.strip()) >= _MIN_SECRET:
            _secrets.add(value.strip())


def redact(text: str) -> str:
    """``text`` with credentials replaced by ``[REDACTED]``: Authorization values, bearer tokens, JWTs, and the
    secrets given to ``add_secret``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


@contextmanager
def log_context(
    *, run_id: str | None = None, task_id: str | None = None, attempt_id: str | None = None
) -> Iterator[None]:
    """Log records inside the block carry these ids (unset ones keep the enclosing block's)."""
    run, task, attempt = _ids.get()
    token = _ids.set((run_id or run, task_id or task, attempt_id or attempt))
    try:
        yield
    finally:
        _ids.reset(token)


class ContextFilter(logging.Filter):
    """Puts ``run_id``, ``task_id``, ``attempt_id``, ``trace_id`` and ``span_id`` on every record (None where
    unknown); a handler filter, so records propagated from every logger get them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id, record.task_id, record.attempt_id = _ids.get()
        ids = current_ids()
        record.trace_id, record.span_id = ids if ids is not None else (None, None)
        return True


class RedactingFormatter(logging.Formatter):
    """Text lines: ``time level logger [run=… task=… attempt=… trace=…] message``, then any traceback, redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        pairs = [
            f"{label}={value}"
            for label, field in (
                ("run", "run_id"),
                ("task", "task_id"),
                ("attempt", "attempt_id"),
                ("trace", "trace_id"),
            )
            if (value := getattr(record, field, None))
        ]
        record.ids = f" [{' '.join(pairs)}]" if pairs else ""
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids known, and ``exception`` (the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for field in LOG_FIELDS:
            value = getattr(record, field, None)
            if value:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


_handler: logging.Handler | None = None


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record (as ``logging.lastResort`` does), so a
    replaced or closed stderr (a test's capture, a daemon's redirection) never breaks logging."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure_logging(
    level: str = "info", fmt: LogFormat = "text", *, stream: IO[str] | None = None, secrets: Iterable[str] = ()
) -> logging.Handler:
    """Send every logger's records at ``level`` and above to ``stream`` (stderr) as ``fmt`` lines (text or json),
    with ids and redaction; replaces the handler an earlier call installed. Returns the handler."""
    global _handler
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    add_secret(*secrets)
    handler: logging.StreamHandler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()  # type: ignore[type-arg]
    handler.setFormatter(JsonFormatter() if fmt == "json" else RedactingFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _CHATTY:  # a line per HTTP request: only when debugging
        logging.getLogger(name).setLevel(logging.DEBUG if level.lower() == "debug" else logging.WARNING)
    logging.captureWarnings(True)
    _handler = handler
    return handler
