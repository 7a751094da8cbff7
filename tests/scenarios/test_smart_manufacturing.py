"""The smart-manufacturing scenario end to end: rule brains in-process and over HTTP, determinism, outputs,
the command line, and one small run with the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.llm import Scripted
from scenarios.manufacturing_report import format_report
from scenarios.smart_manufacturing import ScenarioConfig, main, run


def small(**overrides: object) -> ScenarioConfig:
    return ScenarioConfig(**{"suppliers": 12, "distributors": 3, "brain": "rule", "seed": 11, **overrides})


def test_rule_run_is_complete_and_consistent() -> None:
    result = run(small())
    assert len(result.components) == 5 and len(result.contracts) == 5
    for contract in result.contracts:
        assert contract.buyer == "manufacturer"
        assert contract.terms.values["quantity"] >= next(
            c.quantity for c in result.components if c.component == contract.item
        )
    for n in result.negotiations:
        if n.outcome.agreement is not None:
            assert all(u >= 0.0 for u in n.outcome.utilities.values())
            assert n.outcome.pareto_distance is not None and n.outcome.pareto_distance >= 0
    shipped = [d for d in result.schedule if d.carrier is not None]
    assert len(shipped) == len(result.schedule) == 6
    for d in shipped:
        assert d.pickup_day is not None and d.arrival_day is not None and d.pickup_day <= d.arrival_day
    assert result.on_time and result.completion_day is not None and result.completion_day <= 20
    assert result.agents["manufacturer"].calls > 0 and sum(a.tokens for a in result.agents.values()) == 0
    text = format_report(result)
    assert "Contracts:" in text and "Delivery schedule" in text and "ON TIME" in text


def test_same_seed_same_result_and_http_matches_local() -> None:
    local = run(small()).stable()
    assert run(small()).stable() == local
    over_http = run(small(transport="http")).stable()
    over_http["config"]["transport"] = "local"
    assert over_http == local
    assert run(small(seed=12)).stable() != local


def test_outputs_and_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["--brain", "rule", "--suppliers", "10", "--distributors", "2", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "Smart manufacturing: 100 x pump" in printed
    data = json.loads((out / "result.json").read_text())
    assert data["config"]["suppliers"] == 10 and len(data["contracts"]) == len(data["components"])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not (out / "manufacturing.png").exists()
    else:
        assert (out / "manufacturing.png").stat().st_size > 10_000


def test_bad_options_are_explained() -> None:
    with pytest.raises(ValueError, match="at least that many suppliers"):
        ScenarioConfig(suppliers=3)
    with pytest.raises(ValueError, match="unknown strategy"):
        ScenarioConfig(strategy="greedy")
    with pytest.raises(SystemExit):
        main(["--suppliers", "0", "--quiet"])


@pytest.mark.parametrize("brain_mode", ["mixed", "llm"])
def test_guided_negotiators_with_a_scripted_brain(brain_mode: str) -> None:
    """The model always picks the last shortlisted offer; guardrails and accounting still hold."""
    brain = Scripted(
        [
            lambda req: {
                "offer": len(req.json_schema["properties"]["offer"]["enum"]) - 1,
                "reason": "closest to their ask",
            }
        ],
        cycle=True,
    )
    result = run(small(brain=brain_mode, llm_negotiations=2, rounds=4), brain=brain)
    guided = [n for n in result.negotiations if n.brain == "llm"]
    assert len(guided) == (2 if brain_mode == "mixed" else len(result.negotiations))
    assert sum(n.outcome.sources.get("model", 0) for n in guided) > 0
    assert result.agents["manufacturer-llm"].model_calls > 0 and result.agents["manufacturer-llm"].tokens > 0
    for n in guided:
        if n.outcome.agreement is not None:
            assert n.outcome.utilities["manufacturer-llm"] >= 0.25
    assert (
        run(
            small(brain=brain_mode, llm_negotiations=2, rounds=4),
            brain=Scripted(
                [lambda req: {"offer": len(req.json_schema["properties"]["offer"]["enum"]) - 1, "reason": "closest"}],
                cycle=True,
            ),
        ).contracts
        == result.contracts
    )


@pytest.mark.slow
def test_many_suppliers_with_rule_brains() -> None:
    result = run(small(suppliers=300, distributors=20))
    assert sum(c.asked for c in result.components) >= 300
    assert len(result.contracts) == 5


@pytest.mark.model
def test_mixed_run_with_the_real_model() -> None:
    # the README demo's defaults; seed 7 (the default, fixed here) gives shortlists the model is asked about
    # (greedy decoding: the same moves on every run of this build)
    result = run(ScenarioConfig(brain="mixed", llm_negotiations=2, seed=7))
    llm = [n for n in result.negotiations if n.brain == "llm"]
    assert len(llm) == 2
    model_moves = sum(n.outcome.sources.get("model", 0) for n in llm)
    assert model_moves > 0, [n.outcome.sources for n in llm]  # the model chose moves, not only fallbacks
    assert result.agents["manufacturer-llm"].model_calls >= model_moves
    assert result.agents["manufacturer-llm"].tokens > 0
    for n in llm:
        if n.outcome.agreement is not None:
            assert n.outcome.utilities["manufacturer-llm"] >= 0.25  # the buyer's reservation value


@pytest.mark.anyio
async def test_suppliers_are_discovered_in_the_registry_by_skill_and_component() -> None:
    from orchestrator.negotiation.transport import serve_parties
    from scenarios.manufacturing_world import build_world
    from scenarios.smart_manufacturing import _fleet_registry, _suppliers_of

    world = build_world(small(), None)
    async with serve_parties(world.agents, "local") as parties:
        with _fleet_registry(world, parties) as registry:
            for component, suppliers in world.suppliers_by_component.items():
                assert _suppliers_of(registry, component, 1000) == sorted(suppliers)
            assert _suppliers_of(registry, "unobtainium", 1000) == []
            record = registry.find("supplier-0000")
            assert record.url == "local://supplier-0000" and record.transport == "local"


def test_suppliers_with_capacity_steps_and_volume_discounts_report_pareto_and_nash() -> None:
    """Tight plants value overtime less (a capacity step), big ones give volume discounts; their negotiations
    are valued with those non-linear utilities, and the report gives Pareto/Nash distances per kind."""
    result = run(small())
    kinds = {n.seller_preferences for n in result.negotiations}
    assert {"capacity_step", "volume_discount"} <= kinds
    for n in result.negotiations:
        if n.outcome.agreement is not None:
            assert n.outcome.pareto_distance is not None and n.outcome.nash_distance is not None
            assert n.outcome.utilities[n.seller] >= 0.1  # above every supplier's reservation draw
    text = format_report(result)
    assert "Pareto and Nash distances by the supplier's preferences" in text
    assert "capacity step" in text and "mean nash" in text


def test_a_capacity_step_makes_overtime_worth_less_unless_the_price_covers_it() -> None:
    from agents.negotiators import Preferences, utility_for
    from protocol.negotiation import Offer
    from scenarios.manufacturing_world import component_issues, supplier_preferences

    linear = Preferences(weights={"unit_price": 0.6, "quantity": 0.2, "delivery_day": 0.2}, reservation=0.1)
    issues = component_issues("motor", 100, 20)  # quantities 100, 105, 110: a shift makes 105
    u = utility_for(supplier_preferences(linear, "capacity_step", "motor", 100.0, 100, 20), issues)

    def value(price: float, quantity: float) -> float:
        return u(Offer(values={"unit_price": price, "quantity": quantity, "delivery_day": 10, "late_penalty": 0}))

    assert value(120.0, 105) > value(120.0, 100) > value(120.0, 110)  # more volume is better up to the shift
    assert value(120.0, 105) - value(120.0, 110) > value(132.0, 105) - value(132.0, 110)  # overtime paid for
    assert utility_for(linear, issues).reservation == u.reservation
