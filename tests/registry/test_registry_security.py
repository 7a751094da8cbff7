"""The registry's HTTP boundary, one test per finding of issue #9, over real HTTP on loopback.

Commands never arrive from the network, browsers' cross-site requests are refused, outbound fetches reach only
allowed addresses (a recording network backend proves that refused ones see no connection attempt), bodies are
capped while streamed, and bad input of every kind answers a one-line 4xx on SQLite and PostgreSQL alike, after
which the server still answers the next good request.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from agents.testing import free_port, no_network, serve_in_thread
from protocol.egress import EgressPolicy, guarded_client, guarded_mcp_client
from registry import HealthStatus, Registry, discovery
from registry.api import create_app
from registry.health import HealthChecker

pytestmark = pytest.mark.anyio
JSON = {"Content-Type": "application/json"}


class RecordingBackend:
    """A network backend that records every connection attempt and makes none."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, **_: Any) -> Any:
        self.attempts.append((host, port))
        raise OSError("recording backend: no real connection in tests")

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - not reached
        pass


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> RecordingBackend:
    """Every outbound fetch of the registry goes to a recorder instead of the network."""
    backend = RecordingBackend()
    monkeypatch.setattr(discovery, "http_client", lambda egress, t: guarded_client(egress, timeout_s=t, inner=backend))
    monkeypatch.setattr(
        discovery, "mcp_http_client", lambda egress, t, *_: guarded_mcp_client(egress, timeout_s=t, inner=backend)
    )
    return backend


@pytest.fixture
def api(db_url: str) -> Iterator[tuple[str, Registry]]:
    """The registry API on loopback over a fresh SQLite file or PostgreSQL schema."""
    with Registry(db_url) as reg, serve_in_thread(create_app(reg)) as base:
        yield base, reg


def _card(name: str = "reader", *, url: str = "http://127.0.0.1:9/reader/", **changes: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "name": name,
        "description": "reads",
        "version": "1.0.0",
        "supportedInterfaces": [{"url": url}],
        "skills": [{"id": "read", "name": "Read", "description": "reads", "tags": ["docs"]}],
    }
    return card | changes


async def _still_serving(http: httpx.AsyncClient, base: str) -> None:
    """The server answers the next good request after a refused one."""
    resp = await http.post(f"{base}/agents", json={"card": _card("good")})
    assert resp.status_code == 201, resp.text
    resp = await http.delete(f"{base}/agents/{resp.json()['id']}")
    assert resp.status_code == 204


def _one_line_error(resp: httpx.Response, status: int, kind: str | None = None) -> str:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert "\n" not in error["message"] and error["message"]
    if kind is not None:
        assert error["type"] == kind, error
    return str(error["message"])


async def test_stdio_command_over_http_is_refused_and_nothing_stored(api: tuple[str, Registry]) -> None:
    base, reg = api
    command = "mcp+stdio:sh -c 'touch /tmp/pwned'"
    bodies = [
        {"card": _card("evil"), "transport": "mcp", "url": command},
        {"card": _card("evil", url=command), "transport": "mcp"},  # the card's interface is the target
        {"card": _card("evil"), "transport": "a2a", "url": "file:///etc/passwd"},
        {"card": _card("evil"), "transport": "local", "url": command},
    ]
    async with httpx.AsyncClient(timeout=30) as http:
        for body in bodies:
            message = _one_line_error(await http.post(f"{base}/agents", json=body), 422, "InvalidRequest")
            assert "url" in message
        assert "add-stdio" in message or "local://" in message
        resp = await http.post(f"{base}/agents/register-mcp", json={"url": command})
        _one_line_error(resp, 422, "InvalidRequest")
        assert reg.count() == 0
        await _still_serving(http, base)


