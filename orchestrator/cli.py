"""The ``scaleout`` command line: ``orchestrator serve``, ``run FILE|TASK``, ``runs list|show|watch``, ``config``,
and the ``agent`` and ``registry`` command groups of those packages (each mounted only when it imports).

Every failure is one line on stderr naming the URL, file or field and what to do (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from orchestrator.limits import RUN_STATUSES
from orchestrator.serve_cli import DB_HELP, DEFAULT_PORT, HEALTH_INTERVAL_S, add_serve_flags, serve_parts
from protocol.cli_errors import describe_failure, json_argument
from protocol.settings import ConfigError, apply_config_to_environment, setting

__all__ = ["main", "build_parser", "serve_parts", "orchestrator_url", "DEFAULT_PORT", "DB_HELP", "HEALTH_INTERVAL_S"]

_URL_HELP = "orchestrator URL (default $SCALEOUT_ORCHESTRATOR_URL, else the config file's, else http://127.0.0.1:8100)"
_EXAMPLES = {
    "top": "examples:\n  scaleout config\n  scaleout agent serve mymodule:agent --port 8000\n"
    "  scaleout registry add http://127.0.0.1:8000\n  scaleout orchestrator serve\n"
    '  scaleout run classify --input \'{"text": "hello"}\'\n  scaleout --debug runs list   (tracebacks on errors)',
    "serve": "example:\n  scaleout orchestrator serve --port 8100 --db ~/scaleout.db --health-interval 30",
    "run": 'examples:\n  scaleout run classify --input \'{"text": "my pump leaks"}\'\n  scaleout run graph.json --json',
    "list": "example:\n  scaleout runs list --status failed --limit 5",
    "show": "example:\n  scaleout runs show 3f2a... --json",
    "watch": "example:\n  scaleout runs watch 3f2a...",
    "cancel": "example:\n  scaleout runs cancel 3f2a...",
}


def orchestrator_url(flag: str | None = None) -> str:
    """The orchestrator URL: ``flag``, else $SCALEOUT_ORCHESTRATOR_URL, else the config file's, else the default."""
    return setting("orchestrator_url", flag)


def _parser(sub: Any, name: str, example: str | None = None, **kwargs: Any) -> argparse.ArgumentParser:
    kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    parser: argparse.ArgumentParser = sub.add_parser(name, epilog=_EXAMPLES.get(example or name), **kwargs)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command group that is available."""
    top = argparse.ArgumentParser(
        prog="scaleout",
        description="multi-agent systems of small models",
        epilog=_EXAMPLES["top"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--debug", action="store_true", help="print the full traceback of an error")
    sub = top.add_subparsers(dest="command", required=True)

    orch = _parser(sub, "orchestrator", "serve", help="serve the orchestrator (HTTP API, SSE events, MCP at /mcp)")
    orch_sub = orch.add_subparsers(dest="orchestrator_command", required=True)
    serve = _parser(orch_sub, "serve", help="serve the orchestrator with uvicorn")
    add_serve_flags(serve)

    run = _parser(sub, "run", help="run a graph from a JSON file, or one task needing SKILL")
    run.add_argument("target", help="a JSON file (a graph or a task), or a skill id")
    run.add_argument(
        "--input",
        default="{}",
        help='task input as JSON (with a skill id); text not starting with { [ or " is sent as a string',
    )
    run.add_argument("--deadline", type=float, help="per-attempt deadline in seconds (with a skill id)")
    run.add_argument("--no-wait", action="store_true", help="print the run id and return")
    run.add_argument("--json", action="store_true", help="print the finished run as JSON (status, usage, outputs)")
    run.add_argument("--url", help=_URL_HELP)
    _add_client_flags(run)
    run.set_defaults(func=_run)

    runs = _parser(sub, "runs", "list", help="list, show or watch runs")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    lst = _parser(runs_sub, "list", help="recent runs")
    lst.add_argument("--status", choices=RUN_STATUSES)
    lst.add_argument("--kind", choices=["graph", "negotiation"], help="only task-graph runs, or only negotiations")
    lst.add_argument("--limit", type=int, default=20)
    show = _parser(runs_sub, "show", help="one run: status, usage, tasks, outputs (--json: the raw record)")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true", help="print the raw record as JSON (tasks, attempts, usage)")
    watch = _parser(runs_sub, "watch", help="follow a run's events live until it ends")
    watch.add_argument("run_id")
    cancel = _parser(runs_sub, "cancel", help="cancel an active run")
    cancel.add_argument("run_id")
    for p in (lst, show):
        p.add_argument("--db", help="read the runs straight from this database instead of an orchestrator (--url)")
    for p in (lst, show, watch, cancel):
        p.add_argument("--url", help=_URL_HELP)
        _add_client_flags(p)
        p.set_defaults(func=_runs)
    __import__("orchestrator.answer_cli", fromlist=["add_parser"]).add_parser(runs_sub)  # scaleout runs answer, approve

    for module in (
        "agents.cli",
        "registry.cli",
        "orchestrator.auth_cli",
        "orchestrator.negotiation_cli",
        "orchestrator.ledger_cli",
        "orchestrator.init_cli",
        "orchestrator.config_cli",
    ):
        try:
            add = __import__(module, fromlist=["add_parser"]).add_parser
        except (ImportError, AttributeError) as exc:  # one missing piece must not break the other commands
            print(f"note: {module} unavailable ({exc}); its commands are not mounted", file=sys.stderr)
            continue
        add(sub)
    return top


def _add_client_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--token",
        help="bearer token to send (default $SCALEOUT_TOKEN, else the file $SCALEOUT_TOKEN_FILE or "
        "~/.config/scaleout/token; prefer those: a command line is visible to other users)",
    )
    command.add_argument("--ca-file", help="CA certificate(s) to verify an https orchestrator with (PEM)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scaleout`` console script: errors are one line on stderr (``--debug``: a traceback)."""
    args = build_parser().parse_args(argv)
    try:
        if args.command != "config":  # 'scaleout config' reports a bad config file itself
            apply_config_to_environment()
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the one place every command's failure becomes one line
        if args.debug:
            raise
        print(f"error: {describe_failure(exc, url=_server_url(args), server_hint=_server_hint(args))}", file=sys.stderr)
        return 2


