"""Utilities beyond linear additive: outcome tables over categorical issues, generalised additive utilities
(piecewise, table, box terms), their wire form, the guardrail, and Pareto/Nash analytics on them."""

from __future__ import annotations

import random

import anyio
import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from agents.negotiators import (
    AdditivePreferences,
    AdditiveUtility,
    AnyPreferences,
    Box,
    LinearUtility,
    LinearValue,
    Negotiator,
    PiecewiseValue,
    Preferences,
    TableEntry,
    TablePreferences,
    TableUtility,
    TableValue,
    Utility,
    get_strategy,
    negotiator_agent,
    outcome_space,
    utility_for,
)
from agents.negotiators.guided import enforce
from orchestrator.negotiation import alternating_offers, analyse, pareto_frontier, serve_parties
from orchestrator.negotiation.spec import NegotiationSpec
from protocol.negotiation import Action, Issue, Offer, OfferRecord, RespondRequest, Response

COLOUR = Issue.categorical("colour", ["red", "green", "blue"])
SIZE = Issue(name="size", values=[1.0, 2.0, 3.0])
PRICE = Issue(name="price", values=[80.0, 90.0, 100.0, 110.0, 120.0])
QUANTITY = Issue(name="quantity", values=[100.0, 105.0, 110.0])
ANY = TypeAdapter(AnyPreferences)


def offer(**values: float) -> Offer:
    return Offer(values=values)


def table_prefs(**overrides: object) -> TablePreferences:
    entries = [
        TableEntry(outcome={"colour": "red", "size": 1}, value=10),
        TableEntry(outcome={"colour": "blue", "size": 3}, value=2),
        TableEntry(outcome={"colour": 1, "size": 2}, value=6),  # green, by its index
    ]
    return TablePreferences(**{"entries": entries, "default": 4, **overrides})  # type: ignore[arg-type]


# --- categorical issues on the wire ---


def test_categorical_issue_labels_and_backward_compatible_numeric_issues() -> None:
    assert COLOUR.values == [0.0, 1.0, 2.0] and COLOUR.label_of(2.0) == "blue" and COLOUR.value_of("green") == 1.0
    assert COLOUR.value_of(2) == 2.0 and SIZE.label_of(3.0) == "3" and SIZE.value_of("2") == 2.0
    assert COLOUR.wire()["labels"] == ["red", "green", "blue"]
    assert SIZE.wire() == {"name": "size", "values": [1.0, 2.0, 3.0], "unit": ""}  # no labels key: as before
    assert SIZE.model_dump() == {"name": "size", "values": [1.0, 2.0, 3.0], "unit": ""}
    with pytest.raises(ValueError, match="one label per value"):
        Issue(name="c", values=[0, 1, 2], labels=["a", "b"])
    with pytest.raises(ValueError, match="labels must be distinct"):
        Issue(name="c", values=[0, 1], labels=["a", "a"])
    with pytest.raises(ValueError, match="has no value 'purple'"):
        COLOUR.value_of("purple")


# --- outcome tables ---


def test_table_utility_values_and_normalisation_by_hand() -> None:
    u = TableUtility(table_prefs(), [COLOUR, SIZE])
    # values 10, 6, 2 and the default 4 for the six outcomes not listed: 2 -> 0, 10 -> 1
    assert u(offer(colour=0, size=1)) == pytest.approx(1.0)
    assert u(offer(colour=1, size=2)) == pytest.approx(0.5)
    assert u(offer(colour=2, size=3)) == pytest.approx(0.0)
    assert u(offer(colour=2, size=1)) == pytest.approx(0.25)  # not listed: the default
    space = outcome_space([COLOUR, SIZE])
    scores = u.scores(space.points)
    assert scores.min() == pytest.approx(0.0) and scores.max() == pytest.approx(1.0)
    raw = TableUtility(
        table_prefs(entries=[TableEntry(outcome={"colour": "red"}, value=0.8)], default=0, normalise=False),
        [COLOUR, SIZE],
    )
    assert raw(offer(colour=0, size=3)) == pytest.approx(0.8) and raw(offer(colour=1, size=3)) == 0.0  # size ignored
    assert any("colour=red, size=1" in line for line in u.describe())