async def test_cross_site_text_plain_post_is_415_and_nothing_stored(api: tuple[str, Registry]) -> None:
    base, reg = api
    body = json.dumps({"card": _card("evil"), "transport": "a2a"})
    async with httpx.AsyncClient(timeout=30) as http:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": content_type} if content_type else {}
            resp = await http.post(f"{base}/agents", content=body, headers=headers)
            assert "application/json" in _one_line_error(resp, 415, "UnsupportedMediaType")
        resp = await http.post(f"{base}/agents/some-id/heartbeat")  # bodyless POSTs need the type too
        _one_line_error(resp, 415)
        assert reg.count() == 0
        await _still_serving(http, base)


async def test_foreign_host_is_421_and_foreign_origin_403(api: tuple[str, Registry]) -> None:
    base, _ = api
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.get(f"{base}/agents", headers={"Host": "evil.example.com"})
        _one_line_error(resp, 421, "MisdirectedRequest")
        resp = await http.post(
            f"{base}/agents", json={"card": _card("evil")}, headers={"Origin": "http://evil.example.com"}
        )
        _one_line_error(resp, 403, "ForbiddenOrigin")
        resp = await http.get(f"{base}/agents", headers={"Origin": base})  # a page of this server itself
        assert resp.status_code == 200
        await _still_serving(http, base)


@pytest.mark.parametrize(
    ("target", "egress"),
    [
        ("http://169.254.169.254/latest/meta-data/", EgressPolicy()),  # cloud metadata: link-local, always refused
        ("http://10.1.2.3:8080/", EgressPolicy()),  # private range, not allowed by configuration
        ("http://127.0.0.1:{port}/", EgressPolicy.for_bind("0.0.0.0")),  # loopback, server not bound to loopback
    ],
)
async def test_ssrf_is_refused_without_a_connection(
    tmp_path: Any, recorder: RecordingBackend, target: str, egress: EgressPolicy
) -> None:
    target = target.format(port=free_port())
    with (
        no_network(),  # belt and braces: even a broken guard could not reach past loopback
        Registry(f"sqlite:///{tmp_path}/r.db") as reg,
        serve_in_thread(create_app(reg, egress=egress)) as base,
    ):
        with anyio.fail_after(60):
            async with httpx.AsyncClient(timeout=30) as http:
                resp = await http.post(f"{base}/agents/register-url", json={"url": target, "timeout": 5})
                assert "egress refused" in _one_line_error(resp, 502, "CardFetchError")
                body = {"url": f"mcp+{target}mcp", "timeout": 5}
                resp = await http.post(f"{base}/agents/register-mcp", json=body)
                assert "egress refused" in _one_line_error(resp, 502, "McpDiscoveryError")
                await _still_serving(http, base)
        assert reg.count() == 0
        reg.register_card(_card_model("by-url", target), url=target)
        reg.register_card(_card_model("by-mcp", f"mcp+{target}mcp"), transport="mcp", url=f"mcp+{target}mcp")
        checker = HealthChecker(reg, failures_to_unhealthy=1, timeout=5, egress=egress)
        with anyio.fail_after(60):
            report = await checker.sweep()
        assert sorted(report.failed) == sorted(report.unhealthy) == sorted(r.id for r in reg.list())
        assert all("egress refused" in reason for reason in report.reasons.values()), report.reasons
    assert recorder.attempts == []


def _card_model(name: str, url: str) -> Any:
    from protocol.a2a import AgentCard

    return AgentCard.model_validate(_card(name, url=url))


def _redirecting_server(port: int) -> Starlette:
    card = _card("hopper", url=f"http://127.0.0.1:{port}/real/")
    where = "/.well-known/agent-card.json"

    async def real(_: Request) -> Response:
        return JSONResponse(card)

    def to(url: str) -> Any:
        async def redirect(_: Request) -> Response:
            return RedirectResponse(url, status_code=302)

        return redirect

    return Starlette(
        routes=[
            Route(f"/real{where}", real),
            Route(f"/hop{where}", to(f"/real{where}")),  # same origin: followed
            Route(f"/away{where}", to(f"http://localhost:{port}/real{where}")),  # another host name
            Route(f"/meta{where}", to("http://169.254.169.254/latest/meta-data/")),
            Route(f"/loop{where}", to(f"/loop{where}")),
        ]
    )


