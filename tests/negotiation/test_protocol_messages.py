"""Negotiation wire types: validation at the boundary, camelCase on the wire, offers checked against the grid."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from protocol.negotiation import (
    Action,
    AuctionCall,
    CallForProposals,
    Issue,
    Offer,
    OfferRecord,
    RespondRequest,
    Response,
    validate_offer,
)


def test_issue_values_must_increase() -> None:
    with pytest.raises(ValidationError, match="strictly increasing"):
        Issue(name="price", values=[3.0, 1.0])
    with pytest.raises(ValidationError):
        Issue(name="Price!", values=[1.0, 2.0])


def test_validate_offer_names_and_grid(issues: list[Issue]) -> None:
    assert validate_offer(Offer(values={"price": 90, "quantity": 100, "day": 2}), issues) is None
    assert "exactly the issues" in (validate_offer(Offer(values={"price": 90}), issues) or "")
    assert "not one of the allowed" in (
        validate_offer(Offer(values={"price": 91, "quantity": 100, "day": 2}), issues) or ""
    )


def test_counter_needs_offer_and_wire_is_camel_case(issues: list[Issue]) -> None:
    with pytest.raises(ValidationError, match="counter move must carry an offer"):
        Response(action=Action.COUNTER)
    cfp = CallForProposals(cfp_id="c", buyer="b", item="motor", quantity=5, due_day=9, issues=issues, deadline_s=1)
    wire = cfp.wire()
    assert wire["cfpId"] == "c" and wire["dueDay"] == 9 and wire["deadlineS"] == 1
    assert CallForProposals.model_validate(wire) == cfp


def test_standing_offer_is_the_opponents_last(issues: list[Issue]) -> None:
    offer = Offer(values={"price": 90, "quantity": 100, "day": 2})
    req = RespondRequest(
        negotiation_id="n",
        me="a",
        opponent="b",
        issues=issues,
        round=1,
        max_rounds=3,
        time=0.2,
        history=[OfferRecord(sender="b", round=1, offer=offer)],
    )
    assert req.standing_offer == offer
    mine = req.model_copy(update={"history": [*req.history, OfferRecord(sender="a", round=1, offer=offer)]})
    assert mine.standing_offer is None


def test_auction_window_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="before earliest_day"):
        AuctionCall(
            auction_id="a",
            item="x",
            origin="o",
            destination="d",
            quantity=1,
            earliest_day=5,
            latest_day=4,
            deadline_s=1,
        )
