"""NegMAS both ways: a NegMAS negotiator served over A2A negotiates with a scaleout agent exactly as in-process, and
scaleout strategies play inside NegMAS mechanisms as they do in the orchestrator's alternating offers.

Needs the ``negotiation`` extra, which ``scripts/setup`` (and so CI) installs; these tests do not skip without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client
from negmas.outcomes import make_issue, make_os
from negmas.preferences import LinearAdditiveUtilityFunction, MappingUtilityFunction
from negmas.preferences.value_fun import AffineFun
from negmas.sao import AspirationNegotiator, SAOMechanism

from agents.mcp import mcp_server
from agents.negotiators import LinearUtility, Negotiator, Preferences, negotiator_agent
from agents.negotiators.negmas_bridge import (
    NegmasSessions,
    NegmasUtility,
    ScaleoutNegotiator,
    ScaleoutUfun,
    issue_map,
    negmas_agent,
    negmas_negotiator_class,
    negmas_outcome_space,
)
from orchestrator.negotiation import alternating_offers, serve_parties
from protocol.negotiation import Action, Issue, Outcome, RespondRequest, Response

ROOT = Path(__file__).resolve().parents[2]


async def _negotiate(
    transport: str, issues: list[Issue], buyer: Preferences, seller: Preferences, negmas_opens: bool
) -> Outcome:
    agents = [
        negotiator_agent("buyer", Negotiator(buyer, "boulware")),
        negmas_agent("supplier", "negmas.sao.AspirationNegotiator", seller),
    ]
    utilities = (LinearUtility(buyer, issues), LinearUtility(seller, issues))
    async with serve_parties(agents, transport) as parties:  # type: ignore[arg-type]
        if negmas_opens:
            first, second, utilities = parties["supplier"], parties["buyer"], utilities[::-1]
        else:
            first, second = parties["buyer"], parties["supplier"]
        return await alternating_offers(
            first, second, issues, max_rounds=20, negotiation_id="n-1", utilities=utilities, timeout_s=30
        )


@pytest.mark.anyio
@pytest.mark.parametrize("negmas_opens", [False, True])
async def test_negmas_agent_over_http_matches_in_process(
    issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences, negmas_opens: bool
) -> None:
    over_http = await _negotiate("http", issues, buyer_prefs, seller_prefs, negmas_opens)
    in_process = await _negotiate("local", issues, buyer_prefs, seller_prefs, negmas_opens)
    assert over_http.agreement is not None, over_http.reason
    assert over_http.agreement == in_process.agreement
    assert over_http.rounds == in_process.rounds
    assert over_http.history == in_process.history
    assert over_http.reason == in_process.reason
    assert over_http.utilities["supplier"] >= seller_prefs.reservation
    assert over_http.utilities["buyer"] >= buyer_prefs.reservation
    assert len(over_http.history) > 4  # a real exchange, not an opening accepted


@pytest.mark.anyio
async def test_the_negmas_agent_is_an_mcp_tool_too(issues: list[Issue], seller_prefs: Preferences) -> None:
    req = RespondRequest(negotiation_id="n-3", me="s", opponent="b", issues=issues, round=1, max_rounds=10, time=0.0)
    expected = NegmasSessions(AspirationNegotiator).move(req, LinearUtility(seller_prefs, issues))
    agent = negmas_agent("s", AspirationNegotiator, seller_prefs)
    with anyio.fail_after(30):
        async with Client(mcp_server(agent)) as client:
            result = await client.call_tool("respond", req.model_dump(mode="json", by_alias=True))
    assert not result.is_error, result.content
    move = Response.model_validate(result.structured_content)
    assert move.action is Action.COUNTER and move.offer == expected.offer


def test_a_session_replays_a_history_it_did_not_see(issues: list[Issue], seller_prefs: Preferences) -> None:
    """Another process served the earlier moves: a fresh session replays them and answers the same."""
    utility = LinearUtility(seller_prefs, issues)
    continuing = NegmasSessions(AspirationNegotiator)
    base = {"negotiation_id": "n-2", "me": "s", "opponent": "b", "issues": issues, "max_rounds": 10}
    history: list[dict[str, object]] = []
    opponent = [{"price": 80.0, "quantity": 100.0, "day": 1.0}, {"price": 90.0, "quantity": 100.0, "day": 1.0}]
    for rnd, offer in enumerate(opponent, 1):
        history.append({"sender": "b", "round": rnd, "offer": {"values": offer}})
        req = RespondRequest.model_validate({**base, "round": rnd, "time": rnd / 20, "history": history})
        move = continuing.move(req, utility)
        assert move.offer is not None
        history.append({"sender": "s", "round": rnd, "offer": move.offer.model_dump()})
    history.append({"sender": "b", "round": 3, "offer": {"values": opponent[1]}})
    req = RespondRequest.model_validate({**base, "round": 3, "time": 0.25, "history": history})
    assert NegmasSessions(AspirationNegotiator).move(req, utility) == continuing.move(req, utility)


@pytest.mark.parametrize(("a", "b"), [("boulware", "tit_for_tat"), ("linear", "conceder"), ("boulware", "boulware")])
def test_scaleout_strategies_in_negmas_agree_as_in_the_orchestrator(
    issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences, a: str, b: str
) -> None:
    """Same utilities, same rounds, same time: the NegMAS mechanism reaches the orchestrator's agreement."""
    mechanism = SAOMechanism(outcome_space=negmas_outcome_space(issues), n_steps=10)
    mechanism.add(ScaleoutNegotiator(strategy=a, name="buyer"), ufun=ScaleoutUfun(LinearUtility(buyer_prefs, issues)))
    mechanism.add(ScaleoutNegotiator(strategy=b, name="seller"), ufun=ScaleoutUfun(LinearUtility(seller_prefs, issues)))
    state = mechanism.run()

    async def orchestrated() -> Outcome:
        agents = [
            negotiator_agent("buyer", Negotiator(buyer_prefs, a)),
            negotiator_agent("seller", Negotiator(seller_prefs, b)),
        ]
        async with serve_parties(agents) as parties:
            return await alternating_offers(parties["buyer"], parties["seller"], issues, max_rounds=10)

    outcome = anyio.run(orchestrated)
    assert outcome.agreement is not None and state.agreement is not None
    assert dict(zip([i.name for i in issues], state.agreement, strict=True)) == outcome.agreement.values