async def test_redirects_stay_on_the_same_origin(tmp_path: Any) -> None:
    port = free_port()
    with (
        no_network(),
        Registry(f"sqlite:///{tmp_path}/r.db") as reg,
        serve_in_thread(create_app(reg)) as base,
        serve_in_thread(_redirecting_server(port), port) as agent,
    ):
        async with httpx.AsyncClient(timeout=30) as http:
            for path, hint in (("away", f"http://localhost:{port}/real"), ("meta", "169.254.169.254")):
                resp = await http.post(f"{base}/agents/register-url", json={"url": f"{agent}/{path}/"})
                message = _one_line_error(resp, 502, "CardFetchError")
                assert f"{agent}/{path}/.well-known/agent-card.json" in message and hint in message
            resp = await http.post(f"{base}/agents/register-url", json={"url": f"{agent}/loop/"})
            assert "more than 3 times" in _one_line_error(resp, 502, "CardFetchError")
            assert reg.count() == 0
            resp = await http.post(f"{base}/agents/register-url", json={"url": f"{agent}/hop/"})
            assert resp.status_code == 201, resp.text
            assert resp.json()["card_url"] == f"{agent}/real/.well-known/agent-card.json"


async def test_bodies_over_the_cap_are_413_while_streamed(api: tuple[str, Registry]) -> None:
    base, reg = api
    limit = 2_000_000

    async def chunks() -> Any:  # no Content-Length: the cap must hold while the body streams in
        sent = 0
        while sent <= limit:
            yield b" " * 100_000
            sent += 100_000

    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(f"{base}/agents", content=chunks(), headers=JSON)
        assert f"{limit} bytes" in _one_line_error(resp, 413, "PayloadTooLarge")
        await _still_serving(http, base)
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:  # a declared size is refused at once
        sock.sendall(
            b"POST /agents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200000000\r\n\r\n"
        )
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 413")
    assert reg.count() == 0


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "JSONTooDeep"),
        (b'{"card": {"name": "\xff\xfe"}}', "InvalidJSON"),
        (b'{"card": ', "InvalidJSON"),
    ],
)
async def test_deep_nesting_and_bad_utf8_are_400(api: tuple[str, Registry], body: bytes, kind: str) -> None:
    base, _ = api
    async with httpx.AsyncClient(timeout=30) as http:
        for path in ("/agents", "/agents/register-url", "/agents/x/calls"):
            _one_line_error(await http.post(f"{base}{path}", content=body, headers=JSON), 400, kind)
        await _still_serving(http, base)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/agents?offset=1e20", "offset"),
        ("/agents?offset=100000000000000000000", "offset"),
        ("/agents?limit=-1", "limit"),
        ("/agents?limit=abc", "limit"),
        ("/agents?status=bogus", "status"),
        ("/search?offset=1e20", "offset"),
        ("/search?offset=100000000000000000000", "offset"),
        ("/search?limit=-1", "limit"),
        ("/search?status=bogus", "status"),
        ("/search?max_cost=nan", "max_cost"),
        ("/search?all_tags=maybe", "all_tags"),
        ("/search?skill=a%00b", "skill"),
        ("/search?tag=" + "t" * 300, "tags"),
    ],
)
async def test_bad_query_parameters_are_one_line_4xx(api: tuple[str, Registry], query: str, field: str) -> None:
    base, _ = api
    async with httpx.AsyncClient(timeout=30) as http:
        assert field in _one_line_error(await http.get(f"{base}{query}"), 422, "InvalidQuery")
        await _still_serving(http, base)


