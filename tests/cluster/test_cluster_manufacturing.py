"""Five hosts in network namespaces run the smart-manufacturing scenario over HTTP: "db" (PostgreSQL and the
registry), "agent1" and "agent2" (the suppliers and carriers, split so each component has suppliers on both),
"orch1" and "orch2" (orchestrator replicas on that database); a sixth, "client", drives the scenario. Mid-run
agent1 and the replica running the in-flight runs are SIGKILLed (and agent2 paused): every contract is still signed.

Every server binds to its namespace address with access keys (tokens with scopes, the orchestrator's own agent
token); all traffic stays inside the namespaces this test made (and their loopback). Skips with the reason where
namespaces cannot be made (not root, no CAP_NET_ADMIN) or PostgreSQL's server binaries are missing."""

from __future__ import annotations

import json
import pwd
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from protocol.auth import SigningKey
from scenarios.manufacturing_cluster import assign_hosts
from scenarios.manufacturing_result import ScenarioResult
from scenarios.manufacturing_world import BOMS, ScenarioConfig, build_world
from scenarios.smart_manufacturing import run as run_in_one_process
from tests.cluster.netns import SUBNET, Host, Line, Network, Process, unavailable

pytestmark = [pytest.mark.netns, pytest.mark.postgres, pytest.mark.timeout(240)]

HOSTS = ["db", "agent1", "agent2", "orch1", "orch2", "client"]
SCALEOUT = str(Path(sys.executable).with_name("scaleout"))
LEASE_S = 3
ORCH_PORT, REGISTRY_PORT, AGENT_PORT, PG_PORT = 8100, 8600, 8000, 5432
WORLD = ScenarioConfig(brain="rule")  # what the agent hosts serve and the driver negotiates over
HOLD_BEFORE = 3  # the component before which the faults are injected (of the pump's five)


def _postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL server binaries (with initdb), else None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _skip_reason() -> str | None:
    why = unavailable()
    if why:
        return why
    if _postgres_bin() is None:
        return "PostgreSQL's server binaries (initdb, postgres) are not installed"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no 'postgres' user to run a private PostgreSQL server as"
    return None


@dataclass
class Cluster:
    """The running cluster: the network, its servers by name, and how to start the scenario's driver."""

    net: Network
    servers: dict[str, Process]
    world_json: str
    driver_token: str

    def url(self, host: str, port: int) -> str:
        return f"http://{self.net[host].address}:{port}"

    def start_driver(self, *options: str) -> Process:
        """``python -m scenarios.manufacturing_cluster`` in the client host, tracing every run; stdin open."""
        argv = [sys.executable, "-m", "scenarios.manufacturing_cluster", "--config", self.world_json, "--trace"]
        argv += ["--orchestrator", self.url("orch1", ORCH_PORT), "--orchestrator", self.url("orch2", ORCH_PORT)]
        argv += ["--agent-host", self.url("agent1", AGENT_PORT), "--agent-host", self.url("agent2", AGENT_PORT)]
        argv += ["--registry", self.url("db", REGISTRY_PORT), "--wait", "90", *options]
        env = {"SCALEOUT_TOKEN": self.driver_token}
        return self.net["client"].start(argv, name="driver", env=env, stdin=True)


def _start_postgres(db: Host, home: Path, password: str) -> str:
    """A private PostgreSQL server inside ``db``, its files in ``home`` (handed to the postgres user); its
    SQLAlchemy URL."""
    bin_dir = _postgres_bin()
    assert bin_dir is not None
    user = pwd.getpwnam("postgres")
    (home / "password").write_text(password + "\n")
    for path in (home, home / "password"):
        shutil.chown(path, user.pw_uid, user.pw_gid)
    data = home / "data"
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "scaleout", f"--pwfile={home / 'password'}"]
    db.run([*initdb, "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--no-sync"], user="postgres")
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all scaleout {SUBNET}.0/24 scram-sha-256\n")
    server = db.start(
        [str(bin_dir / "postgres"), "-D", str(data), "-h", db.address, "-p", str(PG_PORT), "-k", str(home)]
        + ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        name="postgres",
        user="postgres",
        stop_signal=signal.SIGINT,  # fast shutdown: its backends end and its shared memory is removed
    )
    server.wait_for("database system is ready to accept connections", 60)
    return f"postgresql+psycopg://scaleout:{password}@{db.address}:{PG_PORT}/postgres"


