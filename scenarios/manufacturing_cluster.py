"""Smart manufacturing across hosts: every supplier and carrier call is an orchestrator run on a replica.

The suppliers and carriers of the seeded world (``manufacturing_world``, rule brain) are split over agent hosts, so
that every component has suppliers on every host; each host serves its share with ``scaleout agent serve
scenarios.manufacturing_cluster:host_agents`` (``SCALEOUT_CLUSTER_HOST=i/n``). The driver registers them in the
registry by URL, then plays the manufacturer (in its own process) through the scenario's own protocols: each call
to a supplier or carrier is a one-task run, submitted over HTTP to the orchestrator replicas and addressed to that
agent by skill and name tag. A replica that stops answering is left for the next (its runs are read, and followed,
on any replica); a supplier that cannot be reached counts as a failed bidder, exactly as in the single-host run.

Run: ``python -m scenarios.manufacturing_cluster --orchestrator URL... --registry URL --agent-host URL...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Self

import anyio
import httpx
from pydantic import BaseModel, Field

from agents.agent import Agent
from agents.client import LocalAgentClient
from agents.tasks import SKILL_METADATA_KEY
from orchestrator.client import TERMINAL_EVENTS, OrchestratorClient, OrchestratorError
from orchestrator.negotiation import Ledger, Party
from protocol import a2a
from protocol.a2a import Message, Part, Task
from protocol.negotiation import Contract
from registry.client import RegistryClient
from scenarios.manufacturing_result import (
    ComponentSummary,
    Delivery,
    NegotiationSummary,
    ScenarioResult,
)
from scenarios.manufacturing_world import (
    ASSEMBLY_DAYS,
    BOMS,
    MANUFACTURER,
    MAX_TRANSIT_DAYS,
    ScenarioConfig,
    World,
    build_world,
)
from scenarios.smart_manufacturing import scenario_result, ship_delivery, source_component  # single-host steps

__all__ = ["ClusterConfig", "Replicas", "RunClient", "assign_hosts", "world_config", "host_agents", "arun", "main"]

Trace = Callable[[str], None]


class ClusterConfig(BaseModel):
    """Where the driver finds the cluster: replicas (in order of preference), the registry, the agent hosts."""

    orchestrators: list[str] = Field(min_length=1)
    registry: str
    agent_hosts: list[str] = Field(min_length=1, description="base URLs of the agent hosts, host 0 first")
    token: str | None = Field(default=None, description="bearer token (default $SCALEOUT_TOKEN or the token file)")
    call_deadline_s: float = Field(default=20.0, gt=0, description="per-attempt deadline of each agent call")


def assign_hosts(world: World, hosts: int) -> dict[str, int]:
    """Which host (0..hosts-1) serves each supplier and carrier. Suppliers go by blocks of one supplier per
    component (supplier i makes component i mod n first), so each host gets a full block; carriers alternate."""
    components = len(BOMS[world.config.product])
    where = {name: (i // components) % hosts for i, name in enumerate(sorted(world.supplier_costs))}
    where |= {name: j % hosts for j, name in enumerate(world.carriers)}
    for component, names in world.suppliers_by_component.items():
        missing = set(range(hosts)) - {where[n] for n in names}
        if missing:
            raise ValueError(
                f"no supplier of {component} on host(s) {sorted(missing)}: give at least {components * hosts} "
                f"suppliers for {hosts} hosts"
            )
    return where


def world_config(raw: str = "") -> ScenarioConfig:
    """The world's ScenarioConfig from JSON fields (none: the defaults), always with the rule brain."""
    return ScenarioConfig.model_validate({**(json.loads(raw) if raw else {}), "brain": "rule"})


def host_agents() -> list[Agent]:
    """The agents of one agent host: ``SCALEOUT_CLUSTER_HOST=i/n`` (host i of n, from 0) and the world of
    ``SCALEOUT_CLUSTER_CONFIG`` (ScenarioConfig fields as JSON; rule brain). Each skill also carries its agent's
    name as a tag, so a run can address one agent by skill and name."""
    index, _, count = os.environ.get("SCALEOUT_CLUSTER_HOST", "0/1").partition("/")
    host, hosts = int(index), int(count or 1)
    if not 0 <= host < hosts:
        raise ValueError(f"SCALEOUT_CLUSTER_HOST must be i/n with 0 <= i < n, not {index}/{count}")
    world = build_world(world_config(os.environ.get("SCALEOUT_CLUSTER_CONFIG", "")), None)
    where = assign_hosts(world, hosts)
    mine = [a for a in world.agents if where.get(a.name) == host]
    for agent in mine:
        for skill in agent.skills.values():
            skill.tags = [*skill.tags, agent.name]
    return mine


