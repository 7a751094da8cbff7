"""Logging: one configuration (level, text or JSON), ids on every line, and no credential in any line."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from protocol import telemetry
from protocol.auth import SigningKey
from protocol.logs import REDACTED, add_secret, configure_logging, log_context, redact
from protocol.server_flags import SettingsError, add_server_flags, configure_observability

log = logging.getLogger("scaleout.test")


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """Each test configures the root logger; put it back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _jwt() -> str:
    return SigningKey.generate().token("alice", ["agents:call"], issuer="scaleout", audience="scaleout", ttl_s=60)


@pytest.mark.parametrize(
    "line",
    [
        "calling with headers {'Authorization': 'Bearer %s', 'A2A-Version': '1.0'}",
        'request headers: {"authorization": "Bearer %s"}',
        "Authorization: Bearer %s",
        "retrying with bearer %s after 401",
        "token=%s",
        "error: bad token %s (expired)",
    ],
)
def test_a_jwt_or_bearer_token_never_reaches_a_log_line(line: str) -> None:
    token = _jwt()
    out = io.StringIO()
    configure_logging("debug", "text", stream=out)
    log.info(line, token)
    assert token not in out.getvalue()
    assert token.split(".")[2] not in out.getvalue()  # not even the signature
    assert REDACTED in out.getvalue()


def test_an_opaque_configured_secret_is_scrubbed_in_messages_and_tracebacks() -> None:
    secret = "opaque-agent-secret-7f3a9c"  # not a JWT: only the configuration knows it is a secret
    out = io.StringIO()
    configure_logging("info", "json", stream=out, secrets=[secret])
    try:
        raise ValueError(f"the agent refused {secret}")
    except ValueError:
        log.exception("call failed with %s", secret)
    entry = json.loads(out.getvalue())
    assert secret not in out.getvalue()
    assert entry["message"] == f"call failed with {REDACTED}" and "ValueError: the agent refused" in entry["exception"]


def test_basic_authorization_and_short_strings() -> None:
    assert redact("Authorization: Basic dXNlcjpwYXNz") == f"Authorization: {REDACTED}"
    add_secret("abc", "", None)  # too short to scrub safely: ignored
    assert redact("abc def") == "abc def"


def test_agent_credentials_file_tokens_are_redacted_by_every_serve_command(tmp_path: Path) -> None:
    secret = "per-agent-opaque-token-0042"
    credentials = tmp_path / "agents.json"
    credentials.write_text(json.dumps({"http://10.0.0.5:8000": secret}))
    parser = argparse.ArgumentParser()
    add_server_flags(parser, default_port=1, max_body_bytes=1000, what="this test")
    parser.add_argument("--agent-credentials")
    args = parser.parse_args(["--agent-credentials", str(credentials), "--log-format", "json"])
    configure_observability(args, "test")
    out = io.StringIO()
    with contextlib.redirect_stderr(out):  # the handler writes to the stderr of the moment
        log.warning("the agent at http://10.0.0.5:8000 refused %s", secret)
    assert secret not in out.getvalue() and REDACTED in out.getvalue()


def test_text_lines_carry_run_task_and_attempt_ids_where_known() -> None:
    out = io.StringIO()
    configure_logging("info", "text", stream=out)
    log.info("outside")
    with log_context(run_id="r1"), log_context(task_id="t1"):
        with log_context(attempt_id="a1"):
            log.info("inside")
        log.info("after the attempt")
    lines = out.getvalue().splitlines()
    assert "[" not in lines[0]
    assert "[run=r1 task=t1 attempt=a1] inside" in lines[1]
    assert "[run=r1 task=t1] after the attempt" in lines[2]


def test_json_lines_carry_the_trace_and_span_ids_of_the_current_span() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    telemetry.install(TracerProvider())
    try:
        with log_context(run_id="r1"), telemetry.span("work") as span:
            log.info("traced")
        context = span.get_span_context()
    finally:
        telemetry.install(None)
    entry = json.loads(out.getvalue())
    assert entry["run_id"] == "r1" and entry["message"] == "traced" and entry["level"] == "info"
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")


def test_level_filters_and_bad_settings_are_refused() -> None:
    out = io.StringIO()
    configure_logging("warning", "text", stream=out)
    log.info("hidden")
    log.warning("shown")
    assert "hidden" not in out.getvalue() and "shown" in out.getvalue()
    with pytest.raises(ValueError, match="log level 'loud'"):
        configure_logging("loud")
    with pytest.raises(ValueError, match="log format 'xml'"):
        configure_logging("info", "xml")  # type: ignore[arg-type]


def test_otel_asked_without_the_sdk_is_a_clear_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if the otel extra were not installed
    parser = argparse.ArgumentParser()
    add_server_flags(parser, default_port=1, max_body_bytes=1000, what="this test")
    with pytest.raises(SettingsError, match=r"pip install 'scaleout\[otel\]'"):
        configure_observability(parser.parse_args(["--otel"]), "test")