def test_table_limits_and_reservation() -> None:
    u = TableUtility(table_prefs(reservation=0.3, limits={"size": (1.0, 2.0)}), [COLOUR, SIZE])
    assert u(offer(colour=2, size=3)) == -1.0  # outside the hard limit
    assert u.acceptable(offer(colour=1, size=2)) and not u.acceptable(offer(colour=2, size=1))  # 0.5 / 0.25


def test_table_validation_says_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="every entry must name the same issues"):
        TablePreferences(
            entries=[TableEntry(outcome={"colour": "red"}, value=1), TableEntry(outcome={"size": 1}, value=0)]
        )
    with pytest.raises(ValidationError, match="must lie in \\[0, 1\\]"):
        TablePreferences(entries=[TableEntry(outcome={"colour": "red"}, value=3)], normalise=False)
    with pytest.raises(ValueError, match="has no value 'purple'"):
        TableUtility(
            table_prefs(entries=[TableEntry(outcome={"colour": "purple", "size": 1}, value=1)]), [COLOUR, SIZE]
        )
    with pytest.raises(ValueError, match="lists one outcome twice \\(entries \\[0, 1\\]\\)"):
        entries = [TableEntry(outcome={"colour": "red"}, value=1), TableEntry(outcome={"colour": 0}, value=0)]
        TableUtility(table_prefs(entries=entries), [COLOUR, SIZE])
    with pytest.raises(ValueError, match="does not have"):
        TableUtility(table_prefs(entries=[TableEntry(outcome={"shape": 1}, value=1)]), [COLOUR, SIZE])
    with pytest.raises(ValueError, match="same value"):
        TableUtility(table_prefs(entries=[TableEntry(outcome={"colour": "red"}, value=4)]), [COLOUR, SIZE])


# --- generalised additive ---


def test_additive_with_linear_functions_equals_the_linear_utility() -> None:
    linear = Preferences(weights={"price": 3, "quantity": 1}, increasing={"price": False}, reservation=0.2)
    additive = AdditivePreferences(
        weights={"price": 3, "quantity": 1}, functions={"price": LinearValue(increasing=False)}, reservation=0.2
    )
    space = outcome_space([PRICE, QUANTITY])
    expected = LinearUtility(linear, [PRICE, QUANTITY]).scores(space.points)
    assert np.allclose(AdditiveUtility(additive, [PRICE, QUANTITY]).scores(space.points), expected)


def test_piecewise_table_and_box_terms_by_hand() -> None:
    prefs = AdditivePreferences(
        weights={"colour": 1, "size": 1},
        functions={
            "colour": TableValue(values={"red": 1.0, "blue": 0.5}),  # green: the default 0
            "size": PiecewiseValue(points=[(1, 0), (2, 1), (3, 0)]),
        },
        boxes=[Box(bounds={"colour": (0, 0), "size": (3, 3)}, bonus=0.5, label="red in size 3")],
    )
    u = AdditiveUtility(prefs, [COLOUR, SIZE])
    # 0.5 * colour + 0.5 * size + 0.5 [red and size 3]; raw values span [0, 1] on this grid
    assert u(offer(colour=0, size=2)) == pytest.approx(1.0)
    assert u(offer(colour=0, size=3)) == pytest.approx(1.0)  # 0.5 + 0 + 0.5
    assert u(offer(colour=2, size=2)) == pytest.approx(0.75)
    assert u(offer(colour=1, size=1)) == pytest.approx(0.0)
    described = "\n".join(u.describe())
    assert "worth 1.00 for red" in described and "bonus 0.50 when colour in [0, 0] and size in [3, 3]" in described