def _record_event(event: dict[str, Any]) -> str:
    data = event.get("data") or {}
    detail = data.get("agent") or data.get("replica") or data.get("error") or ""
    return f"{event['kind']} {str(detail)[:120]}".rstrip()


class Replicas:
    """Orchestrator replicas tried in order: a call goes to the one that last answered; a replica that refuses
    the connection, breaks the stream or answers 5xx is left for the next. A submit whose answer was lost is
    looked up by its run name on the next replica before it is sent again, so no run is submitted twice."""

    def __init__(self, urls: Sequence[str], *, token: str | None = None, trace: Trace | None = None) -> None:
        self.clients = [OrchestratorClient(u, token=token, timeout=30.0) for u in urls]
        self.current = 0
        self.trace = trace

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self.clients:
            await client.aclose()

    async def _next(self, tried: int) -> None:
        """Move on to the next replica; after a whole round without an answer, back off a little."""
        self.current = (self.current + 1) % len(self.clients)
        if tried % len(self.clients) == 0:
            await anyio.sleep(min(0.1 * 2 ** (tried // len(self.clients)), 1.0))

    async def submit(self, spec: dict[str, Any]) -> str:
        """Submit ``spec`` (which must carry a unique ``name``) to the first replica that takes it; its run id."""
        lost = False  # a replica may have stored it before the connection broke
        tried = 0
        while True:
            client = self.clients[self.current]
            try:
                if lost:
                    runs = await client.list_runs(limit=200)
                    found = next((r["id"] for r in runs if r.get("name") == spec["name"]), None)
                    if found is not None:
                        return str(found)
                return await client.submit(spec)
            except httpx.ConnectError:
                pass  # nothing was sent
            except httpx.TransportError:
                lost = True
            except OrchestratorError as exc:
                if exc.status < 500:
                    raise
                lost = True
            tried += 1
            await self._next(tried)

    async def wait(self, run_id: str, label: str = "") -> dict[str, Any]:
        """Follow ``run_id``'s events to its end on any replica (resuming by event number); its record."""
        last, tried = 0, 0
        while True:
            client = self.clients[self.current]
            try:
                async for event in client.events(run_id, last_event_id=last, reconnects=0):
                    last = int(event["seq"])
                    if self.trace and event["kind"].startswith(("attempt.", "run.")):
                        self.trace(f"run {run_id} {label} {_record_event(event)}")
                    if event["kind"] in TERMINAL_EVENTS:
                        return await client.get_run(run_id)
            except httpx.TransportError:
                pass
            except OrchestratorError as exc:
                if exc.status < 500:
                    raise
            tried += 1
            await self._next(tried)


def _failed(task_id: str, why: str) -> Task:
    status = a2a.TaskStatus(state=a2a.TaskState.FAILED, message=Message.agent(Part.from_text(why)))
    return Task(id=task_id, context_id=task_id, status=status)


class RunClient:
    """One agent reached through the orchestrator: each message is a one-task run for the message's skill,
    addressed to this agent by its name tag. Only ``send_message`` is offered (what negotiation calls use)."""

    def __init__(self, name: str, replicas: Replicas, *, deadline_s: float = 20.0) -> None:
        self.name = name
        self.url = f"orchestrator:{name}"
        self.replicas = replicas
        self.deadline_s = deadline_s

    async def send_message(
        self, message: Message, *, return_immediately: bool = False, history_length: int | None = None
    ) -> Task:
        """Run the message's skill on this agent as an orchestrator run; the run as an A2A task."""
        skill = (message.metadata or {}).get(SKILL_METADATA_KEY)
        part = message.parts[0]
        task = {
            "id": "call",
            "skill": skill,
            "tags": [self.name],
            "input": part.data if part.data is not None else part.text,
            "constraints": {"deadline_s": self.deadline_s, "max_attempts": 2},
        }
        spec = {"name": f"{self.name}.{skill} {message.message_id}", "tasks": [task], "concurrency": 1}
        try:
            run_id = await self.replicas.submit(spec)
        except OrchestratorError as exc:  # e.g. 400 when no healthy agent serves it: this call fails, not the run
            return _failed(message.message_id, f"the orchestrator refused the call: {exc}")
        record = await self.replicas.wait(run_id, f"{self.name}.{skill}")
        done = record["tasks"][0] if record.get("tasks") else {}
        if record["status"] == "succeeded":
            status = a2a.TaskStatus(state=a2a.TaskState.COMPLETED)
            return Task(
                id=run_id,
                context_id=run_id,
                status=status,
                artifacts=[a2a.Artifact(parts=[Part.from_data(done["output"])])],
            )
        return _failed(run_id, f"run {run_id}: {done.get('error') or record.get('error') or record['status']}")

    def _only(self) -> NotImplementedError:
        return NotImplementedError(f"{self.url} is reached through orchestrator runs: only send_message")

    async def get_card(self) -> a2a.AgentCard:
        raise self._only()

    def stream_message(self, message: Message) -> AsyncIterator[a2a.StreamResponse]:
        raise self._only()

    async def get_task(self, task_id: str, history_length: int | None = None) -> Task:
        raise self._only()

    async def list_tasks(self, request: a2a.ListTasksRequest | None = None) -> a2a.ListTasksResponse:
        raise self._only()

    async def cancel_task(self, task_id: str) -> Task:
        raise self._only()

    def subscribe(self, task_id: str) -> AsyncIterator[a2a.StreamResponse]:
        raise self._only()

    async def aclose(self) -> None:
        return None


async def wait_ready(cluster: ClusterConfig, timeout_s: float) -> None:
    """Wait until every replica, the registry and every agent host answers its public health route."""
    urls = [f"{u.rstrip('/')}/health" for u in cluster.orchestrators] + [f"{cluster.registry.rstrip('/')}/healthz"]
    urls += [f"{u.rstrip('/')}/agents" for u in cluster.agent_hosts]
    async with httpx.AsyncClient(timeout=2.0) as http:

        async def ready(url: str) -> None:
            delay = 0.05
            while True:
                try:
                    if (await http.get(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                await anyio.sleep(delay)  # a retry's back-off, not a wait for an event
                delay = min(delay * 2, 0.5)

        with anyio.fail_after(timeout_s):
            async with anyio.create_task_group() as tg:
                for url in urls:
                    tg.start_soon(ready, url)


async def _register(registry: RegistryClient, where: dict[str, int], hosts: Sequence[str], say: Trace) -> None:
    """Register every supplier and carrier by the URL its host serves it at (the registry fetches the card)."""

    async def one(name: str) -> None:
        await registry.register_url(f"{hosts[where[name]].rstrip('/')}/agents/{name}/")

    async with anyio.create_task_group() as tg:
        for name in sorted(where):
            tg.start_soon(one, name)
    say(f"registered {len(where)} agents from {len(hosts)} agent hosts")


async def _schedule(
    config: ScenarioConfig, world: World, parties: dict[str, Party], contracts: list[Contract], ledger: Ledger
) -> tuple[list[Delivery], int | None]:
    """Auction every contract's delivery, then (when all arrive) the product's; the schedule and assembly day."""
    last_in = config.due_day - ASSEMBLY_DAYS - MAX_TRANSIT_DAYS
    schedule = []
    for c in contracts:
        day, quantity = int(c.terms.values["delivery_day"]), int(c.terms.values["quantity"])
        shipment = (f"ship-{c.item}", c.item, c.seller, "factory", quantity, day, min(day + 4, last_in))
        schedule.append(await ship_delivery(parties, world.carriers, *shipment, ledger))
    arrivals = [d.arrival_day for d in schedule]
    if len(contracts) < len(BOMS[config.product]) or None in arrivals:
        return schedule, None
    assembly = max(a for a in arrivals if a is not None) + ASSEMBLY_DAYS
    last = max(config.due_day, assembly + 1)
    product = (f"ship-{config.product}", config.product, "factory", "customer", config.quantity, assembly, last)
    schedule.append(await ship_delivery(parties, world.carriers, *product, ledger))
    return schedule, assembly


def _result(
    config: ScenarioConfig,
    sourcing: list[tuple[ComponentSummary, list[NegotiationSummary], Contract | None]],
    schedule: list[Delivery],
    assembly_day: int | None,
    ledger: Ledger,
    seconds: float,
) -> ScenarioResult:
    """The run as the single-host scenario reports it (transport "cluster")."""
    contracts = [contract for _, _, contract in sourcing if contract is not None]
    talks = [talk for _, negotiations, _ in sourcing for talk in negotiations]
    components = [summary for summary, _, _ in sourcing]
    result = scenario_result(config, components, contracts, talks, schedule, assembly_day, ledger, seconds)
    return result.model_copy(update={"config": result.config | {"transport": "cluster"}})


async def arun(
    config: ScenarioConfig,
    cluster: ClusterConfig,
    *,
    hold: Callable[[int], Awaitable[None]] | None = None,
    say: Trace | None = None,
) -> ScenarioResult:
    """Run the scenario across the cluster (see the module docstring). ``hold(i)`` is awaited before sourcing
    component i (from 1), e.g. to inject a fault at a known point; ``say`` gets progress and run events."""
    if config.brain != "rule":
        raise ValueError("the cluster scenario runs the rule brain (brain='rule')")
    say = say or (lambda _: None)
    started = time.perf_counter()
    world = build_world(config, None)
    where = assign_hosts(world, len(cluster.agent_hosts))
    bom = BOMS[config.product]
    ledger = Ledger()
    sourcing = []
    async with (
        RegistryClient(cluster.registry, token=cluster.token) as registry,
        Replicas(cluster.orchestrators, token=cluster.token, trace=say) as replicas,
        LocalAgentClient(world.agent(MANUFACTURER)) as manufacturer,
    ):
        await _register(registry, where, cluster.agent_hosts, say)
        parties = {n: Party(n, RunClient(n, replicas, deadline_s=cluster.call_deadline_s)) for n in where}
        parties[MANUFACTURER] = Party(MANUFACTURER, manufacturer)
        for i, (component, per_unit) in enumerate(bom.items(), 1):
            if hold is not None:
                await hold(i)
            records = await registry.search(skill="propose", tags=[component], limit=config.suppliers)
            found = sorted(r.name for r in records)  # healthy ones: the registry sweeps their health
            say(f"[{i}/{len(bom)}] sourcing {component}: contract net among {len(found)} suppliers in the registry")
            needed = config.quantity * per_unit
            sourcing.append(await source_component(world, parties, found, component, needed, 0, ledger))
            if (contract := sourcing[-1][2]) is not None:
                say(f"contract {contract.contract_id} signed with {contract.seller}")
        contracts = [contract for _, _, contract in sourcing if contract is not None]
        say(f"scheduling {len(contracts) + 1} deliveries by auction among {len(world.carriers)} carriers")
        schedule, assembly_day = await _schedule(config, world, parties, contracts, ledger)
    return _result(config, sourcing, schedule, assembly_day, ledger, time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run against a cluster, print progress (and run events) on stderr, the result as JSON."""
    p = argparse.ArgumentParser(prog="python -m scenarios.manufacturing_cluster", description=__doc__.split("\n")[0])
    p.add_argument("--orchestrator", action="append", required=True, help="a replica's URL (repeat; first preferred)")
    p.add_argument("--registry", required=True, help="the registry server's URL")
    p.add_argument(
        "--agent-host", action="append", required=True, help="an agent host's base URL (repeat, host 0 first)"
    )
    p.add_argument("--config", default=os.environ.get("SCALEOUT_CLUSTER_CONFIG", ""), help="ScenarioConfig as JSON")
    p.add_argument("--result", type=Path, help="write the result JSON here (default: stdout)")
    p.add_argument("--trace", action="store_true", help="also print every run's attempt and run events")
    p.add_argument("--wait", type=float, default=0.0, help="first wait up to this many seconds for every server")
    p.add_argument("--hold-before", type=int, default=0, help="before component N, wait for a line on stdin")
    a = p.parse_args(argv)
    config = world_config(a.config)
    cluster = ClusterConfig(orchestrators=a.orchestrator, registry=a.registry, agent_hosts=a.agent_host)

    def say(text: str) -> None:
        if a.trace or not text.startswith("run "):
            print(text, file=sys.stderr, flush=True)

    async def hold(component: int) -> None:
        if component == a.hold_before:
            say(f"holding before component {component}: send a line on stdin to go on")
            await anyio.to_thread.run_sync(sys.stdin.readline)

    async def go() -> ScenarioResult:
        if a.wait:
            await wait_ready(cluster, a.wait)
            say("every server answers")
        return await arun(config, cluster, hold=hold, say=say)

    result = anyio.run(go)
    text = result.model_dump_json()
    if a.result:
        a.result.write_text(text)
    else:
        print(text)
    say(f"done: {len(result.contracts)} contracts, completion day {result.completion_day}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