def _server_url(args: argparse.Namespace) -> str | None:
    """The server this command talks to (``--url``, ``--api``, or an agent's URL), as it was resolved."""
    if args.command == "agent":
        return getattr(args, "url", None)
    if args.command == "registry":
        return getattr(args, "api", None)
    return getattr(args, "url", None) or orchestrator_url()


def _server_hint(args: argparse.Namespace) -> str:
    if args.command == "agent":
        return "start it with 'scaleout agent serve MODULE:AGENT' or check the URL"
    if args.command == "registry":
        return "start it with 'scaleout registry serve' or check --api"
    return (
        "start it with 'scaleout orchestrator serve', or pass --url (or set $SCALEOUT_ORCHESTRATOR_URL, or "
        "orchestrator_url in the config file: scaleout config)"
    )


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    path = Path(args.target)
    if path.suffix == ".json" or path.is_file():
        try:
            spec = json.loads(path.read_text())
        except OSError as exc:
            raise SystemExit(f"error: cannot read the run file {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise SystemExit(f"error: the run file {path} is not valid JSON: {exc}") from None
        if not isinstance(spec, dict):
            raise SystemExit(f"error: {path} must hold a JSON object: a task or a graph {{'tasks': [...]}}")
        return spec
    arguments = json_argument(args.input, "--input")
    spec = {"skill": args.target, "input": arguments}
    if args.deadline:
        spec["constraints"] = {"deadline_s": args.deadline}
    return spec


def _client(args: argparse.Namespace) -> Any:
    """An OrchestratorClient for ``--url`` with ``--token`` (else $SCALEOUT_TOKEN or the token file) and
    ``--ca-file``."""
    from orchestrator.client import OrchestratorClient

    args.url = orchestrator_url(args.url)
    try:
        return OrchestratorClient(args.url, token=args.token, ca_file=args.ca_file)
    except OSError as exc:  # ssl.SSLError is one
        raise SystemExit(f"error: cannot use --ca-file {args.ca_file}: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    from orchestrator.client import OrchestratorError

    spec = _spec(args)

    async def go() -> int:
        async with _client(args) as client:
            try:
                run_id = await client.submit(spec)
                if args.no_wait:
                    print(run_id)
                    return 0
                await _watch(client, run_id)
                record = await client.get_run(run_id)
            except OrchestratorError as exc:  # e.g. a token that may submit but not read runs
                print(f"error: {exc}", file=sys.stderr)
                return 2
            if args.json:
                print(json.dumps(_brief(record), indent=2))
            else:
                _print_outputs(record)
            return 0 if record["status"] == "succeeded" else 1

    return anyio.run(go)


def _stored_runs(args: argparse.Namespace) -> Any:
    """``runs list|show --db``: the runs or the run, read from the database (which must exist), JSON-ready."""
    import sqlalchemy as sa
    from pydantic_core import to_jsonable_python

    from orchestrator.runs import RunStore
    from protocol.timestamps import with_rfc3339
    from registry.db import require_existing, resolve_url

    url = resolve_url(args.db)
    require_existing(url, "runs are stored where 'scaleout orchestrator serve --db DB' ran")
    store = RunStore(url, migrate=False)
    try:
        if args.runs_command == "list":
            return to_jsonable_python(
                with_rfc3339(store.list_runs(status=args.status, limit=args.limit, kind=args.kind))
            )
        record = store.get_run(args.run_id)
        if record is None:
            raise SystemExit(
                f"error: no run {args.run_id} in {args.db}; 'scaleout runs list --db {args.db}' lists them"
            )
        record["tasks"], record["attempts"] = store.tasks_of(args.run_id), store.attempts_of(args.run_id)
        return to_jsonable_python(with_rfc3339(record))
    except sa.exc.OperationalError as exc:
        raise SystemExit(
            f"error: cannot read runs from {args.db}: {exc.orig}; is it the database 'scaleout orchestrator serve' "
            "used (--db)?"
        ) from None
    finally:
        store.engine.dispose()


def _print_runs(runs: list[dict[str, Any]]) -> None:
    for run in runs:
        print(
            f"{run['id']}  {run['status']:<10} {run.get('kind', 'graph'):<11} {run['created_at']}  "
            f"{run['name'] or ''}"
            f"{'  ' + run['error'][:80] if run['error'] else ''}"
        )


def _runs(args: argparse.Namespace) -> int:
    from orchestrator.client import OrchestratorError

    if getattr(args, "db", None):
        stored = _stored_runs(args)
        if args.runs_command == "list":
            _print_runs(stored)
        elif args.json:
            print(json.dumps(stored, indent=2))
        else:
            from orchestrator.render import run_summary, terminal

            terminal().print(run_summary(stored))
        return 0

    async def go() -> int:
        async with _client(args) as client:
            try:
                if args.runs_command == "list":
                    _print_runs(await client.list_runs(status=args.status, limit=args.limit, kind=args.kind))
                elif args.runs_command == "show":
                    record = await client.get_run(args.run_id)
                    if args.json:
                        print(json.dumps(record, indent=2))
                    else:
                        from orchestrator.render import run_summary, terminal

                        terminal().print(run_summary(record))
                elif args.runs_command == "watch":
                    status = await _watch(client, args.run_id)
                    _print_outputs(await client.get_run(args.run_id))
                    return 0 if status == "succeeded" else 1
                else:
                    print(json.dumps({"cancelled": await client.cancel(args.run_id)}))
            except OrchestratorError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            return 0

    return anyio.run(go)


async def _watch(client: Any, run_id: str) -> str:
    """Show the run's progress live (tasks done/total, attempts running, tokens; one line per event when the
    output is not a terminal); returns the run's final status."""
    from orchestrator.render import terminal, watch_run

    return (await watch_run(client.events(run_id), run_id, terminal())).status


def _print_outputs(record: dict[str, Any]) -> None:
    """The finished run's status line and outputs (each succeeded task's JSON, each failed task's error)."""
    from orchestrator.render import outputs_view, run_summary, terminal

    console = terminal()
    console.print(run_summary(record) if record.get("kind") == "negotiation" else outputs_view(record))


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record["id"],
        "status": record["status"],
        "error": record["error"],
        "usage": record["usage"],
        "tasks": {
            t["task_id"]: t["output"] if t["status"] == "succeeded" else {"status": t["status"], "error": t["error"]}
            for t in record["tasks"]
        },
    }


if __name__ == "__main__":
    sys.exit(main())
