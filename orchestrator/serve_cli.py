"""``scaleout orchestrator serve``: its flags, and the app and server it runs (with the registry's health sweep)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import anyio

from orchestrator.limits import MAX_BODY_BYTES
from protocol.server_flags import (
    HEALTH_INTERVAL_S,
    ServerSettings,
    SettingsError,
    add_health_interval_flag,
    add_server_flags,
    announce,
    configure_observability,
    server_settings,
)

__all__ = ["add_serve_flags", "serve_parts", "DEFAULT_PORT", "DB_HELP", "HEALTH_INTERVAL_S"]

DEFAULT_PORT = 8100
DB_HELP = (
    "database URL or SQLite path (default $SCALEOUT_DB_URL, else db_url in the config file, else scaleout.db in "
    "the data directory: scaleout config)"
)


def add_serve_flags(serve: argparse.ArgumentParser) -> None:
    """Every flag of ``orchestrator serve`` (the servers' common ones, storage, replicas, auth, limits)."""
    add_server_flags(serve, default_port=DEFAULT_PORT, max_body_bytes=MAX_BODY_BYTES, what="the orchestrator")
    serve.add_argument("--db", help=DB_HELP)
    add_health_interval_flag(serve)
    serve.add_argument("--no-resume", action="store_true", help="fail unfinished runs at start instead of resuming")
    serve.add_argument(
        "--replica-id",
        help="this replica's name among the orchestrators sharing the database (default: host-pid-random); "
        "a restart with the same name takes its runs back at once",
    )
    serve.add_argument(
        "--lease-s",
        type=float,
        default=15.0,
        help="seconds a replica owns its runs without a heartbeat: a crashed replica's runs move after this",
    )
    serve.add_argument(
        "--require-signed",
        action="store_true",
        help="route only to agents whose Agent Card signature the registry verified, with no unaccepted key change "
        "(docs/trust.md)",
    )
    _add_auth_flags(serve)
    _add_security_flags(serve)
    serve.set_defaults(func=_serve)


def _add_auth_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--public-url", help="how clients reach this server (https://orch.example.com): its MCP resource URL"
    )
    serve.add_argument(
        "--agent-token",
        metavar="TOKEN",
        help="bearer token this orchestrator sends to every agent it calls (default $SCALEOUT_AGENT_TOKEN; "
        "prefer that or --agent-credentials: a command line is visible to other users)",
    )
    serve.add_argument(
        "--agent-credentials",
        metavar="FILE",
        help='per-agent tokens: JSON {"<agent URL prefix>": "<token>"}; the longest matching prefix wins, then '
        "--agent-token",
    )
    serve.add_argument("--ca-file", help="CA certificate(s) to verify https agents with (default: the system's)")


def _add_security_flags(serve: argparse.ArgumentParser) -> None:
    from orchestrator.limits import RunLimits

    limits = RunLimits()
    serve.add_argument(
        "--allow-stdio",
        metavar="PATH",
        help="allowlist of MCP stdio commands this orchestrator may start (default $SCALEOUT_STDIO_ALLOWLIST or "
        "~/.config/scaleout/stdio-allowlist; 'scaleout registry add-stdio' appends to it)",
    )
    serve.add_argument(
        "--allow-fetch",
        metavar="CIDR",
        action="append",
        default=[],
        help="let agent calls reach this private range (repeatable); loopback is allowed only when bound to it",
    )
    serve.add_argument("--max-tasks", type=int, default=limits.max_tasks, help="tasks in one graph")
    serve.add_argument(
        "--max-concurrency", type=int, default=limits.max_concurrency, help="highest concurrency a graph may ask"
    )
    serve.add_argument(
        "--max-active-runs", type=int, default=limits.max_active_runs, help="runs this replica runs at once"
    )
    serve.add_argument(
        "--max-queued-runs", type=int, default=limits.max_queued_runs, help="runs waiting for a replica with room"
    )
    serve.add_argument(
        "--max-input-bytes", type=int, default=limits.max_input_bytes, help="JSON size of one task's input"
    )


def serve_parts(args: argparse.Namespace, settings: ServerSettings | None = None) -> tuple[Any, Any]:
    """The app and server limits ``orchestrator serve`` runs with (raises SystemExit on a bad setting, and
    ``protocol.access.InsecureBind`` when bound beyond loopback without keys)."""
    from pydantic import ValidationError

    from orchestrator.api import ACCESS_RULES, create_app
    from orchestrator.credentials import AgentCredentials
    from orchestrator.limits import RunLimits
    from orchestrator.replica import default_replica_id
    from orchestrator.router import Router
    from orchestrator.service import Orchestrator
    from protocol.access import InsecureBind, access_policy
    from protocol.egress import EgressPolicy
    from protocol.validation import describe_validation_error
    from registry import Registry
    from registry.stdio import StdioAllowlist

    settings = settings or _server_settings(args)
    try:
        access_policy(ACCESS_RULES, settings.auth, host=settings.host)  # InsecureBind, or an unreadable key set
        credentials = AgentCredentials.from_config(args.agent_token, args.agent_credentials, ca_file=args.ca_file)
        if args.ca_file:
            credentials.verify()  # a CA file that cannot be read fails now, not at the first agent call
        limits = RunLimits(
            max_tasks=args.max_tasks,
            max_concurrency=args.max_concurrency,
            max_active_runs=args.max_active_runs,
            max_queued_runs=args.max_queued_runs,
            max_input_bytes=args.max_input_bytes,
        )
        egress = EgressPolicy.for_bind(args.host, args.allow_fetch)
        allowlist = StdioAllowlist.load(args.allow_stdio)
    except ValidationError as exc:
        raise SystemExit(f"error: {describe_validation_error(exc)}") from None
    except InsecureBind:
        raise
    except (ValueError, OSError) as exc:  # a CIDR that is not one, an unreadable allowlist line, key or CA file
        raise SystemExit(f"error: {exc}") from None
    replica_id = args.replica_id or default_replica_id()
    # every PostgreSQL connection of this process (registry, run store, listener) says which replica it serves
    os.environ.setdefault("PGAPPNAME", f"scaleout-orchestrator {replica_id}"[:63])
    registry = Registry(args.db)
    health_interval = getattr(args, "health_interval", HEALTH_INTERVAL_S)
    orchestrator = Orchestrator(
        registry,
        registry.url,
        router=Router(registry, require_signed=args.require_signed),
        resume=not args.no_resume,
        replica_id=replica_id,
        lease_s=args.lease_s,
        limits=limits,
        stdio_allowlist=allowlist,
        egress=egress,
        agent_credentials=credentials,
    )
    public_url = settings.public_url or (None if settings.wildcard else settings.own_url)  # the MCP resource URL
    app = create_app(
        orchestrator, policy=settings.boundary, auth=settings.auth, host=settings.host, public_url=public_url
    )
    if health_interval and health_interval > 0:
        app = _with_health_sweep(app, registry, egress, allowlist, health_interval)
    return app, settings.limits


def _with_health_sweep(app: Any, registry: Any, egress: Any, allowlist: Any, interval_s: float) -> Any:
    """``app`` that also sweeps the registry's agents every ``interval_s`` seconds while it runs (its lifespan)."""
    from registry.health import HealthChecker

    return _HealthSweeping(app, HealthChecker(registry, egress=egress, stdio_allowlist=allowlist), interval_s)


class _HealthSweeping:
    """An ASGI app running a ``HealthChecker`` beside the wrapped app's lifespan (other attributes: the app's)."""

    def __init__(self, app: Any, checker: Any, interval_s: float) -> None:
        self._inner, self._checker, self._interval_s = app, checker, interval_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self._inner(scope, receive, send)
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._checker.run, self._interval_s)
            try:
                await self._inner(scope, receive, send)
            finally:
                tg.cancel_scope.cancel()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _server_settings(args: argparse.Namespace) -> ServerSettings:
    """The common server flags' settings; a bad one exits as every other bad setting of this command does."""
    try:
        return server_settings(args)
    except SettingsError as exc:
        raise SystemExit(f"error: {exc}") from None


def _serve(args: argparse.Namespace) -> int:
    from protocol.access import InsecureBind
    from protocol.serving import PortInUse, check_port, serve

    try:
        configure_observability(args, "scaleout-orchestrator")
    except SettingsError as exc:
        raise SystemExit(f"error: {exc}") from None
    settings = _server_settings(args)
    if args.health_interval < 0:
        raise SystemExit("error: --health-interval must be 0 (off) or a number of seconds")
    try:
        check_port(settings.host, settings.port)
        app, limits = serve_parts(args, settings)
    except (InsecureBind, PortInUse) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"orchestrator on {settings.scheme}://{args.host}:{args.port} (MCP at /mcp)", file=sys.stderr)
    announce(settings, "the orchestrator")
    serve(app, settings.host, settings.port, limits, tls=settings.tls, log_config=None)  # our logging
    return 0
