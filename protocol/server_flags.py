"""The flags every ``scaleout ... serve`` command shares, and what they mean: one wording, one set of checks.

``add_server_flags`` adds --host, --port, --allow-host, --allow-origin, --max-body-bytes, --header-timeout, --jwks,
--audience, --issuer, --tls-cert, --tls-key, --log-level, --log-format and --otel to a command;
``configure_observability`` applies the last three (logging, OpenTelemetry) as a server starts;
``server_settings`` turns the rest (and the command's own --public-url, where it has one) into a
``ServerSettings``, or raises ``SettingsError`` with a one-line message that names the flag;
``announce`` prints the one warning of a server that does not authenticate its callers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocol.logs import LOG_FORMATS, LOG_LEVELS

if TYPE_CHECKING:
    from pydantic import ValidationError

    from protocol.auth import AuthSettings
    from protocol.boundary import BoundaryPolicy
    from protocol.serving import ServerLimits, TlsFiles

__all__ = [
    "SettingsError",
    "ServerSettings",
    "add_server_flags",
    "configure_observability",
    "server_settings",
    "announce",
    "HEALTH_INTERVAL_S",
    "add_health_interval_flag",
]

_WILDCARDS = ("0.0.0.0", "::", "")
# the model field a flag sets -> the flag, so that a pydantic error names what the user typed
_FLAGS = {
    "max_body_bytes": "--max-body-bytes",
    "header_timeout_s": "--header-timeout",
    "allowed_hosts": "--allow-host",
    "allowed_origins": "--allow-origin",
    "jwks_file": "--jwks",
    "audience": "--audience",
    "issuer": "--issuer",
}


class SettingsError(ValueError):
    """A server flag with a value the server cannot run with; the message (one line) names the flag."""


@dataclass(frozen=True)
class ServerSettings:
    """What a ``serve`` command's common flags mean: where to listen, the HTTP boundary, limits, auth and TLS."""

    host: str
    port: int
    boundary: BoundaryPolicy
    limits: ServerLimits
    auth: AuthSettings
    tls: TlsFiles | None
    public_url: str | None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def own_url(self) -> str:
        """``scheme://HOST:PORT`` of the bind address (an IPv6 host in brackets)."""
        return _own_url(self.host, self.port, self.tls is not None)

    @property
    def wildcard(self) -> bool:
        """True when bound to every address (0.0.0.0, ::), so that the bind address names no one server."""
        return self.host in _WILDCARDS


def add_server_flags(parser: argparse.ArgumentParser, *, default_port: int, max_body_bytes: int, what: str) -> None:
    """Add the flags every server shares to ``parser``; ``what`` names what callers reach (e.g. "the registry")."""
    from protocol.serving import ServerLimits

    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=default_port, help=f"port to listen on (default {default_port})")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="also answer to this Host header (repeatable; 'name:*' = any port). Default: loopback names, the bind "
        "host and the public URL's host; any other Host gets 421",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept requests from web pages at this Origin (repeatable, e.g. https://app.example.org); "
        "other origins get 403",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=max_body_bytes,
        help=f"largest request body accepted (413 past it; default {max_body_bytes})",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=ServerLimits().header_timeout_s,
        help="seconds a client may take to send a request's head (then the connection closes)",
    )
    parser.add_argument(
        "--jwks",
        metavar="FILE",
        help="JWKS file of the public keys callers' bearer tokens are signed with ('scaleout auth keygen' writes "
        f"one); required to bind beyond loopback. Without it any process on this machine may use {what}",
    )
    parser.add_argument("--audience", default="scaleout", help="the audience tokens must name (default scaleout)")
    parser.add_argument("--issuer", help="the issuer tokens must name (default: any)")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate chain (with --tls-key)")
    parser.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="lowest level of log lines written (default info)"
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="log lines as text or as one JSON object per line (default text); both carry run/task/attempt/trace ids",
    )
    parser.add_argument(
        "--otel",
        action="store_true",
        help="export OpenTelemetry traces and metrics (OTLP/HTTP to $OTEL_EXPORTER_OTLP_ENDPOINT, default "
        "http://localhost:4318; needs the 'otel' extra); also on when OTEL_* variables name an exporter or endpoint",
    )


def configure_observability(args: argparse.Namespace, service: str) -> None:
    """Apply --log-level, --log-format and --otel (or the OTEL_* variables) for the server ``service``; every
    ``serve`` command calls this first. Configured tokens are scrubbed from log lines. Raises ``SettingsError``
    when telemetry is asked for but cannot start (the ``otel`` extra is missing)."""
    from protocol.logs import configure_logging
    from protocol.telemetry import OtelSetupError, configure

    configure_logging(args.log_level, args.log_format, secrets=_configured_secrets(args))
    try:
        configure(service, force=args.otel)
    except OtelSetupError as exc:
        raise SettingsError(str(exc)) from None


