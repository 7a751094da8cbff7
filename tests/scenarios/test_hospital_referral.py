"""The hospital-referral example: the negotiation API in another domain, over both transports."""

from __future__ import annotations

import pytest

from agents.negotiators import LinearUtility
from protocol.negotiation import Offer
from scenarios.hospital_referral import GP_PREFERENCES, MRI_ISSUES, main, run


@pytest.mark.parametrize("transport", ["local", "http"])
def test_referral_books_a_scan_and_a_pharmacy(transport: str) -> None:
    result = run(seed=1, transport=transport)
    assert result.radiologist is not None and result.terms is not None
    assert result.terms["wait_days"] <= 10  # the GP's hard limit
    assert LinearUtility(GP_PREFERENCES, MRI_ISSUES)(Offer(values=result.terms)) >= GP_PREFERENCES.reservation
    assert result.pharmacist is not None and result.pickup_day == 1
    assert run(seed=1, transport=transport) == result


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seed", "2"]) == 0
    assert "MRI booked with radiologist-" in capsys.readouterr().out
