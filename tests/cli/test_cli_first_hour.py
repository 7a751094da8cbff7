"""The first mistakes of a new user, through the real ``scaleout`` command: a short message, never a traceback.

Each test drives one mistake from issue #17 (a dead URL, malformed JSON, a database that is not there, a taken port,
a bad config file) or one first-hour need (state in one place, registering schemas and a model, reading a call's
result, the health sweep, one timestamp format) through ``python -m orchestrator.cli`` in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from agents.loading import load_agents
from agents.testing import free_port
from orchestrator.cli import build_parser
from tests.orchestrator.conftest import pg_url  # noqa: F401 - the fixture, for the PostgreSQL variant
from tests.processes import served

SCALEOUT = [sys.executable, "-m", "orchestrator.cli"]
REPO = Path(__file__).resolve().parents[2]
RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")

AGENT_MODULE = textwrap.dedent(
    """
    from pydantic import BaseModel

    from agents import Agent, SkillContext

    class Name(BaseModel):
        name: str

    class Greeting(BaseModel):
        text: str

    agent = Agent("greeter", "says hello")

    @agent.skill(description="greets someone")
    async def greet(ctx: SkillContext, req: Name) -> Greeting:
        return Greeting(text=f"hello {req.name}")
    """
)


def _env(home: Path, **extra: str) -> dict[str, str]:
    """A new user's environment: a PATH, the repository importable, an empty data directory, nothing else."""
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(home), "SCALEOUT_HOME": str(home / "data")}


def _scaleout(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**_env(cwd), **env}
    return subprocess.run(
        [*SCALEOUT, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=60, check=False
    )


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The command failed with one ``error:`` line holding each of ``needles``, and no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def greeter(tmp_path: Path) -> Iterator[str]:
    """The greeter agent served by ``scaleout agent serve`` from the current directory; its base URL."""
    (tmp_path / "greeting_agent.py").write_text(AGENT_MODULE)
    env = {**_env(tmp_path), "SCALEOUT_HOME": str(tmp_path / "data")}
    with served(tmp_path, "greeter", "agent", "serve", "greeting_agent:agent", cwd=tmp_path, env=env) as url:
        yield url


def test_an_agent_module_in_the_current_directory_is_found(tmp_path: Path) -> None:
    (tmp_path / "greeting_agent.py").write_text(AGENT_MODULE)
    [agent] = load_agents("greeting_agent:agent", app_dir=str(tmp_path))
    assert agent.name == "greeter"


def test_a_module_that_cannot_be_imported_is_one_line_naming_where_it_looked(tmp_path: Path) -> None:
    result = _scaleout("agent", "mcp", "no_such_module:agent", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot import 'no_such_module'")
    assert str(tmp_path) in _one_line_error(result)


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "list"],
        ["runs", "show", "0" * 32],
        ["run", "greet", "--input", '{"name": "ada"}'],
        ["agent", "call", "{url}", "greet", '{"name": "ada"}'],
        ["registry", "list", "--api", "{url}"],
    ],
    ids=["runs-list", "runs-show", "run", "agent-call", "registry-api"],
)
def test_a_dead_url_is_one_line_naming_it_and_what_to_do(tmp_path: Path, command: list[str]) -> None:
    url = _dead_url()
    args = [a.replace("{url}", url) for a in command]
    if "{url}" not in command and command[0] in ("run", "runs"):
        args += ["--url", url]
    line = _one_line_error(_scaleout(*args, cwd=tmp_path), "cannot reach ", url)
    assert re.search(r"(start it with '|is `)scaleout (orchestrator|agent|registry) serve", line), line


