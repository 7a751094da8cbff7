"""Fixtures for negotiation tests: a small issue grid, two opposed preference profiles, a transport switch."""

from __future__ import annotations

import pytest

from agents.negotiators import Preferences
from protocol.negotiation import Issue


@pytest.fixture
def issues() -> list[Issue]:
    return [
        Issue(name="price", values=[80.0, 90.0, 100.0, 110.0, 120.0]),
        Issue(name="quantity", values=[100.0, 110.0, 120.0]),
        Issue(name="day", values=[1.0, 2.0, 3.0, 4.0, 5.0]),
    ]


@pytest.fixture
def buyer_prefs() -> Preferences:
    return Preferences(
        weights={"price": 0.6, "quantity": 0.1, "day": 0.3},
        increasing={"price": False, "quantity": False, "day": False},
        reservation=0.3,
    )


@pytest.fixture
def seller_prefs() -> Preferences:
    return Preferences(weights={"price": 0.7, "quantity": 0.2, "day": 0.1}, reservation=0.3)


@pytest.fixture(params=["local", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)
