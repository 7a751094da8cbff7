"""`scaleout registry ...` commands: serve | add URL | add-stdio NAME -- COMMAND | import FILE | list | search | show |
remove.

Tables for people by default, ``--json`` for scripts. Commands work on the database directly (``--db``, else
$SCALEOUT_DB_URL, the config file's db_url or the data directory's scaleout.db), or through a running registry server
with ``--api URL`` (or $SCALEOUT_REGISTRY_URL / the config file's registry_url); ``add-stdio`` and ``import`` only on
the database, on the host that will start the command. Reading commands never create a database.

Through ``--api`` the commands send the bearer token from ``--token``, $SCALEOUT_TOKEN or the token file, and verify
an https server against ``--ca-file``. ``serve`` authenticates callers with ``--jwks`` (and serves https with
``--tls-cert``/``--tls-key``); without keys it serves only on loopback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio

from protocol.server_flags import (
    SettingsError,
    add_health_interval_flag,
    add_server_flags,
    announce,
    configure_observability,
    server_settings,
)
from protocol.settings import effective_settings
from registry.cli_add import check_skills, model_option, skill_schema_options, stored_summary
from registry.cli_render import agent_detail, agents_table, emit, format_table
from registry.errors import RegistryError
from registry.models import AgentRecord, CostHints, HealthStatus

__all__ = ["add_parser", "main", "format_table"]

DEFAULT_PORT = 8600
_DB_HELP = (
    "database URL or SQLite path (default $SCALEOUT_DB_URL, else db_url in the config file, else scaleout.db in "
    "the data directory: scaleout config)"
)
_EXAMPLES = {
    "registry": "examples:\n  scaleout registry add http://127.0.0.1:8000\n  scaleout registry list\n"
    "  scaleout registry serve --port 8600",
    "serve": "example:\n  scaleout registry serve --port 8600 --health-interval 30",
    "add": "examples:\n  scaleout registry add http://127.0.0.1:8000\n"
    "  scaleout registry add http://127.0.0.1:8000 --model gemma-3-270m --parameters 270000000 "
    "--skill-schema classify=classify.schema.json\n  scaleout registry add mcp+http://127.0.0.1:9000/mcp --name tools",
    "add-stdio": "example:\n  scaleout registry add-stdio files -- python -m my_mcp_server",
    "list": "example:\n  scaleout registry list --json",
    "search": "examples:\n  scaleout registry search 'pump quote'\n  scaleout registry search --skill classify",
    "import": "example:\n  scaleout registry import agents.jsonl --batch-size 1000",
    "show": "example:\n  scaleout registry show triage",
    "remove": "example:\n  scaleout registry remove triage",
}
_EXISTING_DB_ONLY = ("list", "search", "show", "remove")  # these never create a database


Backend = Callable[[Any], Awaitable[Any]]


async def _with_backend(args: argparse.Namespace, direct: Backend, remote: Backend) -> Any:
    if args.api:
        from registry.client import RegistryClient

        async with RegistryClient(args.api, token=args.token, ca_file=args.ca_file) as client:
            return await remote(client)
    from registry.db import require_existing, resolve_url
    from registry.store import Registry

    if args.registry_command in _EXISTING_DB_ONLY:
        require_existing(resolve_url(args.db))  # a read never creates an empty database
    with Registry(args.db) as reg:
        return await direct(reg)


def _api_url(args: argparse.Namespace) -> str | None:
    """The registry server to use: ``--api``; else, without ``--db``, $SCALEOUT_REGISTRY_URL or the config file's
    registry_url; else None (the database)."""
    if args.api or args.db:
        return str(args.api) if args.api else None
    chosen = effective_settings()["registry_url"]
    return chosen.value if chosen.source != "default" else None


def _run_add(args: argparse.Namespace) -> Any:
    from protocol.egress import EgressPolicy
    from registry import discovery

    cost = CostHints(per_call=args.cost_per_call) if args.cost_per_call is not None else None
    model, schemas = model_option(args), skill_schema_options(args)
    if args.url.startswith(("stdio:", "mcp+stdio:")):
        raise RegistryError(
            "a stdio MCP server is a command on this host: add it with "
            "'scaleout registry add-stdio NAME -- COMMAND ARGS' (which also allows it in this host's stdio allowlist)"
        )
    is_mcp = args.mcp or args.url.startswith("mcp+")
    try:
        egress = EgressPolicy.for_bind("127.0.0.1", args.allow_fetch or ())  # this host, and ranges allowed
    except ValueError as exc:
        raise RegistryError(f"invalid --allow-fetch: {exc}") from None

    if schemas and is_mcp:
        raise RegistryError("--skill-schema is for A2A agents: an MCP server's tools declare their input schemas")

    async def direct(reg: Any) -> AgentRecord:
        if is_mcp:
            return await discovery.register_mcp(
                reg, args.url, name=args.name, model=model, cost=cost, timeout_s=args.timeout, egress=egress
            )
        if not schemas:
            return await discovery.register_url(
                reg, args.url, model=model, cost=cost, timeout_s=args.timeout, egress=egress
            )
        from registry.models import Registration

        card, where = await discovery.fetch_card(args.url, timeout_s=args.timeout, egress=egress)
        check_skills(card, schemas, f"the card at {where}")
        registration = Registration(card=card, model=model, cost=cost, skill_schemas=schemas, card_url=where)
        return await anyio.to_thread.run_sync(reg.register, registration)

    async def remote(client: Any) -> AgentRecord:
        if is_mcp:
            return await client.register_mcp(args.url, name=args.name, model=model, cost=cost)
        if not schemas:
            return await client.register_url(args.url, model=model, cost=cost, fetch_timeout_s=args.timeout)
        card, where = await discovery.fetch_card(args.url, timeout_s=args.timeout, egress=egress)  # from this host
        check_skills(card, schemas, f"the card at {where}")
        return await client.register_card(card, model=model, cost=cost, skill_schemas=schemas)

    return anyio.run(_with_backend, args, direct, remote)


def _stdio_command(args: argparse.Namespace) -> list[str]:
    """The command of ``add-stdio`` (the words after ``--``; options between NAME and ``--`` are parsed too)."""
    words = list(args.command)
    if "--" in words:
        at = words.index("--")
        head, words = words[:at], words[at + 1 :]
        if head:
            args.stdio_options.parse_args(head, namespace=args)
    elif words and words[0].startswith("-"):
        _, rest = args.stdio_options.parse_known_args(words, namespace=args)
        if rest:
            raise RegistryError("put the command after '--': scaleout registry add-stdio NAME [options] -- COMMAND")
        words = []
    if not words:
        raise RegistryError("give the command to start after '--': scaleout registry add-stdio NAME -- COMMAND ARGS")
    return words


def _run_add_stdio(args: argparse.Namespace) -> AgentRecord:
    import anyio.to_thread as to_thread

    from registry import discovery
    from registry.stdio import StdioAllowlist
    from registry.store import Registry

    argv = _stdio_command(args)
    if args.api:
        raise RegistryError(
            "add-stdio runs on the host that will start the command, on its database (--db), not through --api: "
            "it also writes that host's stdio allowlist"
        )
    try:
        allowlist = StdioAllowlist.load(args.allowlist)
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read the stdio allowlist: {exc}") from None
    cost = CostHints(per_call=args.cost_per_call) if args.cost_per_call is not None else None

    async def add(reg: Registry) -> AgentRecord:
        # list the tools with only this command allowed; persist it once the server has answered
        trial = StdioAllowlist([argv], allowlist.path)
        described = await discovery.describe_mcp(argv, name=args.name, timeout_s=args.timeout, stdio_allowlist=trial)
        try:
            allowlist.add(argv)
        except OSError as exc:
            raise RegistryError(f"cannot write the stdio allowlist {allowlist.path}: {exc}") from None
        return await to_thread.run_sync(reg.register, described.model_copy(update={"cost": cost}))

    with Registry(args.db) as reg:
        return anyio.run(add, reg)


def _command(args: argparse.Namespace, out: TextIO) -> None:
    import anyio.to_thread as to_thread

    def call(name: str, *a: Any, **kw: Any) -> Any:
        async def direct(reg: Any) -> Any:
            return await to_thread.run_sync(lambda: getattr(reg, name)(*a, **kw))

        async def remote(client: Any) -> Any:
            return await getattr(client, "get" if name == "find" else name)(*a, **kw)

        return anyio.run(_with_backend, args, direct, remote)

    if args.registry_command == "add":
        record = _run_add(args)
        emit(args, record, stored_summary(record), out)
    elif args.registry_command == "add-stdio":
        record = _run_add_stdio(args)
        text = f"registered {record.name} ({record.id}) with {len(record.skills)} skills; allowed {record.url}"
        emit(args, record, text, out)
    elif args.registry_command == "list":
        records = call("list", args.limit, args.offset)
        emit(args, records, agents_table(records), out)
    elif args.registry_command == "search":
        status = None if args.any_status else {HealthStatus.HEALTHY}
        records = call(
            "search",
            args.skill,
            args.tag or None,
            args.query or None,
            status=status,
            max_cost=args.max_cost,
            max_latency_ms=args.max_latency_ms,
            limit=args.limit,
        )
        emit(args, records, agents_table(records), out)
    elif args.registry_command == "show":
        record = call("find", args.id)
        emit(args, record, agent_detail(record), out)
    elif args.registry_command == "import":
        count = _run_import(args)
        emit(args, {"registered": count}, f"registered {count} agents from {args.file}", out)
    elif args.registry_command == "remove":
        record = call("find", args.id)
        call("deregister", record.id)
        emit(args, {"removed": record.id}, f"removed {record.name} ({record.id})", out)


def _registrations(path: Path, advance: Callable[[int], None]) -> Any:
    """Registrations from a JSON Lines file (each line a Registration, or a bare agent card), one at a time."""
    from pydantic import ValidationError

    from protocol.validation import describe_validation_error
    from registry.models import Registration

    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                yield Registration.model_validate(data if "card" in data else {"card": data})
            except (ValueError, TypeError, ValidationError) as exc:
                reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
                raise RegistryError(f"{path}:{number}: not a registration or agent card: {reason}") from None
            advance(1)


def _run_import(args: argparse.Namespace) -> int:
    """Bulk registration from a JSON Lines file, straight into the database, with a progress bar."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from registry.store import Registry

    if getattr(args, "api", None):
        raise RegistryError("'registry import' writes to the database (--db); register through a server one by one")
    path = Path(args.file)
    if not path.is_file():
        raise RegistryError(f"no file {path}: give a JSON Lines file, one registration or agent card per line")
    with path.open(encoding="utf-8") as lines:
        total = sum(1 for line in lines if line.strip())
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Registry(args.db) as reg, Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task(f"registering {path.name}", total=total)
        return reg.register_many(_registrations(path, lambda n: bar.advance(task, n)), batch_size=args.batch_size)


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from protocol.access import InsecureBind
    from protocol.egress import EgressPolicy
    from protocol.serving import PortInUse, check_port, serve
    from protocol.validation import describe_validation_error
    from registry.api import create_app
    from registry.stdio import StdioAllowlist

    try:
        configure_observability(args, "scaleout-registry")
        settings = server_settings(args)
        check_port(settings.host, settings.port)
        if args.health_interval < 0:
            raise ValueError("--health-interval must be 0 (off) or a number of seconds")
        egress = EgressPolicy.for_bind(args.host, args.allow_fetch or ())
        if args.allow_stdio and not Path(args.allow_stdio).expanduser().is_file():
            raise ValueError(f"--allow-stdio {args.allow_stdio}: no such file")
        allowlist = StdioAllowlist.load(args.allow_stdio) if args.allow_stdio else None
        app = create_app(
            args.db,
            health_interval=args.health_interval or None,
            policy=settings.boundary,
            egress=egress,
            stdio_allowlist=allowlist,
            auth=settings.auth,
            host=settings.host,
        )
    except (SettingsError, InsecureBind, PortInUse) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        print(f"error: invalid setting: {reason}", file=sys.stderr)
        return 2
    print(f"registry on {settings.scheme}://{args.host}:{args.port}", file=sys.stderr)
    announce(settings, "the registry")
    serve(app, settings.host, settings.port, settings.limits, tls=settings.tls, log_level="info", log_config=None)
    return 0


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run a parsed `registry` command; errors print their message and return exit status 1."""
    out = out or sys.stdout
    try:
        if args.registry_command == "serve":
            return _serve(args)
        if args.registry_command not in ("import", "add-stdio"):
            args.api = _api_url(args)
        _command(args, out)
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `registry` command (and its subcommands) to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "registry",
        help="who can do what: the agent registry",
        epilog=_EXAMPLES["registry"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=run)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help=_DB_HELP)
    common.add_argument(
        "--api",
        help="use the registry server at this URL instead of the database (default $SCALEOUT_REGISTRY_URL or the "
        "config file's registry_url, when set and no --db is given)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable JSON output")
    remote = argparse.ArgumentParser(add_help=False, parents=[common])
    remote.add_argument(
        "--token", help="bearer token for --api (default $SCALEOUT_TOKEN, else ~/.config/scaleout/token)"
    )
    remote.add_argument("--ca-file", metavar="PEM", help="CA certificates to verify an https --api server against")
    sub = _Subcommands(parser.add_subparsers(dest="registry_command", required=True))

    serve = sub.add_parser("serve", help="serve the registry HTTP API (uvicorn)", parents=[common])
    add_server_flags(serve, default_port=DEFAULT_PORT, max_body_bytes=2_000_000, what="the registry")
    add_health_interval_flag(serve)
    serve.add_argument(
        "--allow-fetch",
        action="append",
        metavar="CIDR",
        help="private range that discovery and the health sweep may fetch from (repeatable; loopback is allowed "
        "by default only when --host is loopback)",
    )
    serve.add_argument(
        "--allow-stdio", metavar="PATH", help="stdio allowlist whose commands the health sweep may start"
    )

    add = sub.add_parser("add", help="register the agent at URL (A2A card, or an MCP server)", parents=[remote])
    add.add_argument("url", help="A2A base/card URL or mcp+http://host/mcp (stdio commands: add-stdio)")
    add.add_argument("--mcp", action="store_true", help="URL is an MCP server (Streamable HTTP)")
    add.add_argument("--name", help="name for an MCP server (default: the name it reports)")
    add.add_argument("--cost-per-call", type=float, default=None)
    add.add_argument("--model", metavar="NAME", help="the model behind the agent, when its card does not say")
    add.add_argument("--parameters", type=int, metavar="N", help="the model's parameter count (with --model)")
    add.add_argument(
        "--skill-schema",
        action="append",
        metavar="SKILL=FILE.json",
        help="the input JSON Schema of SKILL, read from FILE.json (repeatable; A2A cards carry none)",
    )
    add.add_argument("--timeout", type=float, default=10.0)
    add.add_argument(
        "--allow-fetch",
        action="append",
        metavar="CIDR",
        help="private range the card or server may be fetched from (repeatable; without --api)",
    )

    options = argparse.ArgumentParser(add_help=False, parents=[remote])
    options.add_argument("--allowlist", metavar="PATH", help="stdio allowlist to extend (default: see docs)")
    options.add_argument("--cost-per-call", type=float, default=None)
    options.add_argument("--timeout", type=float, default=20.0)
    stdio = sub.add_parser(
        "add-stdio",
        help="list the tools of a stdio MCP server, allow its command on this host and register it",
        parents=[options],
        usage="%(prog)s [options] NAME -- COMMAND [ARGS ...]",
    )
    stdio.add_argument("name", help="name to register the server under")
    stdio.add_argument("command", nargs=argparse.REMAINDER, help="the command line, after '--'")
    stdio.set_defaults(stdio_options=options)

    lst = sub.add_parser("list", help="list registered agents", parents=[remote])
    lst.add_argument("--limit", type=int, default=100)
    lst.add_argument("--offset", type=int, default=0)

    search = sub.add_parser("search", help="ranked search by text, skill, tags", parents=[remote])
    search.add_argument("query", nargs="?", default="", help="free text over names, descriptions, examples")
    search.add_argument("--skill")
    search.add_argument("--tag", action="append")
    search.add_argument("--any-status", action="store_true", help="include unhealthy and draining agents")
    search.add_argument("--max-cost", type=float)
    search.add_argument("--max-latency-ms", type=float)
    search.add_argument("--limit", type=int, default=20)

    bulk = sub.add_parser(
        "import",
        help="register many agents from a JSON Lines file (database only), with a progress bar",
        parents=[common],
    )
    bulk.add_argument("file", help="one Registration (or bare agent card) as JSON per line")
    bulk.add_argument("--batch-size", type=int, default=1000, help="agents per transaction")

    for name, helptext in (("show", "show one agent"), ("remove", "deregister an agent")):
        p = sub.add_parser(name, help=helptext, parents=[remote])
        p.add_argument("id", help="agent id or name")
    return parser


class _Subcommands:
    """argparse subparsers that give each command its example (``--help`` shows it)."""

    def __init__(self, subparsers: Any) -> None:
        self.subparsers = subparsers

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("epilog", _EXAMPLES.get(name))
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        parser: argparse.ArgumentParser = self.subparsers.add_parser(name, **kwargs)
        return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m registry.cli registry list``."""
    top = argparse.ArgumentParser(prog="scaleout")
    add_parser(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
