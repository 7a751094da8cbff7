"""The shared HTTP boundary: host, origin, content type, body size, body time and JSON checks, in one place."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from protocol.boundary import NO_BODY, Boundary, BoundaryPolicy, json_depth, request_json

pytestmark = pytest.mark.anyio


def _app(policy: BoundaryPolicy | None = None) -> Any:
    async def echo(request: Request) -> JSONResponse:
        body = request_json(request)
        raw = await request.body()  # the replayed body is still readable by handlers that want bytes
        return JSONResponse({"json": None if body is NO_BODY else body, "bytes": len(raw)})

    routes = [Route("/echo", echo, methods=["GET", "POST", "PUT"])]
    return Boundary(Starlette(routes=routes), policy or BoundaryPolicy(max_body_bytes=1000, max_json_depth=8))


async def _post(app: Any, body: bytes, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        return await client.post("/echo", content=body, headers=headers)


async def test_json_body_is_parsed_once_and_handed_on() -> None:
    resp = await _post(_app(), b'{"a": [1, 2]}', **{"content-type": "application/json"})
    assert resp.status_code == 200
    assert resp.json() == {"json": {"a": [1, 2]}, "bytes": 13}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""])
async def test_post_without_json_content_type_is_415(content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    resp = await _post(_app(), b'{"a": 1}', **headers)
    assert resp.status_code == 415
    assert resp.json()["error"]["type"] == "UnsupportedMediaType"
    assert "application/json" in resp.json()["error"]["message"]


async def test_json_suffix_types_are_json() -> None:
    resp = await _post(_app(), b"{}", **{"content-type": "application/a2a+json; charset=utf-8"})
    assert resp.status_code == 200


async def test_foreign_host_is_421_and_foreign_origin_403() -> None:
    app = _app()
    resp = await _post(app, b"{}", **{"content-type": "application/json", "host": "evil.example.com"})
    assert resp.status_code == 421
    resp = await _post(app, b"{}", **{"content-type": "application/json", "origin": "http://evil.example.com"})
    assert resp.status_code == 403
    assert "evil.example.com" in resp.json()["error"]["message"]
    resp = await _post(app, b"{}", **{"content-type": "application/json", "origin": "null"})
    assert resp.status_code == 403
    same_origin = await _post(app, b"{}", **{"content-type": "application/json", "origin": "http://localhost:8000"})
    assert same_origin.status_code == 200


def test_policy_for_bind_adds_the_public_name_only() -> None:
    policy = BoundaryPolicy.for_bind("0.0.0.0", 8000, public_url="https://agents.example.org", allow_hosts=["h1:9"])
    assert policy.host_allowed("agents.example.org")
    assert policy.host_allowed("localhost:1234")
    assert policy.host_allowed("[::1]:8000")
    assert policy.host_allowed("h1:9") and not policy.host_allowed("h1:10")
    assert not policy.host_allowed("evil.example.com:8000")
    assert not policy.host_allowed(None)
    assert policy.origin_allowed("https://agents.example.org")
    assert not policy.origin_allowed("https://agents.example.org.evil.com")


async def test_declared_and_streamed_bodies_over_the_cap_are_413() -> None:
    app = _app()
    resp = await _post(app, b" " * 2000, **{"content-type": "application/json"})
    assert resp.status_code == 413
    assert "1000 bytes" in resp.json()["error"]["message"]

    async def chunks() -> Any:  # no Content-Length: the cap holds while streaming
        for _ in range(10):
            yield b" " * 300

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        resp = await client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"[" * 9 + b"]" * 9, "JSONTooDeep"),
        (b"[" * 100_000, "JSONTooDeep"),
        (b'{"a": "\xff"}', "InvalidJSON"),
        (b"{not json", "InvalidJSON"),
        (b'{"a": [NaN]}', "InvalidJSON"),
        (b'{"a": [1e400]}', "InvalidJSON"),
        (b"-1e400", "InvalidJSON"),
    ],
)
async def test_bad_json_is_400_naming_the_problem(body: bytes, kind: str) -> None:
    app = _app(BoundaryPolicy(max_body_bytes=200_000, max_json_depth=8))
    resp = await _post(app, body, **{"content-type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == kind


async def test_bodyless_post_and_get_pass() -> None:
    resp = await _post(_app(), b"", **{"content-type": "application/json"})
    assert resp.json() == {"json": None, "bytes": 0}
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        assert (await client.get("/echo")).status_code == 200


def test_json_depth_counts_containers_and_stops_early() -> None:
    assert json_depth(1, 5) == 0
    assert json_depth({"a": [1, {"b": []}]}, 10) == 4
    deep: Any = []
    for _ in range(1000):
        deep = [deep]
    assert json_depth(deep, 10) == 11
    assert json.dumps(json_depth([[], [[[]]]], 10)) == "4"


def test_request_json_needs_the_boundary() -> None:
    with pytest.raises(RuntimeError, match="Boundary"):
        request_json({"type": "http"})
