"""Shared fixtures: anyio on asyncio, loopback servers, the real model (marked), PostgreSQL (marked)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
