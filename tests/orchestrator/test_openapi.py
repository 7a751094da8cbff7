"""The orchestrator's OpenAPI document: every route in it (and nothing else), scopes as the access rules say,
real responses valid against the documented schemas, and docs/api/ generated from it and up to date."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from jsonschema import Draft202012Validator

from agents.testing import serve_in_thread
from orchestrator.api import ACCESS_RULES, create_app
from orchestrator.api_docs import API_DOCS, api_pages
from orchestrator.openapi import orchestrator_document
from protocol.access import PUBLIC, AccessPolicy, route_paths
from registry.openapi import openapi_path
from tests.orchestrator.conftest import Behaviour, Platform, worker

pytestmark = pytest.mark.anyio


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, ops in document["paths"].items() for method in ops}


def served(app: Any) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every Starlette route of ``app`` ('*' routes answer GET, POST and DELETE)."""
    found = set()
    for methods, path in route_paths(app.app.routes):
        for method in methods - {"HEAD"}:
            names = ("get", "post", "delete") if method == "*" else (method.lower(),)
            found |= {(name, openapi_path(path)) for name in names}
    return found


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for ``schema`` whose ``#/components/...`` references resolve in ``document``."""
    return Draft202012Validator({**schema, "components": document["components"]})


def response_schema(document: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    responses = document["paths"][path][method]["responses"]
    reply = responses.get(str(status)) or responses["default"]
    return next(iter(reply["content"].values()))["schema"]


def check(document: dict[str, Any], method: str, path: str, response: httpx.Response) -> Any:
    """Assert ``response`` is documented for (method, path) and its JSON body fits the documented schema."""
    body = response.json()
    errors = sorted(
        validator(document, response_schema(document, method, path, response.status_code)).iter_errors(body),
        key=str,
    )
    assert not errors, f"{method.upper()} {path} {response.status_code}: {errors[0].message} at {list(errors[0].path)}"
    return body


@pytest.fixture
def app(local_platform: Platform) -> Any:
    local_platform.add(worker("w1"))
    local_platform.add(worker("broken", Behaviour(mode="fail"), skill="broken"))
    return create_app(local_platform.orchestrator())


@pytest.fixture
def server(app: Any) -> Iterator[str]:
    with serve_in_thread(app) as url:
        yield url


def test_every_route_is_documented_and_nothing_else(app: Any) -> None:
    document = orchestrator_document()
    assert served(app) == documented(document)


def test_scopes_and_security_follow_the_access_rules() -> None:
    document = orchestrator_document()
    policy = AccessPolicy(ACCESS_RULES)
    for path, ops in document["paths"].items():
        sample = path.replace("{run_id}", "x").replace("{path}", "app.js")
        for method, op in ops.items():
            scope = policy.rule(method.upper(), sample).scope  # type: ignore[union-attr]
            assert op["x-scope"] == scope, (method, path)
            assert op["security"] == ([] if scope == PUBLIC else [{"bearerAuth": [scope]}]), (method, path)
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")


def test_the_document_is_well_formed() -> None:
    document = orchestrator_document()
    assert document["openapi"] == "3.1.0"
    text = json.dumps(document)
    for name in {ref.split('"')[0] for ref in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert name in document["components"]["schemas"], name
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    body = document["paths"]["/runs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert validator(document, body).is_valid({"tasks": [{"id": "a", "skill": "work", "input": {"text": "x"}}]})
    assert not validator(document, body).is_valid({"tasks": "nope"})


async def test_real_responses_fit_the_documented_schemas(server: str) -> None:
    document = orchestrator_document()
    graph = {
        "tasks": [
            {"id": "a", "skill": "work", "input": {"text": "x"}},
            {
                "id": "b",
                "skill": "broken",
                "input": {"text": {"$ref": "a.output.text"}},
                "constraints": {"max_attempts": 1},
            },
        ]
    }
    async with httpx.AsyncClient(base_url=server, timeout=20) as http:
        with anyio.fail_after(30):
            served_document = (await http.get("/openapi.json")).json()
            submitted = check(document, "post", "/runs", await http.post("/runs", json=graph))
            run_id = submitted["id"]
            frames: list[dict[str, Any]] = []
            async with http.stream("GET", f"/runs/{run_id}/events") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                async for line in stream.aiter_lines():
                    if line.startswith("data:"):
                        frames.append(json.loads(line[5:]))
            record = check(document, "get", "/runs/{run_id}", await http.get(f"/runs/{run_id}"))
            check(document, "get", "/runs", await http.get("/runs"))
            check(document, "get", "/agents", await http.get("/agents"))
            check(document, "get", "/health", await http.get("/health"))
            check(document, "post", "/runs/{run_id}/cancel", await http.post(f"/runs/{run_id}/cancel", json={}))
            check(document, "get", "/runs", await http.get("/runs", params={"kind": "negotiation"}))
            missing = await http.get("/runs/nope")
            bad = await http.post("/runs", json={"input": {}})
            bad_negotiation = await http.post("/negotiations", json={"protocol": "alternating", "parties": []})
    assert served_document == json.loads(json.dumps(document))
    assert record["status"] == "failed" and {t["status"] for t in record["tasks"]} == {"succeeded", "failed"}
    event_schema = validator(document, response_schema(document, "get", "/runs/{run_id}/events", 200))
    assert frames and all(event_schema.is_valid(frame) for frame in frames)
    assert missing.status_code == 404 and check(document, "get", "/runs/{run_id}", missing)["error"]["type"]
    assert bad.status_code == 400 and check(document, "post", "/runs", bad)["error"]["message"]
    assert bad_negotiation.status_code == 400
    assert check(document, "post", "/negotiations", bad_negotiation)["error"]["type"] == "InvalidRequest"


def test_committed_api_reference_is_up_to_date() -> None:
    for name, text in api_pages().items():
        path = API_DOCS / name
        assert path.is_file() and path.read_text() == text, (
            f"docs/api/{name} is out of date with the OpenAPI documents; run: python -m orchestrator.openapi --markdown"
        )