def test_penalty_box_normalises_over_the_grid() -> None:
    # a capacity step: above 105 units at a price under 100 costs 0.4
    prefs = AdditivePreferences(
        weights={"price": 0.7, "quantity": 0.3},
        boxes=[Box(bounds={"quantity": (106, 110), "price": (0, 99)}, bonus=-0.4)],
        reservation=0.25,
    )
    u = AdditiveUtility(prefs, [PRICE, QUANTITY])
    scores = u.scores(outcome_space([PRICE, QUANTITY]).points)
    assert scores.min() == pytest.approx(0.0) and scores.max() == pytest.approx(1.0)
    # raw: 0.7 * 0.25 + 0.3 * 1 - 0.4 = 0.075 for (90, 110); the range is [-0.1, 1]
    assert u(offer(price=90, quantity=110)) == pytest.approx((0.075 + 0.1) / 1.1)
    assert u(offer(price=90, quantity=105)) == pytest.approx((0.175 + 0.15 + 0.1) / 1.1)


def test_additive_validation_says_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="strictly increasing x"):
        PiecewiseValue(points=[(2, 0), (1, 1)])
    with pytest.raises(ValidationError, match="min 3 is above max 1"):
        Box(bounds={"size": (3, 1)}, bonus=0.1)
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        Box(bounds={"size": (1, 2)}, bonus=2)
    with pytest.raises(ValidationError, match="non-negative"):
        AdditivePreferences(weights={"size": -1})
    with pytest.raises(ValidationError, match="at most 65 items"):
        PiecewiseValue(points=[(float(x), 0.0) for x in range(70)])
    with pytest.raises(ValueError, match="box 0 bounds issues \\['shape'\\]"):
        AdditiveUtility(
            AdditivePreferences(weights={"size": 1}, boxes=[Box(bounds={"shape": (0, 1)}, bonus=0.1)]), [SIZE]
        )
    with pytest.raises(ValueError, match="value table of 'colour'"):
        prefs = AdditivePreferences(weights={"colour": 1}, functions={"colour": TableValue(values={"pink": 1})})
        AdditiveUtility(prefs, [COLOUR, SIZE])
    with pytest.raises(ValueError, match="the same"):
        AdditiveUtility(
            AdditivePreferences(weights={"size": 1}, functions={"size": TableValue(values={"1": 0})}), [SIZE]
        )


# --- on the wire and in specs ---


def test_any_preferences_by_kind_with_linear_the_default() -> None:
    assert isinstance(ANY.validate_python({"weights": {"price": 1}}), Preferences)
    assert isinstance(ANY.validate_python({"kind": "linear", "weights": {"price": 1}}), Preferences)
    table = ANY.validate_python({"kind": "table", "entries": [{"outcome": {"colour": "red"}, "value": 1}]})
    assert isinstance(table, TablePreferences)
    additive = {
        "kind": "additive",
        "weights": {"size": 1},
        "functions": {"size": {"kind": "piecewise", "points": [[1, 0], [3, 1]]}},
    }
    parsed = ANY.validate_python(additive)
    assert isinstance(parsed, AdditivePreferences) and ANY.validate_json(ANY.dump_json(parsed)) == parsed
    with pytest.raises(ValidationError, match="'kind' must be 'linear' \\(the default\\), 'table' or 'additive'"):
        ANY.validate_python({"kind": "neural", "weights": {"price": 1}})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ANY.validate_python({"kind": "table", "entires": []})


def spec(buyer: dict[str, object], seller: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "protocol": "alternating",
        "parties": [
            {"agent_id": "b", "role": "buyer", "preferences": buyer},
            {"agent_id": "s", "role": "seller", "preferences": seller or {"weights": {"size": 1}}},
        ],
        "issues": [COLOUR.wire(), SIZE.wire()],
    }


def test_negotiation_spec_takes_any_preferences_and_checks_them_against_the_issues() -> None:
    table = {"kind": "table", "entries": [{"outcome": {"colour": "red", "size": 2}, "value": 1}]}
    parsed = NegotiationSpec.model_validate(spec(table))
    assert isinstance(parsed.parties[0].preferences, TablePreferences) and parsed.issues[0].labels == COLOUR.labels
    assert isinstance(parsed.parties[1].preferences, Preferences)  # old JSON, no kind: linear
    wrong = {"kind": "table", "entries": [{"outcome": {"colour": "purple", "size": 2}, "value": 1}]}
    with pytest.raises(ValidationError, match="parties\\[0\\].preferences do not fit the issues: .*'purple'"):
        NegotiationSpec.model_validate(spec(wrong))
    off = {"kind": "additive", "weights": {"size": 1}, "boxes": [{"bounds": {"weight": [0, 1]}, "bonus": 0.1}]}
    with pytest.raises(ValidationError, match="parties\\[1\\].preferences do not fit the issues"):
        NegotiationSpec.model_validate(spec({"weights": {"size": 1}}, off))
    too_big = {"kind": "table", "entries": [{"outcome": {"size": 1}, "value": 0}] * 100_001}
    with pytest.raises(ValidationError, match="at most 100000 items"):
        ANY.validate_python(too_big)