async def test_bad_and_unknown_path_ids(api: tuple[str, Registry]) -> None:
    base, _ = api
    async with httpx.AsyncClient(timeout=30) as http:
        for agent_id in ("a%00b", "x" * 201, "a%0Ab"):
            for method, path, body in (
                ("GET", "", None),
                ("DELETE", "", None),
                ("POST", "/heartbeat", None),
                ("PUT", "/status", {"status": "draining"}),
                ("POST", "/calls", {"success": True, "latency_s": 0.1}),
                ("GET", "/history", None),
            ):
                resp = await http.request(method, f"{base}/agents/{agent_id}{path}", json=body, headers=JSON)
                assert "agent id" in _one_line_error(resp, 422, "InvalidRequest")
        for method, path, body in (
            ("POST", "/heartbeat", None),
            ("PUT", "/status", {"status": "draining"}),
            ("POST", "/calls", {"success": True, "latency_s": 0.1}),
            ("GET", "/history", None),
        ):
            resp = await http.request(method, f"{base}/agents/nobody{path}", json=body, headers=JSON)
            _one_line_error(resp, 404, "AgentNotFound")
        resp = await http.put(f"{base}/agents/nobody/status", json={"status": "bogus"})
        _one_line_error(resp, 422, "InvalidRequest")
        await _still_serving(http, base)


def _skill(**changes: Any) -> dict[str, Any]:
    return {"id": "read", "name": "Read", "description": "reads", "tags": ["docs"]} | changes


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"card": _card("nul\x00name")}, "name"),
        ({"card": _card("desc", description="has a \x00 in it")}, "description"),
        ({"card": _card("tags", skills=[_skill(tags=["t" * 201])])}, "tags"),
        ({"card": _card("skill-nul", skills=[_skill(id="re\x00ad")])}, "id"),
        ({"card": _card("example", skills=[_skill(examples=["an \x00 example"])])}, "examples"),
        ({"card": _card("twice", skills=[_skill(), _skill()])}, "unique"),
        ({"card": _card("provider", provider={"organization": "o" * 201, "url": "http://o/"})}, "organization"),
        ({"card": _card("lines\nname")}, "name"),
        ({"card": _card("model"), "model": {"name": "gemma\x00"}}, "model.name"),
        ({"card": _card("model"), "model": {"name": "gemma", "parameters": 2**64}}, "parameters"),
        ({"card": _card("id"), "agent_id": "reader-1\n"}, "agent_id"),
        ({"card": _card("url"), "url": "http://127.0.0.1/" + "x" * 2000}, "url"),
        ({"card": _card("url"), "url": "http://127.0.0.1/\x00"}, "url"),
        ({"card": _card("cost"), "cost": {"per_call": "inf"}}, "per_call"),
        ({"card": _card("big", skills=[_skill(id=f"s{i}", description="w" * 9_999) for i in range(30)])}, "searchable"),
    ],
)
async def test_strings_that_do_not_fit_their_columns_are_422(
    api: tuple[str, Registry], changes: dict[str, Any], field: str
) -> None:
    base, reg = api
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(f"{base}/agents", content=json.dumps(changes).encode(), headers=JSON)
        assert field in _one_line_error(resp, 422, "InvalidRequest")
        assert reg.count() == 0
        await _still_serving(http, base)


async def test_numbers_past_float_range_are_refused_at_the_boundary(api: tuple[str, Registry]) -> None:
    base, reg = api
    changes = {"card": _card("inf"), "skill_schemas": {"read": [{"maximum": "1e400"}, None]}}
    body = json.dumps(changes).replace('"1e400"', "1e400").encode()  # a JSON number that parses to infinity
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(f"{base}/agents", content=body, headers=JSON)
        assert "too large" in _one_line_error(resp, 400, "InvalidJSON")
        assert reg.count() == 0
        await _still_serving(http, base)


async def test_call_reports_and_status_bodies_are_validated(api: tuple[str, Registry]) -> None:
    base, reg = api
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(f"{base}/agents", json={"card": _card("reader"), "agent_id": "reader-1"})
        assert resp.status_code == 201
        for body in ({"success": True, "latency_s": -1}, {"success": "maybe", "latency_s": 1}, [1, 2], "x"):
            _one_line_error(await http.post(f"{base}/agents/reader-1/calls", json=body), 422, "InvalidRequest")
        resp = await http.post(f"{base}/agents/reader-1/heartbeat", headers=JSON)  # bodyless JSON POST is fine
        assert resp.status_code == 204
        assert reg.find("reader").status is HealthStatus.HEALTHY and reg.find("reader").stats.calls == 0
