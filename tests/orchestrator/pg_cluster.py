"""A private PostgreSQL cluster for fault tests (Debian's postgresql-common tools, run as root or through
passwordless sudo, as .ci/start-postgres does).

``private_cluster()`` creates ``scaleout-fault-<random>`` on a free port, starts it, creates the role and
database ``scaleout`` as .ci/start-postgres does, and drops it (stopping it first) when the block ends, also
after a failure. In between a test may ``stop()`` it (``mode="immediate"``: a crash-like stop) and ``start()`` it
again. ``unavailable()`` says why no such cluster can be made here.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agents.testing import free_port

__all__ = ["PgCluster", "private_cluster", "unavailable"]

_TOOLS = ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster")
_ROLE, _PASSWORD, _DB = "scaleout", "scaleout", "scaleout"


def unavailable() -> str | None:
    """Why a private cluster cannot be made here (None when it can): the tools, the server or root is missing."""
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found: install postgresql (Debian postgresql-common)"
    if _version() is None:
        return "no PostgreSQL server under /usr/lib/postgresql"
    if os.geteuid() != 0 and not _sudo_works():
        return "pg_createcluster needs root or passwordless sudo (the test makes and drops a cluster of its own)"
    return None


def _sudo_works() -> bool:
    if shutil.which("sudo") is None:
        return False
    return subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=10, check=False).returncode == 0


def _version() -> str | None:
    found = sorted((p.parent.parent.name for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")), key=int)
    return found[-1] if found else None


def _run(*argv: str, timeout: float = 60.0) -> str:
    """Run a command as root; its stdout, or RuntimeError with its output."""
    as_root = list(argv) if os.geteuid() == 0 else ["sudo", "-n", *argv]
    done = subprocess.run(as_root, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    return done.stdout


@dataclass
class PgCluster:
    """One private cluster: its version, name, port, and the SQLAlchemy URL of its ``scaleout`` database."""

    version: str
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{_ROLE}:{_PASSWORD}@127.0.0.1:{self.port}/{_DB}"

    def _ctl(self, action: str, *options: str) -> None:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", *options, self.version, self.name, action)

    def start(self) -> None:
        """Start the server; returns once it accepts connections."""
        self._ctl("start")
        self._wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clients disconnected cleanly) or ``immediate`` (a crash: recovery at start)."""
        self._ctl("stop", "--mode", mode)

    def psql(self, sql: str) -> str:
        """Run ``sql`` as the postgres superuser over the local socket; the tuples-only output."""
        return _run("su", "postgres", "-c", f"psql -p {self.port} -v ON_ERROR_STOP=1 -qtA -c {_quote(sql)}")

    def _wait_ready(self) -> None:
        _run("su", "postgres", "-c", f"pg_isready -q -t 30 -h 127.0.0.1 -p {self.port}", timeout=40)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


@contextmanager
def private_cluster() -> Iterator[PgCluster]:
    """A started cluster with role and database ``scaleout`` (password ``scaleout``), dropped afterwards."""
    version = _version()
    if version is None:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql")
    cluster = PgCluster(version, f"scaleout-fault-{secrets.token_hex(4)}", free_port())
    _run("pg_createcluster", version, cluster.name, "--port", str(cluster.port), "--start-conf", "manual")
    try:
        cluster.start()
        cluster.psql(f"CREATE ROLE {_ROLE} LOGIN PASSWORD '{_PASSWORD}' CREATEDB")
        cluster.psql(f"CREATE DATABASE {_DB} OWNER {_ROLE}")
        yield cluster
    finally:
        _run("pg_dropcluster", "--stop", version, cluster.name)