def test_the_orchestrator_url_comes_from_the_environment_when_no_flag_gives_it(tmp_path: Path) -> None:
    url = _dead_url()
    _one_line_error(_scaleout("runs", "list", cwd=tmp_path, SCALEOUT_ORCHESTRATOR_URL=url), f"cannot reach {url}")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = _scaleout("--debug", "runs", "list", "--url", _dead_url(), cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr and "ConnectError" in result.stderr


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["run", "greet", "--input", '{"name": "ada",}'], "--input"),
        (["agent", "call", "{url}", "greet", '{"name": ada}'], "the skill input"),
    ],
    ids=["run", "agent-call"],
)
def test_malformed_input_json_is_refused_before_anything_is_sent(tmp_path: Path, command: list[str], name: str) -> None:
    url = _dead_url()  # anything sent would fail with "cannot reach": the parse error proves nothing was
    args = [a.replace("{url}", url) for a in command] + (["--url", url] if command[0] == "run" else [])
    line = _one_line_error(_scaleout(*args, cwd=tmp_path), f"{name} is not valid JSON", "line 1 column")
    assert "cannot reach" not in line


def test_plain_text_input_is_still_sent_as_text(tmp_path: Path) -> None:
    url = _dead_url()
    _one_line_error(_scaleout("run", "summarize", "--input", "a note", "--url", url, cwd=tmp_path), "cannot reach")


def test_a_missing_run_file_is_one_line_naming_it(tmp_path: Path) -> None:
    _one_line_error(_scaleout("run", "graph.json", cwd=tmp_path), "graph.json", "No such file")
    (tmp_path / "bad.json").write_text('{"tasks": [}')
    _one_line_error(_scaleout("run", "bad.json", cwd=tmp_path), "bad.json is not valid JSON", "line 1")


@pytest.mark.parametrize(
    "command",
    [
        ["registry", "show", "greeter"],
        ["registry", "list"],
        ["registry", "search", "hello"],
        ["runs", "list", "--db", "{db}"],
        ["runs", "show", "0" * 32, "--db", "{db}"],
    ],
    ids=["registry-show", "registry-list", "registry-search", "runs-list", "runs-show"],
)
def test_reading_a_database_that_is_not_there_never_creates_it(tmp_path: Path, command: list[str]) -> None:
    default = tmp_path / "data" / "scaleout.db"
    db = tmp_path / "elsewhere.db"
    args = [a.replace("{db}", str(db)) for a in command]
    line = _one_line_error(_scaleout(*args, cwd=tmp_path), "no database at")
    assert str(db if "--db" in command else default) in line
    assert not default.exists() and not db.exists() and not (tmp_path / "scaleout.db").exists()


def test_state_lives_in_the_data_directory_and_config_shows_where_settings_come_from(tmp_path: Path) -> None:
    shown = _scaleout("config", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)
    assert settings["data_dir"] == str(tmp_path / "data")
    assert settings["settings"]["db_url"] == {"value": f"sqlite:///{tmp_path}/data/scaleout.db", "source": "default"}

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "config.toml").write_text('orchestrator_url = "http://home.example:1"\n')
    (tmp_path / "scaleout.toml").write_text(
        'orchestrator_url = "http://here.example:2"\ndb_url = "sqlite:///here.db"\nregistry_url = "http://r:3"\n'
    )
    settings = json.loads(_scaleout("config", "--json", cwd=tmp_path, SCALEOUT_REGISTRY_URL="http://env:4").stdout)[
        "settings"
    ]
    assert settings["orchestrator_url"] == {"value": "http://here.example:2", "source": str(tmp_path / "scaleout.toml")}
    assert settings["db_url"]["value"] == "sqlite:///here.db"
    assert settings["registry_url"] == {"value": "http://env:4", "source": "$SCALEOUT_REGISTRY_URL"}
    text = _scaleout("config", cwd=tmp_path).stdout
    assert "from $SCALEOUT_HOME" not in text and f"from {tmp_path / 'scaleout.toml'}" in text

    url = _dead_url()  # the file's URL is used, the flag beats it
    (tmp_path / "scaleout.toml").write_text(f'orchestrator_url = "{url}"\n')
    _one_line_error(_scaleout("runs", "list", cwd=tmp_path), f"cannot reach {url}")
    other = _dead_url()
    _one_line_error(_scaleout("runs", "list", "--url", other, cwd=tmp_path), f"cannot reach {other}")


