"""Console tests reuse the orchestrator tests' fixtures: a registry on a temporary SQLite file, local agents."""

from tests.orchestrator.conftest import _own_stdio_allowlist, db_url, local_platform

__all__ = ["_own_stdio_allowlist", "db_url", "local_platform"]