def _linear_domain() -> tuple[object, LinearAdditiveUtilityFunction, LinearAdditiveUtilityFunction]:
    space = make_os([make_issue(values=list(range(6)), name="price"), make_issue(values=list(range(5)), name="day")])
    mine = LinearAdditiveUtilityFunction(
        values=[AffineFun(0.2, 0.0), AffineFun(-0.25, 1.0)], weights=[0.7, 0.3], outcome_space=space, reserved_value=0.3
    )
    theirs = LinearAdditiveUtilityFunction(
        values=[AffineFun(-0.2, 1.0), AffineFun(0.25, 0.0)], weights=[0.6, 0.4], outcome_space=space, reserved_value=0.2
    )
    return space, mine, theirs


@pytest.mark.parametrize("strategy", ["boulware", "tit_for_tat"])
def test_a_scaleout_negotiator_agrees_above_its_reservation_against_a_negmas_builtin(strategy: str) -> None:
    space, mine, theirs = _linear_domain()
    agreements = []
    for _ in range(2):  # deterministic: the same agreement twice
        mechanism = SAOMechanism(outcome_space=space, n_steps=40)
        mechanism.add(negmas_negotiator_class(strategy)(name="ours"), ufun=mine)
        mechanism.add(AspirationNegotiator(name="theirs"), ufun=theirs)
        state = mechanism.run()
        assert state.agreement is not None
        assert mine(state.agreement) >= mine.reserved_value
        agreements.append(state.agreement)
    assert agreements[0] == agreements[1]
    assert negmas_negotiator_class(strategy).__name__.startswith("Scaleout")


def test_the_opponent_ufun_anl_reveals_is_a_utility_too() -> None:
    space, mine, theirs = _linear_domain()
    ours = ScaleoutNegotiator(name="ours", private_info={"opponent_ufun": theirs})
    SAOMechanism(outcome_space=space, n_steps=40).add(ours, ufun=mine)
    revealed = ours.opponent_utility
    assert revealed is not None
    best = revealed.space.offer(int(revealed.scores(revealed.space.points).argmax()))
    assert revealed.map.to_outcome(best) == theirs.best()
    assert revealed(best) == pytest.approx(1.0)


