"""Which MCP stdio commands this host may start: a local allowlist file, never data from the network.

A stdio MCP target is a command line. Records that name one can only be added by a local command
(``scaleout registry add-stdio``), which also appends the command here; the orchestrator and the health sweep
start a command only when its exact argument list is in this file. One command per line, shell-quoted
(``shlex``); blank lines and ``#`` comments are ignored.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

__all__ = ["StdioAllowlist", "StdioNotAllowed", "default_allowlist_path", "STDIO_SCHEME"]

STDIO_SCHEME = "mcp+stdio:"


def default_allowlist_path() -> Path:
    """``$SCALEOUT_STDIO_ALLOWLIST``, else ``~/.config/scaleout/stdio-allowlist``."""
    configured = os.environ.get("SCALEOUT_STDIO_ALLOWLIST")
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CONFIG_HOME", "~/.config")).expanduser() / "scaleout" / "stdio-allowlist"


class StdioNotAllowed(PermissionError):
    """A stdio command that this host's allowlist does not name."""


class StdioAllowlist:
    """The exact command lines (argument lists) this host may start as MCP stdio servers."""

    def __init__(self, commands: Sequence[Sequence[str]] = (), path: Path | None = None) -> None:
        self.path = path
        self._commands = {tuple(c) for c in commands if c}

    @classmethod
    def load(cls, path: str | Path | None = None) -> StdioAllowlist:
        """Read the allowlist at ``path`` (default: ``default_allowlist_path()``); a missing file allows nothing."""
        where = Path(path).expanduser() if path is not None else default_allowlist_path()
        commands: list[list[str]] = []
        if where.is_file():
            for number, line in enumerate(where.read_text(encoding="utf-8").splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    commands.append(shlex.split(line))
                except ValueError as exc:
                    raise ValueError(f"{where}:{number}: cannot read this command line: {exc}") from None
        return cls(commands, where)

    @staticmethod
    def argv(url_or_argv: str | Sequence[str]) -> list[str]:
        """The argument list of ``mcp+stdio:command args`` (or of an argument list)."""
        if isinstance(url_or_argv, str):
            return shlex.split(url_or_argv.removeprefix(STDIO_SCHEME))
        return list(url_or_argv)

    def allows(self, url_or_argv: str | Sequence[str]) -> bool:
        return tuple(self.argv(url_or_argv)) in self._commands

    def check(self, url_or_argv: str | Sequence[str]) -> list[str]:
        """The argument list, or StdioNotAllowed saying which file to add it to."""
        argv = self.argv(url_or_argv)
        if tuple(argv) not in self._commands:
            where = self.path or default_allowlist_path()
            raise StdioNotAllowed(
                f"refused to start {shlex.join(argv)!r}: it is not in this host's stdio allowlist ({where}); "
                "add it on this host with 'scaleout registry add-stdio NAME -- COMMAND ARGS'"
            )
        return argv

    def add(self, argv: Sequence[str]) -> None:
        """Allow ``argv`` and append it to the file (created with owner-only permissions)."""
        if not argv:
            raise ValueError("a stdio command needs at least the program to run")
        if tuple(argv) in self._commands:
            return
        where = self.path or default_allowlist_path()
        where.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(shlex.join(argv) + "\n")
        self._commands.add(tuple(argv))
        self.path = where