def test_a_bad_config_file_is_one_line_naming_it_and_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "scaleout.toml"
    config.write_text('db_url = "x"\ndatabase = "y"\n')
    _one_line_error(_scaleout("runs", "list", cwd=tmp_path), str(config), "unknown key(s) database", "known keys")
    config.write_text("db_url = \n")
    _one_line_error(_scaleout("config", cwd=tmp_path), str(config), "not valid TOML", "line 1")


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    yield path, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, (*path, name))


def test_every_command_help_shows_an_example() -> None:
    missing = [
        " ".join(path) for path, text in _commands(build_parser()) if "scaleout " not in text.split("example")[-1]
    ]
    assert not missing, f"commands whose --help has no example: {missing}"


def test_help_through_the_real_command_shows_the_example(tmp_path: Path) -> None:
    result = _scaleout("registry", "add", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "--skill-schema classify=classify.schema.json" in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["agent", "serve", "greeting_agent:agent"],
        ["registry", "serve"],
        ["orchestrator", "serve"],
    ],
    ids=["agent", "registry", "orchestrator"],
)
def test_a_port_in_use_is_one_line_naming_it_before_anything_else(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "greeting_agent.py").write_text(AGENT_MODULE)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _scaleout(*command, "--port", str(port), cwd=tmp_path)
    line = _one_line_error(result, f"port {port} on 127.0.0.1 is already in use", "--port")
    assert result.stdout == "" and line


