"""What `scaleout registry` prints for people: agent tables and one agent's details (``--json`` prints the models)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, TextIO

from protocol.timestamps import rfc3339
from registry.models import AgentRecord

__all__ = ["format_table", "agents_table", "agent_detail", "emit"]


def format_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Rows as a plain text table with aligned columns."""
    cells = [[str(h) for h in header]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [min(60, max(len(r[i]) for r in cells)) for i in range(len(header))]
    lines = ["  ".join(c[:w].ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def agents_table(records: Sequence[AgentRecord]) -> str:
    """One line per agent: name, id, version, status, skills, calls, median latency, URL."""
    rows = [
        (
            r.name,
            r.id[:8],
            r.version,
            r.status.value,
            ",".join(s.id for s in r.skills)[:40],
            r.stats.calls,
            "" if r.stats.latency_p50_ms is None else f"{r.stats.latency_p50_ms:.0f}",
            r.url,
        )
        for r in records
    ]
    if not rows:
        return "(no agents)"
    return format_table(rows, ["NAME", "ID", "VERSION", "STATUS", "SKILLS", "CALLS", "P50 MS", "URL"])


def _when(value: Any) -> str:
    return rfc3339(value) if value is not None else "-"


def agent_detail(r: AgentRecord) -> str:
    """Everything the registry knows about one agent, a line per field, then its skills."""
    lines = [
        f"{r.name}  ({r.id})",
        f"  version      {r.version}",
        f"  url          {r.url}  [{r.transport}]",
        f"  status       {r.status.value}  (last heartbeat {_when(r.last_heartbeat)}, failures "
        f"{r.consecutive_failures})",
        f"  registered   {_when(r.registered_at)}, updated {_when(r.updated_at)}",
        f"  description  {r.description}",
        f"  provider     {r.provider or '-'}",
        f"  model        {r.model.model_dump(exclude_none=True) if r.model else '-'}",
        f"  cost         {r.cost.per_call:g}/call, {r.cost.per_1k_tokens:g}/1k tokens",
        f"  stats        {r.stats.calls} calls, {r.stats.successes} ok, p50 {r.stats.latency_p50_ms} ms, "
        f"p95 {r.stats.latency_p95_ms} ms, {r.stats.tokens} tokens",
        f"  card         {_trust(r)}",
        "  skills",
    ]
    for s in r.skills:
        lines.append(f"    {s.id:<24} {s.description[:70]}" + (f"  [{', '.join(s.tags)}]" if s.tags else ""))
    return "\n".join(lines)


def _trust(r: AgentRecord) -> str:
    trust = r.trust
    if not trust.verified:
        return "unsigned or not verified" + (
            f" (key changed {_when(trust.key_changed_at)})" if trust.key_changed_at else ""
        )
    changed = f"; KEY CHANGED {_when(trust.key_changed_at)}, not accepted" if trust.key_changed_at else ""
    return f"signed, verified (key {trust.kid}, fingerprint {(trust.fingerprint or '')[:16]}){changed}"


def emit(args: argparse.Namespace, value: Any, text: str, out: TextIO) -> None:
    """``value`` as JSON with ``--json``, else ``text``."""
    if args.json:
        dumped = [v.model_dump(mode="json") for v in value] if isinstance(value, list) else value
        if hasattr(dumped, "model_dump"):
            dumped = dumped.model_dump(mode="json")
        out.write(json.dumps(dumped, indent=2) + "\n")
    else:
        out.write(text + "\n")
