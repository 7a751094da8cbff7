"""Readable terminal output for runs (rich): a run's summary, its live progress while it runs, its outputs.

``run_summary`` is what ``scaleout runs show`` prints; ``watch_run`` what ``runs watch`` and ``scaleout run`` show
while a run goes on (a live panel on a terminal, one line per event otherwise, so logs stay readable);
``progress_bar`` is the one progress-bar style of the whole CLI for long work.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.json import JSON
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from protocol.timestamps import parse_timestamp, rfc3339

__all__ = [
    "STATUS_STYLES",
    "terminal",
    "run_summary",
    "outputs_view",
    "RunProgress",
    "watch_run",
    "progress_bar",
]

STATUS_STYLES = {
    "pending": "dim",
    "running": "bold blue",
    "succeeded": "bold green",
    "failed": "bold red",
    "skipped": "dim",
    "cancelled": "yellow",
    "interrupted": "yellow",
}
_END_KINDS = ("run.succeeded", "run.failed", "run.cancelled")
_TASK_END_KINDS = ("task.succeeded", "task.failed", "task.skipped")
MAX_OUTPUT_CHARS = 4_000  # one task's output as printed; the full record is in `runs show --json`


def terminal(file: Any = None) -> Console:
    """The console the CLI writes to: the terminal's width, or 120 columns when the output is not a terminal."""
    stream = file or sys.stdout
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    return Console(file=stream, width=None if is_tty else 120, highlight=is_tty, soft_wrap=False)


def _status(status: str | None) -> Text:
    return Text(status or "?", style=STATUS_STYLES.get(status or "", ""))


def _when(value: Any) -> str:
    """A timestamp as every scaleout output writes it: RFC 3339 UTC with Z."""
    if isinstance(value, str):
        try:
            value = parse_timestamp(value)
        except ValueError:
            return value
    return rfc3339(value) if isinstance(value, datetime) else "–"


def _seconds(start: Any, end: Any) -> str:
    try:
        a = parse_timestamp(start) if isinstance(start, str) else _aware(start)
        b = parse_timestamp(end) if isinstance(end, str) else _aware(end)
        return f"{(b - a).total_seconds():.2f} s"
    except (TypeError, ValueError, AttributeError):
        return "–"


def _aware(value: datetime) -> datetime:
    return parse_timestamp(rfc3339(value))  # naive values are UTC


def _agent_names(record: dict[str, Any]) -> dict[str, str]:
    """Agent names by id, from the tasks' routing explanations (tasks and attempts store ids)."""
    names: dict[str, str] = {}
    for task in record.get("tasks", []):
        for candidate in (task.get("routing") or {}).get("ranked", []):
            names[candidate.get("agent_id", "")] = candidate.get("name", "")
    return names


def _short(text: str | None, limit: int = 100, *, tail: bool = False) -> str:
    """``text`` on one line, cut to ``limit`` characters (keeping the end with ``tail``: where errors say why)."""
    line = " ".join((text or "").split())
    if len(line) <= limit:
        return line
    return "…" + line[-(limit - 1) :] if tail else line[: limit - 1] + "…"


def _json_view(value: Any) -> RenderableType:
    text = json.dumps(value, indent=2, default=str)
    if len(text) > MAX_OUTPUT_CHARS:
        return Text(text[:MAX_OUTPUT_CHARS] + f"\n… ({len(text) - MAX_OUTPUT_CHARS} more characters)")
    return JSON(text, indent=2)


def outputs_view(record: dict[str, Any]) -> RenderableType:
    """Each succeeded task's output as JSON, and each failed task's error, under the task's id."""
    parts: list[RenderableType] = []
    output = record.get("output")
    if output is not None and not record.get("tasks"):
        parts += [Text("output", style="bold"), _json_view(output)]
    for task in record.get("tasks", []):
        if task["status"] == "succeeded":
            parts += [Text(f"{task['task_id']}:", style="bold green"), _json_view(task.get("output"))]
        elif task.get("error"):
            parts.append(Text.assemble((f"{task['task_id']} {task['status']}: ", "bold red"), task["error"]))
    return Group(*parts) if parts else Text("no outputs", style="dim")