# --- the guardrail holds for any utility ---


ISSUES = [COLOUR, SIZE, PRICE]


def non_linear_preferences() -> tuple[TablePreferences, AdditivePreferences]:
    """A buyer's outcome table and a seller's additive preferences (piecewise price, penalty box, a price floor)."""
    table = TablePreferences(
        entries=[
            TableEntry(outcome={"colour": c, "size": s, "price": p}, value=(120 - p) / 10 + (c * 7 + s * 3) % 5)
            for c in range(3)
            for s in (1, 2, 3)
            for p in PRICE.values
        ],
        reservation=0.4,
    )
    additive = AdditivePreferences(
        weights={"colour": 0.3, "size": 0.2, "price": 0.5},
        functions={
            "colour": TableValue(values={"blue": 1, "red": 0.4}),
            "price": PiecewiseValue(points=[(80, 0), (95, 0.8), (120, 1)]),
        },
        boxes=[Box(bounds={"size": (3, 3), "price": (80, 95)}, bonus=-0.5)],
        reservation=0.35,
        limits={"price": (85.0, 120.0)},
    )
    return table, additive


def non_linear_utilities() -> list[Utility]:
    return [utility_for(prefs, ISSUES) for prefs in non_linear_preferences()]


@pytest.mark.parametrize("name", ["boulware", "linear", "conceder", "tit_for_tat"])
def test_no_strategy_accepts_or_offers_below_reservation_on_non_linear_utilities(name: str) -> None:
    space, strategy, rng = outcome_space(ISSUES), get_strategy(name), random.Random(5)
    for u in non_linear_utilities():
        for _ in range(150):
            standing = space.offer(rng.randrange(len(space.points)))
            req = RespondRequest(
                negotiation_id="n",
                me="me",
                opponent="them",
                issues=ISSUES,
                round=2,
                max_rounds=5,
                time=rng.choice([0.0, 0.5, 0.9, 1.0]),
                history=[OfferRecord(sender="them", round=1, offer=standing)],
            )
            move = strategy.respond(req, u, space)
            if move.action is Action.ACCEPT:
                assert u(standing) >= u.reservation
            if move.offer is not None:
                assert u(move.offer) >= u.reservation
            forced = enforce(Response(action=Action.ACCEPT, source="model"), req, u, space, strategy)
            if forced.action is Action.ACCEPT:
                assert u.acceptable(standing)
            else:
                assert not u.acceptable(standing) and forced.source == "guardrail"


@pytest.mark.anyio
async def test_table_and_additive_negotiators_agree_above_their_reservations() -> None:
    table, additive = non_linear_preferences()
    agents = [
        negotiator_agent("buyer", Negotiator(table, "conceder")),
        negotiator_agent("seller", Negotiator(additive, "linear")),
    ]
    buyer_u, seller_u = non_linear_utilities()
    with anyio.fail_after(30):
        async with serve_parties(agents) as p:
            outcome = await alternating_offers(
                p["buyer"], p["seller"], ISSUES, max_rounds=10, utilities=(buyer_u, seller_u)
            )
    assert outcome.agreement is not None, outcome.reason
    assert outcome.utilities["buyer"] >= 0.4 and outcome.utilities["seller"] >= 0.35
    assert outcome.pareto_distance is not None and outcome.nash_distance is not None


# --- analytics on non-linear utilities ---


