"""Shared fixtures: anyio on asyncio. In CI (SCALEOUT_REQUIRE_PG / _MODEL / _NETNS set) a skipped ``postgres``,
``model``, ``netns`` or ``browser`` test is a failure, so those tests cannot silently stop running."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

_REQUIRED = {
    "postgres": "SCALEOUT_REQUIRE_PG",
    "model": "SCALEOUT_REQUIRE_MODEL",
    "netns": "SCALEOUT_REQUIRE_NETNS",
    "browser": "SCALEOUT_REQUIRE_BROWSER",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def scaleout_home(tmp_path_factory: pytest.TempPathFactory) -> Generator[str, None, None]:
    """A data directory of the test session's own: no test reads or writes the user's default database."""
    with pytest.MonkeyPatch.context() as patch:
        home = str(tmp_path_factory.mktemp("scaleout-home"))
        patch.setenv("SCALEOUT_HOME", home)
        yield home


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if not report.skipped:
        return
    for marker, variable in _REQUIRED.items():
        if item.get_closest_marker(marker) and os.environ.get(variable):
            report.outcome = "failed"
            report.longrepr = f"{marker} test skipped but {variable} is set: {report.longrepr}"