def _usage_table(usage: dict[str, Any] | None, attempts: list[dict[str, Any]]) -> Table:
    u = dict(usage or {})
    if not u and attempts:  # still running: what its attempts used so far
        for key in ("prompt_tokens", "completion_tokens", "wall_seconds", "cpu_seconds", "energy_joules"):
            u[key] = sum(a.get(key) or 0 for a in attempts)
        u["attempts"] = len(attempts)
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for name in ("tokens (prompt+completion)", "attempts", "agent time", "CPU", "energy"):
        table.add_column(name)
    prompt, completion = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
    table.add_row(
        f"{prompt + completion} ({prompt}+{completion})",
        str(int(u.get("attempts") or 0)),
        f"{float(u.get('wall_seconds') or 0):.3f} s",
        f"{float(u.get('cpu_seconds') or 0):.3f} s",
        f"{float(u.get('energy_joules') or 0):.2f} J",
    )
    return table


def _tasks_table(record: dict[str, Any]) -> Table:
    names = _agent_names(record)
    attempts = record.get("attempts", [])
    table = Table(header_style="bold", expand=False)
    for name in ("task", "status", "agent", "attempts", "seconds", "tokens", "error"):
        table.add_column(name, overflow="fold")
    for task in record.get("tasks", []):
        mine = [a for a in attempts if a.get("task_id") == task["task_id"]]
        agent = task.get("agent_id") or (mine[-1]["agent_id"] if mine else None)
        table.add_row(
            task["task_id"],
            _status(task["status"]),
            names.get(agent or "", agent or "–"),
            str(task.get("attempts", 0)),
            f"{sum(a.get('wall_seconds') or 0 for a in mine):.3f}",
            str(sum((a.get("prompt_tokens") or 0) + (a.get("completion_tokens") or 0) for a in mine)),
            Text(_short(task.get("error"), tail=True), style="red"),
        )
    return table


def _negotiation_view(outcome: dict[str, Any]) -> RenderableType:
    lines = [Text.assemble(("outcome ", "bold"), str(outcome.get("outcome")), f" after {outcome.get('rounds')} rounds")]
    if outcome.get("agreement"):
        lines.append(Text.assemble(("agreement ", "bold"), json.dumps(outcome["agreement"])))
    if outcome.get("utilities"):
        utilities = ", ".join(f"{k} {float(v):.3f}" for k, v in outcome["utilities"].items())
        lines.append(Text.assemble(("utilities ", "bold"), utilities))
    nash = outcome.get("nash")
    if nash:
        lines.append(Text.assemble(("Nash point ", "bold"), json.dumps(nash.get("offer"))))
    return Group(*lines)


def run_summary(record: dict[str, Any]) -> RenderableType:
    """A run's record for people: status, times, usage and energy, each task (agent, attempts, error), outputs."""
    kind = record.get("kind") or "graph"
    header = Text.assemble(
        (record.get("name") or "run", "bold"), "  ", record["id"], "  ", _status(record["status"]), f"  ({kind})"
    )
    times = Text(
        f"created {_when(record.get('created_at'))}"
        + (f", finished {_when(record['finished_at'])}" if record.get("finished_at") else "")
        + (f", took {_seconds(record['created_at'], record['finished_at'])}" if record.get("finished_at") else ""),
        style="dim",
    )
    parts: list[RenderableType] = [header, times]
    if record.get("error"):
        parts.append(Text.assemble(("error: ", "bold red"), record["error"]))
    parts += [Text(""), _usage_table(record.get("usage"), record.get("attempts", []))]
    output = record.get("output")
    if kind == "negotiation" and isinstance(output, dict) and "outcome" in output:
        parts += [Text(""), _negotiation_view(output)]
    if record.get("tasks"):
        done = sum(t["status"] in ("succeeded", "failed", "skipped", "cancelled") for t in record["tasks"])
        parts += [Text(""), Text(f"tasks {done}/{len(record['tasks'])} ended", style="bold"), _tasks_table(record)]
    parts += [Text(""), Text("outputs", style="bold underline"), outputs_view(record)]
    return Group(*parts)