def _configured_secrets(args: argparse.Namespace) -> list[str]:
    """The tokens this command was configured with (flags, the token variables, --agent-credentials values)."""
    secrets = [getattr(args, "agent_token", None) or ""]
    secrets += [os.environ.get(name, "") for name in ("SCALEOUT_TOKEN", "SCALEOUT_AGENT_TOKEN")]
    path = getattr(args, "agent_credentials", None)
    if path:
        try:
            document = json.loads(Path(path).expanduser().read_text())
        except (OSError, ValueError):
            document = None  # the command reports an unreadable file itself
        if isinstance(document, dict):
            secrets += [value for value in document.values() if isinstance(value, str)]
    return secrets


def server_settings(args: argparse.Namespace, *, default_public_url: bool = False) -> ServerSettings:
    """The settings the flags of ``add_server_flags`` (and ``--public-url``, where the command has it) ask for.

    With ``default_public_url``, a command without ``--public-url`` takes its own URL (``scheme://HOST:PORT``) as
    its public URL (agents advertise one in their cards). Raises ``SettingsError`` naming the flag of a bad value:
    half a TLS pair, a file that cannot be read, a value out of range.
    """
    from pydantic import ValidationError

    from protocol.auth import AuthSettings
    from protocol.boundary import BoundaryPolicy
    from protocol.serving import ServerLimits, TlsFiles

    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise SettingsError(
                "--tls-cert and --tls-key go together: pass both (a certificate chain and its private key) to serve "
                "HTTPS"
            )
        tls = TlsFiles(cert=_readable("--tls-cert", args.tls_cert), key=_readable("--tls-key", args.tls_key))
    jwks = Path(_readable("--jwks", args.jwks, " (make a key set with 'scaleout auth keygen')")) if args.jwks else None
    public_url = getattr(args, "public_url", None)
    if not public_url and default_public_url:
        public_url = _own_url(args.host, args.port, tls is not None)
    try:
        boundary = BoundaryPolicy.for_bind(
            args.host,
            args.port,
            public_url=public_url,
            allow_hosts=args.allow_host or (),
            allow_origins=args.allow_origin or (),
            max_body_bytes=args.max_body_bytes,
        )
        limits = ServerLimits(header_timeout_s=args.header_timeout)
        auth = AuthSettings(jwks_file=jwks, audience=args.audience, issuer=args.issuer)
    except ValidationError as exc:
        raise _invalid(exc, args) from None
    except ValueError as exc:  # the public URL's: a port that is not a number, a bracket not closed
        raise SettingsError(f"--public-url {public_url}: {exc}") from None
    return ServerSettings(args.host, args.port, boundary, limits, auth, tls, public_url)


def announce(settings: ServerSettings, what: str) -> None:
    """Print the one warning of a server without --jwks (its callers are not authenticated) to stderr."""
    if settings.auth.jwks_file is None:
        print(
            f"warning: no --jwks: callers are not authenticated; any process on this machine may use {what} "
            "(pass --jwks FILE to require bearer tokens)",
            file=sys.stderr,
        )


def _readable(flag: str, path: str, hint: str = "") -> str:
    """``path`` with ``~`` expanded, when it is a file this process can read; else SettingsError naming ``flag``."""
    where = Path(path).expanduser()
    if not where.is_file():
        raise SettingsError(f"{flag} {path}: no such file{hint}")
    if not os.access(where, os.R_OK):
        raise SettingsError(f"{flag} {path}: cannot read it (permission denied)")
    return str(where)


def _invalid(exc: ValidationError, args: Any) -> SettingsError:
    """A SettingsError naming the flag (and the value) behind the first error of ``exc``."""
    from protocol.validation import describe_validation_error, field_errors

    field = field_errors(exc, 1)[0][0].split(".")[0]
    flag = _FLAGS.get(field)
    if flag is None:
        return SettingsError(f"invalid setting: {describe_validation_error(exc)}")
    value = getattr(args, flag[2:].replace("-", "_"), None)
    shown = "" if value is None or isinstance(value, list) else f" {value}"
    return SettingsError(f"{flag}{shown}: {describe_validation_error(exc)}")


def _own_url(host: str, port: int, tls: bool) -> str:
    bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{'https' if tls else 'http'}://{bracketed}:{port}"


HEALTH_INTERVAL_S = 30.0
"""How often a serving registry or orchestrator sweeps its agents' health by default."""


def add_health_interval_flag(serve: argparse.ArgumentParser) -> None:
    """``--health-interval SECONDS`` of the ``serve`` commands that sweep health (0 turns the sweep off)."""
    serve.add_argument(
        "--health-interval",
        type=float,
        default=HEALTH_INTERVAL_S,
        metavar="SECONDS",
        help=f"probe every registered agent this often (default {HEALTH_INTERVAL_S:g}; 0 turns the sweep off)",
    )
