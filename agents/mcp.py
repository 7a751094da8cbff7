"""MCP binding of agents: every skill is an MCP tool (server side), and a small client for MCP tools.

Serve over stdio with ``python -m agents.mcp package.module:attr`` (an Agent, a list of Agents, or a
zero-argument factory returning them).
"""

from __future__ import annotations

import argparse
import sys

import anyio

from agents.mcp_client import McpToolClient, McpToolError, ToolInfo
from agents.mcp_server import USAGE_META_KEY, McpHttpApp, mcp_http_app, mcp_server, run_stdio

__all__ = [
    "USAGE_META_KEY",
    "McpHttpApp",
    "McpToolClient",
    "McpToolError",
    "ToolInfo",
    "main",
    "mcp_http_app",
    "mcp_server",
    "run_stdio",
]


def main(argv: list[str] | None = None) -> int:
    """Serve ``module:attr`` over MCP stdio; returns the process exit status."""
    from agents.loading import load_agents

    parser = argparse.ArgumentParser(prog="python -m agents.mcp", description="Serve agents' skills as MCP tools")
    parser.add_argument("target", help="package.module:attr naming an Agent, a list of Agents, or a factory")
    parser.add_argument("--call-timeout", type=float, default=300.0, help="seconds one tool call may take")
    args = parser.parse_args(argv)
    try:
        agents = load_agents(args.target)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    anyio.run(lambda: run_stdio(agents, call_timeout_s=args.call_timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
