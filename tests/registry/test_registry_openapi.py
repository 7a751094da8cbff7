"""The registry's OpenAPI document: every route in it (and nothing else), scopes as the access rules say, and
real responses valid against the documented schemas."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from jsonschema import Draft202012Validator

from agents.testing import serve_in_thread
from protocol.access import PUBLIC, AccessPolicy, route_paths
from registry import Registry
from registry.api import ACCESS_RULES, create_app
from registry.models import Registration
from registry.openapi import openapi_path, registry_document
from tests.registry.conftest import make_card


def check(document: dict[str, Any], method: str, path: str, response: httpx.Response) -> Any:
    """Assert ``response``'s status is documented for (method, path) and its body fits the documented schema."""
    responses = document["paths"][path][method]["responses"]
    assert str(response.status_code) in responses, f"{method} {path} answered undocumented {response.status_code}"
    reply = responses[str(response.status_code)]
    if "content" not in reply:
        assert not response.content
        return None
    schema = next(iter(reply["content"].values()))["schema"]
    body = response.json()
    errors = list(Draft202012Validator({**schema, "components": document["components"]}).iter_errors(body))
    assert not errors, f"{method.upper()} {path}: {errors[0].message} at {list(errors[0].path)}"
    return body


def test_every_route_is_documented_and_nothing_else(tmp_path: Any) -> None:
    app = create_app(f"sqlite:///{tmp_path / 'r.db'}")
    routes = {(m.lower(), openapi_path(p)) for methods, p in route_paths(app.app.routes) for m in methods - {"HEAD"}}
    document = registry_document()
    assert routes == {(m, p) for p, ops in document["paths"].items() for m in ops}
    policy = AccessPolicy(ACCESS_RULES)
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            scope = policy.rule(method.upper(), path.replace("{agent_id}", "x")).scope  # type: ignore[union-attr]
            assert op["x-scope"] == scope
            assert op["security"] == ([] if scope == PUBLIC else [{"bearerAuth": [scope]}])
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


@pytest.mark.anyio
async def test_real_responses_fit_the_documented_schemas(registry: Registry) -> None:
    document = registry_document()
    registration = Registration(card=make_card("reader", skills=[("parse", ["finance"])]), agent_id="reader-1")
    body = registration.model_dump(mode="json", exclude={"card"}) | {"card": registration.card.wire()}
    with serve_in_thread(create_app(registry)) as api:
        async with httpx.AsyncClient(base_url=api, timeout=20) as http:
            with anyio.fail_after(30):
                served = (await http.get("/openapi.json")).json()
                created = check(document, "post", "/agents", await http.post("/agents", json=body))
                check(
                    document,
                    "post",
                    "/agents/{agent_id}/calls",
                    await http.post("/agents/reader-1/calls", json={"success": True, "latency_s": 0.2, "tokens": 3}),
                )
                listed = check(document, "get", "/agents", await http.get("/agents"))
                one = check(document, "get", "/agents/{agent_id}", await http.get("/agents/reader-1"))
                found = check(document, "get", "/search", await http.get("/search", params={"tag": "finance"}))
                check(document, "get", "/agents/{agent_id}/history", await http.get("/agents/reader-1/history"))
                check(document, "get", "/healthz", await http.get("/healthz"))
                check(
                    document,
                    "put",
                    "/agents/{agent_id}/status",
                    await http.put("/agents/reader-1/status", json={"status": "draining"}),
                )
                missing = check(document, "get", "/agents/{agent_id}", await http.get("/agents/nobody"))
                invalid = check(document, "get", "/search", await http.get("/search", params={"limit": "0"}))
                check(document, "delete", "/agents/{agent_id}", await http.delete("/agents/reader-1"))
    assert served == json.loads(json.dumps(document))
    assert created["id"] == one["id"] == "reader-1" and [a["id"] for a in listed] == ["reader-1"]
    assert [a["id"] for a in found] == ["reader-1"] and one["stats"]["calls"] == 1
    assert missing["error"]["type"] == "AgentNotFound" and invalid["error"]["type"] == "InvalidQuery"