def _brute_force(
    ua: np.ndarray, ub: np.ndarray, reservations: tuple[float, float]
) -> tuple[set[tuple[float, float]], float]:
    pairs = {(float(a), float(b)) for a, b in zip(ua, ub, strict=True) if a >= 0 and b >= 0}
    frontier = {p for p in pairs if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in pairs)}
    ra, rb = reservations
    best = max(((a - ra) * (b - rb) for a, b in pairs if a >= ra and b >= rb), default=-1.0)
    return frontier, best


def test_pareto_and_nash_on_non_linear_utilities_match_brute_force() -> None:
    a, b = non_linear_utilities()
    space = outcome_space(ISSUES)
    frontier, best = _brute_force(a.scores(space.points), b.scores(space.points), (a.reservation, b.reservation))
    assert len(frontier) >= 3, "a frontier worth testing"
    for row in range(0, len(space.points), 7):
        agreement = space.offer(row)
        result = analyse(agreement, ISSUES, a, b)
        assert {tuple(p) for p in result.frontier} == frontier
        assert result.nash is not None
        assert (result.nash[0] - a.reservation) * (result.nash[1] - b.reservation) == pytest.approx(best)
        here = np.array([a(agreement), b(agreement)])
        assert result.pareto_distance == pytest.approx(min(np.hypot(*(np.array(p) - here)) for p in frontier))
        assert result.nash_distance == pytest.approx(float(np.hypot(*(np.array(result.nash) - here))))
        assert result.nash_offer is not None and (a(result.nash_offer), b(result.nash_offer)) == result.nash


def test_vectorised_pareto_frontier_matches_brute_force_with_ties() -> None:
    rng = np.random.default_rng(4)
    points = rng.integers(0, 12, size=(400, 2)).astype(float) / 11
    frontier, _ = _brute_force(points[:, 0], points[:, 1], (0.0, 0.0))
    result = pareto_frontier(points)
    assert [tuple(p) for p in result] == sorted(frontier, reverse=True)


def test_a_million_point_space_is_sampled_and_analysed() -> None:
    issues = [Issue(name=f"i{k}", values=[float(v) for v in range(32)]) for k in range(4)]  # 32^4 = 1,048,576
    a = AdditiveUtility(
        AdditivePreferences(
            weights={"i0": 1, "i1": 1, "i2": 1, "i3": 1},
            functions={"i0": PiecewiseValue(points=[(0, 0), (16, 1), (31, 0.5)])},
            boxes=[Box(bounds={"i1": (20, 31), "i2": (20, 31)}, bonus=-0.3)],
            reservation=0.2,
        ),
        issues,
    )
    entries = [TableEntry(outcome={"i0": v, "i3": w}, value=(v * w) % 17) for v in range(32) for w in range(32)]
    b = TableUtility(TablePreferences(entries=entries, reservation=0.1), issues)
    space = outcome_space(issues)
    assert not space.complete and len(space.points) <= 20_002
    result = analyse(Offer(values={"i0": 16, "i1": 0, "i2": 0, "i3": 16}), issues, a, b)
    assert not result.complete and result.frontier and result.nash is not None
    assert result.pareto_distance is not None and result.pareto_distance >= 0.0
    assert analyse(None, issues, a, b).frontier == result.frontier  # the same sample every time


def test_a_table_compiles_once_per_grid_and_copies_share_it() -> None:
    prefs = table_prefs()
    first = TableUtility(prefs, [COLOUR, SIZE])
    assert len(prefs._compiled) == 1
    copy = Negotiator(prefs, capacity=10).preferences_for("any")  # a copy with a quantity limit, every move
    assert copy is not None and copy._compiled is prefs._compiled  # type: ignore[union-attr]
    again = TableUtility(copy, [COLOUR, SIZE])  # type: ignore[arg-type]
    space = outcome_space([COLOUR, SIZE])
    assert np.array_equal(first.scores(space.points), again.scores(space.points))
    other = TableUtility(prefs, [COLOUR, Issue(name="size", values=[1.0, 2.0, 3.0, 4.0])])
    assert len(prefs._compiled) == 2 and other(offer(colour=0, size=4)) == pytest.approx(0.25)