def test_outcome_spaces_map_numeric_by_value_categorical_by_index() -> None:
    issues = [
        make_issue(values=[5, 1, 3], name="Unit Price"),
        make_issue(values=["red", "green"], name="colour"),
        make_issue(values=(0.0, 1.0), name="2share"),
        make_issue(values=[f"o{k}" for k in range(2500)], name="outcome"),
    ]
    imap = issue_map(issues, levels=5)
    assert [i.name for i in imap.issues] == ["unit_price", "colour", "i_2share", "outcome_hi", "outcome_lo"]
    assert imap.issues[0].values == [1.0, 3.0, 5.0]
    assert imap.issues[1].values == [0.0, 1.0] and imap.issues[1].labels == ["red", "green"]
    assert imap.issues[0].labels is None and imap.issues[3].labels is None
    assert imap.issues[2].values == [0.0, 0.25, 0.5, 0.75, 1.0]
    offer = imap.to_offer((3, "green", 0.3, "o2345"))
    assert offer.values == {"unit_price": 3.0, "colour": 1.0, "i_2share": 0.25, "outcome_hi": 2.0, "outcome_lo": 345.0}
    assert imap.to_outcome(offer) == (3, "green", 0.25, "o2345")


def test_a_non_linear_ufun_is_a_normalised_utility() -> None:
    space = make_os([make_issue(values=["a", "b", "c"], name="option"), make_issue(values=[1, 2], name="volume")])
    table = {o: float(i * i) for i, o in enumerate(space.enumerate())}  # 0, 1, 4, 9, 16, 25
    ufun = MappingUtilityFunction(table, outcome_space=space, reserved_value=5.0)
    utility = NegmasUtility(ufun, issue_map(space.issues))
    assert utility.reservation == pytest.approx(0.2)
    best = utility.space.offer(int(utility.scores(utility.space.points).argmax()))
    assert utility.map.to_outcome(best) == ("c", 2)
    assert utility(best) == pytest.approx(1.0)
    assert utility.acceptable(utility.map.to_offer(("b", 2))) and not utility.acceptable(utility.map.to_offer(("a", 2)))
    assert utility.zero == 0.0  # its raw values start at 0
    shifted = MappingUtilityFunction({o: 10.0 + u for o, u in table.items()}, outcome_space=space)
    assert NegmasUtility(shifted, issue_map(space.issues)).zero == pytest.approx(-0.4)  # a raw 0 scores (0 - 10) / 25


def test_without_the_extra_the_core_imports_and_the_bridge_names_it(tmp_path: Path) -> None:
    (tmp_path / "negmas").mkdir()
    (tmp_path / "negmas" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'negmas'\")\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    code = (
        "import agents.negotiators, orchestrator.negotiation\n"
        "try:\n    import agents.negotiators.negmas_bridge\nexcept ImportError as e:\n    print(e)"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pip install 'scaleout[negotiation]'" in result.stdout


def test_the_adaptive_strategy_agrees_with_reciprocal_negmas_agents_in_20_steps() -> None:
    """The league's 20-step linear scenarios (seeds 1-3), each side and each opening order: MiCRO concedes only for
    new offers and naive tit-for-tat only as much as we do, so holding the top until the last two rounds (and
    offering their best back when it could no longer be answered) failed most of these before."""
    from negmas.sao import MiCRONegotiator, NaiveTitForTatNegotiator

    from bench.league import linear_scenario

    adaptive = negmas_negotiator_class("adaptive")
    agreed: dict[str, int] = {"MiCRO": 0, "tit-for-tat": 0}
    for label, opponent in (("MiCRO", MiCRONegotiator), ("tit-for-tat", NaiveTitForTatNegotiator)):
        for seed in (1, 2, 3):
            scenario = linear_scenario(seed, 0)
            for mine, theirs in (scenario.ufuns, scenario.ufuns[::-1]):
                for we_open in (True, False):
                    mechanism = SAOMechanism(outcome_space=scenario.outcome_space, n_steps=20)
                    pair = [(adaptive(name="ours"), mine), (opponent(name="theirs"), theirs)]
                    for negotiator, ufun in pair if we_open else pair[::-1]:
                        mechanism.add(negotiator, ufun=ufun)
                    agreement = mechanism.run().agreement
                    if agreement is not None:
                        assert mine(agreement) >= mine.reserved_value
                        agreed[label] += 1
                    if seed == 1 and mine is scenario.ufuns[0] and label == "MiCRO":
                        # MiCRO's best offer is worth 0.59 to us (reservation 0.39): a deal whoever opens
                        assert agreement is not None, f"no deal with MiCRO (we open: {we_open})"
    # measured 8 and 11 of 12 (before: 2 and 5)
    assert agreed["MiCRO"] >= 7 and agreed["tit-for-tat"] >= 10, agreed