class RunProgress:
    """A run followed through its events: tasks done of total, attempts running now, tokens so far."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.total = 0
        self.done = 0
        self.failed = 0
        self.tokens = 0
        self.status = "unknown"
        self.running: dict[str, str] = {}  # attempt id -> "task on agent (attempt n)"
        self.last = ""

    def update(self, event: dict[str, Any]) -> None:
        """Take one event (``seq``, ``kind``, ``task_id``, ``data``) into account."""
        kind, data = event["kind"], event.get("data") or {}
        if kind in ("run.created", "run.resumed"):
            self.total = data.get("tasks", self.total) or self.total
            self.status = "running" if kind == "run.resumed" else "pending"
        elif kind == "run.started":
            self.status = "running"
        elif kind == "attempt.started":
            where = (
                f"{event.get('task_id')} on {data.get('agent') or data.get('agent_id')} (attempt {data.get('number')})"
            )
            self.running[str(data.get("attempt_id"))] = where
        elif kind.startswith("attempt."):
            self.running.pop(str(data.get("attempt_id")), None)
            self.tokens += int(data.get("tokens") or 0)
        if kind in _TASK_END_KINDS:
            self.done += 1
            self.failed += kind != "task.succeeded"
        if kind in _END_KINDS:
            self.status = kind.removeprefix("run.")
            self.running.clear()
        self.last = kind

    def line(self, event: dict[str, Any]) -> str:
        """One plain line for ``event`` (for output that is not a terminal), with the done/total counter."""
        data = event.get("data") or {}
        detail = data.get("agent") or data.get("error") or ""
        progress = f"[{self.done}/{self.total}]" if self.total else f"[{self.done}]"
        task = event.get("task_id") or ""
        return f"{event['seq']:>5} {progress:<11} {event['kind']:<18} {task:<16} {_short(str(detail))}"

    def __rich__(self) -> RenderableType:
        bar = ProgressBar(total=max(self.total, 1), completed=self.done, width=40)
        head = Table.grid(padding=(0, 1))
        head.add_row(
            Text(f"run {self.run_id}", style="bold"),
            bar,
            Text(f"{self.done}/{self.total or '?'} tasks"),
            Text(f"{self.failed} failed", style="red" if self.failed else "dim"),
            Text(f"{self.tokens} tokens"),
            _status(self.status),
        )
        if not self.running:
            return head
        now = Table(box=None, show_header=False, pad_edge=False)
        now.add_column("running now")
        for where in list(self.running.values())[:10]:
            now.add_row(Text("  running " + where, style="blue"))
        if len(self.running) > 10:
            now.add_row(Text(f"  … and {len(self.running) - 10} more", style="dim"))
        return Group(head, now)


async def watch_run(events: AsyncIterator[dict[str, Any]], run_id: str, console: Console) -> RunProgress:
    """Show a run's progress from ``events`` until they end: a live panel on a terminal, else one line per
    event; the final state."""
    progress = RunProgress(run_id)
    if console.is_terminal:
        with Live(progress, console=console, refresh_per_second=8, transient=False) as live:
            async for event in events:
                progress.update(event)
                live.refresh()
    else:
        async for event in events:
            progress.update(event)
            console.print(progress.line(event), markup=False, highlight=False)
    return progress


@contextmanager
def progress_bar(description: str, total: int | None, console: Console | None = None) -> Iterator[Any]:
    """The CLI's progress bar for long work (scenarios, benchmarks, bulk registration): yields an ``advance(n=1)``
    callable. Off a terminal it prints nothing until the end, then one line."""
    console = console or terminal(sys.stderr)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    with bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance
    if not console.is_terminal:
        done = int(bar.tasks[0].completed)
        console.print(f"{description}: {done}{'/' + str(total) if total else ''} done", markup=False, highlight=False)