def test_registry_add_stores_a_model_and_input_schemas_and_says_so(tmp_path: Path, greeter: str) -> None:
    db = f"sqlite:///{tmp_path}/platform.db"
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    (tmp_path / "greet.schema.json").write_text(json.dumps(schema))
    added = _scaleout(
        "registry", "add", greeter, "--db", db, "--model", "gemma-3-270m", "--parameters", "270000000",
        "--skill-schema", "greet=greet.schema.json", cwd=tmp_path,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "registered greeter" in added.stdout and "gemma-3-270m" in added.stdout
    assert re.search(r"skill\s+greet\s+input schema", added.stdout), added.stdout

    record = json.loads(_scaleout("registry", "show", "greeter", "--db", db, "--json", cwd=tmp_path).stdout)
    assert record["model"]["name"] == "gemma-3-270m" and record["model"]["parameters"] == 270000000
    assert record["skills"][0]["input_schema"] == schema

    plain = _scaleout("registry", "add", greeter, "--db", f"sqlite:///{tmp_path}/plain.db", cwd=tmp_path)
    assert "no input schema (give --skill-schema SKILL=FILE.json)" in plain.stdout
    assert "model   none (give --model NAME --parameters N)" in plain.stdout

    wrong = _scaleout("registry", "add", greeter, "--db", db, "--skill-schema", "hello=greet.schema.json", cwd=tmp_path)
    _one_line_error(wrong, "hello", "its skills: greet")
    _one_line_error(
        _scaleout("registry", "add", greeter, "--db", db, "--skill-schema", "greet=nope.json", cwd=tmp_path),
        "nope.json",
    )
    _one_line_error(_scaleout("registry", "add", greeter, "--db", db, "--parameters", "5", cwd=tmp_path), "--model")

    other = f"sqlite:///{tmp_path}/served.db"  # through a registry server: the same options, the same result
    serve = ("registry", "serve", "--db", other)
    with served(tmp_path, "registry", *serve, cwd=tmp_path, env=_env(tmp_path), ready_path="/healthz") as api:
        remote = ("registry", "add", greeter, "--api", api, "--model", "m", "--skill-schema", "greet=greet.schema.json")
        added = _scaleout(*remote, cwd=tmp_path)
        assert added.returncode == 0, added.stderr
        record = json.loads(_scaleout("registry", "show", "greeter", "--api", api, "--json", cwd=tmp_path).stdout)
    assert record["model"]["name"] == "m" and record["skills"][0]["input_schema"] == schema


def test_agent_call_prints_the_result_and_json_the_whole_task(tmp_path: Path, greeter: str) -> None:
    called = _scaleout("agent", "call", greeter, "greet", '{"name": "ada"}', cwd=tmp_path)
    assert called.returncode == 0, called.stderr
    assert called.stdout.splitlines() == ["{", '  "text": "hello ada"', "}", "state: completed"]
    task = json.loads(_scaleout("agent", "call", greeter, "greet", '{"name": "ada"}', "--json", cwd=tmp_path).stdout)
    assert task["status"]["state"] == "TASK_STATE_COMPLETED" and "history" in task


def _timestamps(value: object, key: str = "") -> Iterator[tuple[str, str]]:
    """Every (key, value) whose key names a time (``*_at``, ``at``, ``last_heartbeat``) inside ``value``."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str) and (k == "at" or k.endswith("_at") or k == "last_heartbeat"):
                yield k, v
            else:
                yield from _timestamps(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _timestamps(item, key)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def platform_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file, or a fresh PostgreSQL schema."""
    return f"sqlite:///{tmp_path}/platform.db" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def test_one_timestamp_format_in_every_api_response_and_event(tmp_path: Path, greeter: str, platform_db: str) -> None:
    env = {**_env(tmp_path)}
    assert _scaleout("registry", "add", greeter, "--db", platform_db, cwd=tmp_path).returncode == 0
    with ExitStack() as stack:
        orch = stack.enter_context(
            served(tmp_path, "orch", "orchestrator", "serve", "--db", platform_db, cwd=tmp_path, env=env)
        )
        registry = stack.enter_context(
            served(
                tmp_path, "reg", "registry", "serve", "--db", platform_db, cwd=tmp_path, env=env, ready_path="/healthz"
            )
        )
        ran = _scaleout("run", "greet", "--input", '{"name": "ada"}', "--url", orch, "--json", cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        run_id = json.loads(ran.stdout[ran.stdout.rindex('{\n  "id"') :])["id"]  # after the progress lines
        with httpx.Client(timeout=10) as http:
            seen = list(_timestamps(http.get(f"{orch}/runs").json()))
            seen += _timestamps(http.get(f"{orch}/runs/{run_id}").json())
            events = http.get(f"{orch}/runs/{run_id}/events").text
            seen += _timestamps([json.loads(line[5:]) for line in events.splitlines() if line.startswith("data:")])
            seen += _timestamps(http.get(f"{registry}/agents").json())
        listed = _scaleout("runs", "list", "--url", orch, cwd=tmp_path).stdout.split()
    stored = _scaleout("runs", "show", run_id, "--db", platform_db, "--json", cwd=tmp_path)  # the database itself
    assert stored.returncode == 0, stored.stderr
    seen += _timestamps(json.loads(stored.stdout))
    assert run_id in _scaleout("runs", "list", "--db", platform_db, cwd=tmp_path).stdout
    keys = {key for key, _ in seen}
    assert {"created_at", "finished_at", "at", "registered_at", "updated_at"} <= keys, keys
    assert all(RFC3339_Z.match(value) for _, value in seen), [v for _, v in seen if not RFC3339_Z.match(v)]
    assert any(RFC3339_Z.match(word) for word in listed), listed


def test_the_health_sweep_runs_by_default_and_marks_a_dead_agent(tmp_path: Path) -> None:
    parser = build_parser()
    assert parser.parse_args(["registry", "serve"]).health_interval == 30
    assert parser.parse_args(["orchestrator", "serve"]).health_interval == 30
    (tmp_path / "greeting_agent.py").write_text(AGENT_MODULE)
    db = f"sqlite:///{tmp_path}/platform.db"
    env = _env(tmp_path)
    with ExitStack() as stack:
        agent = stack.enter_context(
            served(tmp_path, "greeter", "agent", "serve", "greeting_agent:agent", cwd=tmp_path, env=env)
        )
        assert _scaleout("registry", "add", agent, "--db", db, cwd=tmp_path).returncode == 0
        stack.close()  # the agent dies
        with served(
            tmp_path, "orch", "orchestrator", "serve", "--db", db, "--health-interval", "0.2", cwd=tmp_path, env=env
        ):
            deadline = time.monotonic() + 30
            while True:
                shown = _scaleout("registry", "show", "greeter", "--db", db, "--json", cwd=tmp_path)
                if json.loads(shown.stdout)["status"] == "unhealthy":
                    break
                assert time.monotonic() < deadline, f"still {json.loads(shown.stdout)['status']} after 30 s"
