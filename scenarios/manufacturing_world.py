"""The smart-manufacturing world: configuration, bill of materials, seeded suppliers (linear preferences, or
capacity steps and volume discounts) and carriers."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from agents.agent import Agent
from agents.llm.base import Brain
from agents.negotiators import (
    AdditivePreferences,
    AnyPreferences,
    Box,
    Carrier,
    CarrierProfile,
    LinearValue,
    Negotiator,
    PiecewiseValue,
    Preferences,
    ValueFunction,
    carrier_agent,
    get_strategy,
    negotiator_agent,
)
from protocol.negotiation import Issue

__all__ = [
    "ScenarioConfig",
    "BOMS",
    "BASE_COST",
    "World",
    "build_world",
    "component_issues",
    "buyer_preferences",
    "latest_component_day",
    "supplier_preferences",
    "SupplierProfile",
    "SUPPLIER_PROFILES",
]

BOMS: dict[str, dict[str, int]] = {
    "pump": {"motor": 1, "housing": 1, "impeller": 1, "seal_kit": 2, "controller": 1},
    "gearbox": {"casing": 1, "gear_set": 1, "shaft": 2, "bearing": 4},
}
BASE_COST: dict[str, float] = {
    "motor": 120.0,
    "housing": 40.0,
    "impeller": 25.0,
    "seal_kit": 6.0,
    "controller": 60.0,
    "casing": 55.0,
    "gear_set": 90.0,
    "shaft": 18.0,
    "bearing": 4.0,
}
MANUFACTURER = "manufacturer"
MANUFACTURER_LLM = "manufacturer-llm"
ASSEMBLY_DAYS = 2
MAX_TRANSIT_DAYS = 3
SUPPLIER_STRATEGIES = ["boulware", "linear", "conceder", "tit_for_tat"]
SupplierProfile = Literal["linear", "capacity_step", "volume_discount"]
SUPPLIER_PROFILES: dict[int, SupplierProfile] = {
    2: "capacity_step",
    3: "capacity_step",
    4: "linear",
    6: "volume_discount",
}
"""A supplier's preference profile by its capacity (in multiples of the order): tight plants have a capacity step
(overtime), the largest give volume discounts, the others stay linear."""


class ScenarioConfig(BaseModel):
    """Options of the smart-manufacturing scenario (the same as its command-line flags)."""

    product: Literal["pump", "gearbox"] = "pump"
    quantity: int = Field(default=100, ge=1, le=100_000)
    due_day: int = Field(default=20, ge=8, le=365)
    suppliers: int = Field(default=10, ge=2, le=1_000)
    distributors: int = Field(default=4, ge=1, le=1_000)
    brain: Literal["llm", "rule", "mixed"] = "mixed"
    llm_negotiations: int = Field(default=2, ge=0, le=1_000, description="mixed: LLM-guided negotiations")
    bidders: int = Field(default=2, ge=1, le=20, description="best proposals negotiated per component")
    rounds: int = Field(default=5, ge=1, le=100)
    seed: int = 7
    transport: Literal["local", "http"] = "local"
    strategy: str = Field(default="linear", description="the manufacturer's strategy; suppliers draw theirs")
    out: Path | None = None
    progress: bool = False
    approve: Literal["auto", "ask", "reject"] = Field(
        default="auto",
        description="contracts above approval_threshold: approved (auto), asked on the terminal (ask) or refused",
    )
    approval_threshold: float = Field(
        default=10_000.0, ge=0, le=1e12, allow_inf_nan=False, description="EUR; above it the purchasing manager decides"
    )
    record_runs: str | None = Field(
        default=None,
        exclude=True,  # where runs are recorded is not part of the scenario's result
        description="database URL or SQLite path: record every negotiation as an orchestrator run there",
    )

    @model_validator(mode="after")
    def _enough_suppliers(self) -> ScenarioConfig:
        get_strategy(self.strategy)
        if self.suppliers < len(BOMS[self.product]):
            raise ValueError(
                f"{self.product} has {len(BOMS[self.product])} components; "
                f"give at least that many suppliers (got {self.suppliers})"
            )
        return self


def component_issues(component: str, quantity: int, due_day: int) -> list[Issue]:
    """The negotiable issues for a component order: unit price, quantity (with overage), day, late penalty."""
    base = BASE_COST[component]
    prices = sorted({round(base * f, 2) for f in (0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5)})
    quantities = sorted({float(round(quantity * f)) for f in (1.0, 1.05, 1.1)})
    last_day = due_day - ASSEMBLY_DAYS - 2
    return [
        Issue(name="unit_price", values=prices, unit="EUR"),
        Issue(name="quantity", values=quantities if len(quantities) > 1 else [quantity, quantity + 1.0]),
        Issue(name="delivery_day", values=[float(d) for d in range(2, last_day + 1)], unit="day"),
        Issue(name="late_penalty", values=[0.0, 1.0, 2.0, 5.0], unit="% per day"),
    ]


def latest_component_day(due_day: int) -> int:
    """The last day a component may leave its supplier: transit, assembly and the final delivery must fit."""
    return due_day - 2 * MAX_TRANSIT_DAYS - ASSEMBLY_DAYS


def buyer_preferences(due_day: int) -> Preferences:
    """The manufacturer: cheap, early, few extras, strong late penalties; components in time for assembly."""
    return Preferences(
        limits={"delivery_day": (0.0, float(latest_component_day(due_day)))},
        weights={"unit_price": 0.5, "quantity": 0.1, "delivery_day": 0.25, "late_penalty": 0.15},
        increasing={"unit_price": False, "quantity": False, "delivery_day": False, "late_penalty": True},
        reservation=0.25,
    )


def supplier_preferences(
    linear: Preferences, profile: SupplierProfile, component: str, cost: float, needed: int, due_day: int
) -> AnyPreferences:
    """A supplier's preferences for an order of ``needed`` units: ``linear`` as drawn, or the same weights, limits and
    reservation with what a plant really has. Both non-linear profiles value margin concavely (the first 20 % above
    cost matter most). ``capacity_step``: a shift makes up to the next-to-largest quantity; more needs overtime (the
    quantity's value drops) and is penalised unless the price is at least 30 % above cost. ``volume_discount``: a
    bigger batch at a thin margin (at most 15 % above cost) still pays (a bonus)."""
    if profile == "linear":
        return linear
    issues = component_issues(component, needed, due_day)
    prices, quantities = issues[0].values, issues[1].values
    margin = [(cost, 0.0), (round(cost * 1.2, 2), 0.7), (prices[-1], 1.0)]
    functions: dict[str, ValueFunction] = {
        "unit_price": PiecewiseValue(points=margin),
        "late_penalty": LinearValue(increasing=False),
    }
    if profile == "capacity_step":
        shift, top = quantities[-2], quantities[-1]
        functions["quantity"] = PiecewiseValue(points=[(0.0, 0.0), (shift, 1.0), (top, 0.2)])
        box = Box(
            bounds={"quantity": (shift + 0.5, top), "unit_price": (0.0, round(cost * 1.3, 2))},
            bonus=-0.3,
            label=f"overtime above {shift:g} units unless the price covers it",
        )
    else:
        batch = quantities[1]
        box = Box(
            bounds={"quantity": (batch, quantities[-1]), "unit_price": (cost, round(cost * 1.15, 2))},
            bonus=0.25,
            label=f"volume discount: {batch:g} units or more at a thin margin still pay",
        )
    return AdditivePreferences(
        weights=linear.weights,
        functions=functions,
        boxes=[box],
        reservation=linear.reservation,
        limits=linear.limits,
    )


class World(BaseModel):
    """Every agent of a run and who supplies what (discovery is a plain index by component)."""

    model_config = {"arbitrary_types_allowed": True}

    config: ScenarioConfig
    agents: list[Agent]
    suppliers_by_component: dict[str, list[str]]
    carriers: list[str]
    supplier_costs: dict[str, dict[str, float]]
    supplier_preferences: dict[str, dict[str, AnyPreferences]]
    supplier_profiles: dict[str, SupplierProfile]

    def agent(self, name: str) -> Agent:
        return next(a for a in self.agents if a.name == name)


def build_world(config: ScenarioConfig, brain: Brain | None) -> World:
    """Seeded suppliers (1-2 components each, costs, lead times, capacity) and carriers (trucks, prices)."""
    rng = random.Random(config.seed)
    components = list(BOMS[config.product])
    agents: list[Agent] = []
    by_component: dict[str, list[str]] = {c: [] for c in components}
    costs: dict[str, dict[str, float]] = {}
    prefs_of: dict[str, dict[str, AnyPreferences]] = {}
    profiles: dict[str, SupplierProfile] = {}
    suppliers_llm = config.brain == "llm"
    for i in range(config.suppliers):
        name = f"supplier-{i:04d}"
        mine = [components[i % len(components)]]
        if rng.random() < 0.4:
            extra = rng.choice(components)
            if extra not in mine:
                mine.append(extra)
        lead = rng.randint(2, 8)
        costs[name], prefs_of[name] = {}, {}
        for component in mine:
            cost = round(BASE_COST[component] * rng.uniform(0.75, 1.1), 2)
            w_price = rng.uniform(0.45, 0.7)
            w_day = rng.uniform(0.1, 0.25)
            prefs_of[name][component] = Preferences(
                weights={
                    "unit_price": w_price,
                    "quantity": 0.1,
                    "delivery_day": w_day,
                    "late_penalty": 1.0 - w_price - w_day - 0.1 + 0.05,
                },
                increasing={"unit_price": True, "quantity": True, "delivery_day": True, "late_penalty": False},
                reservation=round(rng.uniform(0.1, 0.25), 3),
                limits={"unit_price": (cost, float("inf")), "delivery_day": (float(lead), float("inf"))},
            )
            costs[name][component] = cost
            by_component[component].append(name)
        multiple = rng.choice([2, 3, 4, 6])
        capacity = config.quantity * multiple
        profiles[name] = SUPPLIER_PROFILES[multiple]
        for component in mine:
            needed = config.quantity * BOMS[config.product][component]
            linear = prefs_of[name][component]
            assert isinstance(linear, Preferences)
            cost = costs[name][component]
            prefs_of[name][component] = supplier_preferences(
                linear, profiles[name], component, cost, needed, config.due_day
            )
        strategy = rng.choice(SUPPLIER_STRATEGIES)
        negotiator = Negotiator(prefs_of[name], strategy, capacity=capacity, opening=rng.uniform(0.5, 0.8))
        agents.append(
            negotiator_agent(
                name,
                negotiator,
                brain=brain if suppliers_llm else None,
                guided=suppliers_llm,
                description=f"Supplier of {', '.join(mine)}",
                tags=["supplier", *mine],
                items=mine,
            )
        )
    buyer = buyer_preferences(config.due_day)
    agents.append(
        negotiator_agent(
            MANUFACTURER,
            Negotiator(buyer, config.strategy),
            description=f"Manufacturer of {config.product}",
            tags=["manufacturer"],
        )
    )
    if config.brain != "rule":
        agents.append(
            negotiator_agent(
                MANUFACTURER_LLM,
                Negotiator(buyer, config.strategy),
                brain=brain,
                guided=True,
                description="Manufacturer's LLM-guided negotiator",
                tags=["manufacturer", "llm"],
            )
        )
    carriers = []
    most = config.quantity * max(BOMS[config.product].values()) * 1.1  # the largest shipment fits one truck
    for j in range(config.distributors):
        name = f"carrier-{j:04d}"
        profile = CarrierProfile(
            trucks=rng.randint(1, 3),
            truck_capacity=int(most * rng.choice([1, 2])),
            cost_per_unit=round(rng.uniform(0.5, 1.5), 2),
            margin=round(rng.uniform(0.1, 0.4), 2),
            transit_days=rng.randint(1, MAX_TRANSIT_DAYS),
        )
        agents.append(carrier_agent(name, Carrier(profile), description="Distributor with trucks"))
        carriers.append(name)
    return World(
        config=config,
        agents=agents,
        suppliers_by_component=by_component,
        carriers=carriers,
        supplier_costs=costs,
        supplier_preferences=prefs_of,
        supplier_profiles=profiles,
    )