@contextmanager
def _cluster(tmp_path: Path) -> Iterator[Cluster]:
    key = SigningKey.generate()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.jwk()], "revoked": []}))

    def token(subject: str, *scopes: str) -> str:
        return key.token(subject, scopes, issuer="scaleout", audience="scaleout", ttl_s=3600)

    auth = ["--jwks", str(jwks)]
    fetch = ["--allow-fetch", f"{SUBNET}.0/24"]
    with ExitStack() as stack:
        pg_home = Path(tempfile.mkdtemp(prefix="scaleout-cluster-pg-"))  # not under tmp_path: postgres reads it
        stack.callback(shutil.rmtree, pg_home, ignore_errors=True)  # after the network (and PostgreSQL) stopped
        net = stack.enter_context(Network(HOSTS, tmp_path / "logs"))
        db_url = _start_postgres(net["db"], pg_home, secrets.token_hex(12))
        servers: dict[str, Process] = {}
        registry = ["registry", "serve", "--db", db_url, "--host", net["db"].address, "--port", str(REGISTRY_PORT)]
        servers["registry"] = net["db"].start([SCALEOUT, *registry, *auth, *fetch, "--health-interval", "1"])
        world = json.dumps(WORLD.model_dump(mode="json", include={"seed", "suppliers", "distributors", "product"}))
        for i, host in enumerate(["agent1", "agent2"]):
            serve = ["agent", "serve", "scenarios.manufacturing_cluster:host_agents", "--host", net[host].address]
            servers[host] = net[host].start(
                [SCALEOUT, *serve, "--port", str(AGENT_PORT), *auth],
                env={"SCALEOUT_CLUSTER_HOST": f"{i}/2", "SCALEOUT_CLUSTER_CONFIG": world},
            )
        for host in ("orch1", "orch2"):
            serve = ["orchestrator", "serve", "--db", db_url, "--host", net[host].address, "--port", str(ORCH_PORT)]
            replica = ["--replica-id", host, "--lease-s", str(LEASE_S)]
            servers[host] = net[host].start(
                [SCALEOUT, *serve, *replica, *auth, *fetch],
                env={"SCALEOUT_AGENT_TOKEN": token("orchestrator", "agents:call")},
            )
        scopes = ("runs:submit", "runs:read", "registry:read", "registry:write")
        yield Cluster(net, servers, world, token("factory", *scopes))


def _agents_on(host: int) -> list[str]:
    where = assign_hosts(build_world(WORLD, None), 2)
    return sorted(name for name, h in where.items() if h == host)


def _takeover(driver: Process, run_id: str, after: int) -> Line:
    """Wait until orch2 resumes ``run_id`` and settles the call it found in flight: the line with how that
    adopted attempt ended (attempt.succeeded, .failed, or .interrupted when the agent never got it)."""
    resumed = driver.wait_for(rf"^run {run_id} \S+ run\.resumed orch2$", 4 * LEASE_S + 10, after=after)
    adopting = driver.wait_for(rf"^run {run_id} \S+ attempt\.adopting", 30, after=resumed.index)
    return driver.wait_for(rf"^run {run_id} \S+ attempt\.(succeeded|failed|interrupted)", 30, after=adopting.index)


def test_scenario_survives_killing_an_agent_host_and_a_replica(tmp_path: Path) -> None:
    """Kill agent1 and orch1 with calls in flight before the third component: all five contracts are signed."""
    why = _skip_reason()
    if why:
        pytest.skip(why)
    doomed, survivors = _agents_on(0), _agents_on(1)
    result_file = tmp_path / "result.json"
    with _cluster(tmp_path) as cluster:
        agent1, agent2, orch1 = (cluster.servers[name] for name in ("agent1", "agent2", "orch1"))
        driver = cluster.start_driver("--hold-before", str(HOLD_BEFORE), "--result", str(result_file))
        held = driver.wait_for(rf"holding before component {HOLD_BEFORE}", 120)
        # both agent hosts freeze, so the next component's calls for proposals (it has suppliers on both) stay
        # in flight on orch1, the replica the driver submits to while it answers
        agent1.signal(signal.SIGSTOP)
        agent2.signal(signal.SIGSTOP)
        driver.send("go")
        lost = driver.wait_for(rf"^run (\S+) ({'|'.join(doomed)})\.propose attempt\.started", 30, after=held.index)
        paused = driver.wait_for(rf"^run (\S+) ({'|'.join(survivors)})\.propose attempt\.started", 30, after=held.index)
        orch1.kill()
        agent1.kill()
        agent2.signal(signal.SIGCONT)  # a pause, not a crash: it answers the call orch1 will never hear back
        # orch2 takes both runs over once orch1's lease has run out and adopts the calls in flight: the one on
        # dead agent1 fails; the one on agent2 ends as agent2 ran it, once (never failed and sent again)
        dead = _takeover(driver, lost.match.group(1), lost.index)
        assert dead.match.group(1) == "failed", dead.text
        alive = _takeover(driver, paused.match.group(1), paused.index)
        assert alive.match.group(1) in ("succeeded", "interrupted"), alive.text
        end = driver.wait_for(rf"^run {paused.match.group(1)} \S+ run\.(succeeded|failed)", 30, after=alive.index)
        assert end.match.group(1) == "succeeded", end.text
        driver.wait_for(r"^done: ", 90, after=max(dead.index, end.index))
        assert driver.popen.wait(timeout=30) == 0, driver.tail()
    result = ScenarioResult.model_validate_json(result_file.read_text())
    components = list(BOMS[WORLD.product])
    signed = {c.item: c for c in result.contracts}
    assert sorted(signed) == sorted(components), result.components  # every contract signed
    # before the faults the cluster agrees exactly with the same world run in one process
    alone = {c.item: c for c in run_in_one_process(WORLD).contracts}
    before, after = components[: HOLD_BEFORE - 1], components[HOLD_BEFORE - 1 :]
    assert [(signed[i].seller, signed[i].terms) for i in before] == [(alone[i].seller, alone[i].terms) for i in before]
    # after them, agent2's suppliers and carriers carry the rest
    assert all(signed[i].seller in survivors for i in after), {i: signed[i].seller for i in after}
    assert all(d.carrier in survivors for d in result.schedule), [d.carrier for d in result.schedule]
    assert result.completion_day is not None
