"""OpenAPI 3.1 documents for scaleout's HTTP APIs, built from their routes, pydantic models and access rules.

``build_document`` turns a list of ``Operation`` (method, path, request body and responses as Python types) into
an OpenAPI document: schemas from pydantic, the bearer-JWT security scheme, and each operation's scope taken from
the surface's ``ACCESS_RULES``. ``registry_document`` is the registry API's; the orchestrator's
(``orchestrator.openapi``) is built the same way, and ``orchestrator.api_docs`` renders both as docs/api/ pages.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from protocol.access import PUBLIC, AccessPolicy, Rule

__all__ = [
    "Operation",
    "Param",
    "Reply",
    "ErrorBody",
    "ErrorDetail",
    "build_document",
    "query_params",
    "openapi_path",
    "registry_operations",
    "registry_document",
    "BEARER",
    "REGISTRY_SCOPES",
    "main",
]

BEARER = "bearerAuth"
_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


class ErrorDetail(BaseModel):
    """What went wrong: a short kind and a one-line message saying how to fix it."""

    type: str = Field(description="the kind of error, e.g. InvalidRequest, RunNotFound, InsufficientScope")
    message: str = Field(description="one line: what was wrong and how to fix it")


class ErrorBody(BaseModel):
    """The error body of every scaleout REST surface: ``{"error": {"type", "message"}}``."""

    error: ErrorDetail


@dataclass(frozen=True)
class Param:
    """A query (or header) parameter of an operation."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    where: str = "query"
    required: bool = False
    defs: dict[str, Any] = field(default_factory=dict, compare=False)  # schemas its ``schema`` refers to


@dataclass(frozen=True)
class Reply:
    """One documented response: HTTP status, description, body type (None: no body) and media type."""

    status: int
    description: str
    body: Any = None
    media: str = "application/json"


@dataclass(frozen=True)
class Operation:
    """One route of an API, as documented: ``path`` is the Starlette template (``{rest:path}`` allowed)."""

    method: str
    path: str
    summary: str
    tag: str
    replies: tuple[Reply, ...]
    body: Any = None
    params: tuple[Param, ...] = ()
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def openapi_path(template: str) -> str:
    """The OpenAPI form of a Starlette path template (``/ui/{path:path}`` -> ``/ui/{path}``)."""
    return _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", template)


def query_params(
    model: type[BaseModel], names: dict[str, str], descriptions: dict[str, str] | None = None
) -> tuple[Param, ...]:
    """Query parameters from a pydantic model's fields (``names``: parameter -> field); list fields repeat."""
    schema = model.model_json_schema(ref_template=_REF)
    defs = schema.get("$defs", {})
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    out = []
    for param, field_name in names.items():
        prop = dict(properties[field_name])
        prop.pop("title", None)
        text = (descriptions or {}).get(param) or prop.pop("description", "")
        out.append(Param(param, prop, text, required=field_name in required, defs=defs))
    return tuple(out)


def _scope(rules: Sequence[Rule], method: str, path: str) -> str | None:
    sample = re.sub(r"\{[^}:]+(:path)?\}", "x", path) or "/"
    rule = AccessPolicy(rules).rule("POST" if method == "*" else method, sample)
    return None if rule is None else rule.scope


def build_document(
    *,
    title: str,
    version: str,
    description: str,
    operations: Sequence[Operation],
    rules: Sequence[Rule],
    scopes: dict[str, str],
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``; raises ValueError for an operation no rule covers."""
    types: list[tuple[tuple[int, str], JsonSchemaMode, TypeAdapter[Any]]] = []
    for i, op in enumerate(operations):
        if op.body is not None:
            types.append(((i, "body"), "validation", TypeAdapter(op.body)))
        for reply in op.replies:
            if reply.body is not None:
                types.append(((i, str(reply.status)), "serialization", TypeAdapter(reply.body)))
    types.append(((-1, "error"), "serialization", TypeAdapter(ErrorBody)))
    schemas, defs = TypeAdapter.json_schemas(types, ref_template=_REF)
    components = dict(defs.get("$defs", {}))
    for op in operations:
        for p in op.params:
            for name, schema in p.defs.items():
                components.setdefault(name, schema)
    error_ref = schemas[((-1, "error"), "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for i, op in enumerate(operations):
        scope = _scope(rules, op.method, op.path)
        if scope is None:
            raise ValueError(f"{op.method} {op.path} has no access rule; add one to the surface's ACCESS_RULES")
        entry: dict[str, Any] = {
            "operationId": _operation_id(op),
            "summary": op.summary,
            "tags": [op.tag],
            "security": [] if scope == PUBLIC else [{BEARER: [scope]}],
            "x-scope": scope,
        }
        if op.description:
            entry["description"] = op.description
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PATH_PARAM.findall(op.path)
        ]
        params += [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required,
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in op.params
        ]
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schemas[((i, "body"), "validation")]}},
            }
        responses: dict[str, Any] = {}
        for reply in op.replies:
            response: dict[str, Any] = {"description": reply.description}
            if reply.body is not None:
                response["content"] = {reply.media: {"schema": schemas[((i, str(reply.status)), "serialization")]}}
            elif reply.media != "application/json":
                response["content"] = {reply.media: {"schema": {"type": "string"}}}
            responses[str(reply.status)] = response
        if scope != PUBLIC:
            responses.setdefault("401", {"description": "no token, or a token this server does not accept"})
            responses.setdefault("403", {"description": f"the token lacks the scope {scope!r}"})
        for status in ("401", "403"):
            if status in responses and "content" not in responses[status]:
                responses[status]["content"] = {"application/json": {"schema": error_ref}}
        responses["default"] = {
            "description": "any other refusal (Host, Origin, content type, size, JSON depth) or error",
            "content": {"application/json": {"schema": error_ref}},
        }
        entry["responses"] = responses
        entry.update(op.extra)
        methods = ["get", "post", "delete"] if op.method == "*" else [op.method.lower()]
        for method in methods:
            paths.setdefault(openapi_path(op.path), {})[method] = (
                entry if method == methods[0] else {**entry, "operationId": f"{entry['operationId']}_{method}"}
            )
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "a token from 'scaleout auth token --scope ...'; on a loopback server with no keys "
                    "no token is needed. Scopes: " + "; ".join(f"{k}: {v}" for k, v in scopes.items()),
                }
            },
        },
    }


def _operation_id(op: Operation) -> str:
    words = re.findall(r"[a-z0-9]+", op.path.lower().replace(":path", ""))
    return "_".join([op.method.lower() if op.method != "*" else "any", *words]) or op.method.lower()


# -- the registry's document --------------------------------------------------------------------------------


def registry_operations() -> list[Operation]:
    """Every route of the registry API, documented."""
    from registry import api
    from registry.models import AgentRecord, AgentVersion, Registration
    from registry.schemas import (
        ListParams,
        RecordCallRequest,
        RegisterMcpRequest,
        RegisterUrlRequest,
        SearchParams,
        StatusRequest,
    )

    class RegistryHealth(BaseModel):
        """The registry is up; how many agents it holds."""

        ok: bool
        agents: int

    bad = Reply(422, "the body, a query parameter or the path id is invalid (one-line reason)", ErrorBody)
    missing = Reply(404, "no agent with that id or name", ErrorBody)
    owner = Reply(403, "the agent belongs to another principal (only it or an admin may change it)", ErrorBody)
    fetch = Reply(502, "the card or the MCP server could not be fetched or described", ErrorBody)
    conflict = Reply(409, "the name is taken by an agent of another principal", ErrorBody)
    agents = "agents"
    search_docs = {
        "skill": "a skill id the agent must have",
        "tag": "a tag (repeat for several; any matches unless all_tags)",
        "q": "free-text words matched against names, descriptions and skills",
        "status": "health statuses to include (repeat; default healthy; 'any' for all)",
    }
    return [
        Operation(
            "GET", "/healthz", "Liveness and the number of agents", "health", (Reply(200, "up", RegistryHealth),)
        ),
        Operation(
            "GET",
            "/agents",
            "List agents, ordered by name",
            agents,
            (Reply(200, "a page of agents", list[AgentRecord]), bad),
            params=query_params(ListParams, api._LIST, {"status": "health statuses to include (repeat)"}),
        ),
        Operation(
            "POST",
            "/agents",
            "Register an agent from its card (idempotent)",
            agents,
            (Reply(201, "the agent as registered", AgentRecord), bad, conflict),
            body=Registration,
        ),
        Operation(
            "POST",
            "/agents/register-url",
            "Fetch the agent card at a URL and register it",
            agents,
            (Reply(201, "the agent as registered", AgentRecord), bad, conflict, fetch),
            body=RegisterUrlRequest,
        ),
        Operation(
            "POST",
            "/agents/register-mcp",
            "Describe an MCP server (Streamable HTTP) and register its tools as skills",
            agents,
            (Reply(201, "the server as registered", AgentRecord), bad, conflict, fetch),
            body=RegisterMcpRequest,
        ),
        Operation(
            "GET",
            "/agents/{agent_id}",
            "One agent by id or name",
            agents,
            (Reply(200, "the agent", AgentRecord), missing),
        ),
        Operation(
            "DELETE",
            "/agents/{agent_id}",
            "Deregister an agent",
            agents,
            (Reply(204, "deregistered"), missing, owner),
        ),
        Operation(
            "POST",
            "/agents/{agent_id}/heartbeat",
            "Record that the agent is alive",
            agents,
            (Reply(204, "recorded"), missing, owner),
        ),
        Operation(
            "PUT",
            "/agents/{agent_id}/status",
            "Set an agent's health status by hand (e.g. draining)",
            agents,
            (Reply(204, "set"), missing, owner, bad),
            body=StatusRequest,
        ),
        Operation(
            "POST",
            "/agents/{agent_id}/calls",
            "Report one observed call (success, latency, tokens)",
            agents,
            (Reply(204, "recorded"), missing, bad),
            body=RecordCallRequest,
        ),
        Operation(
            "GET",
            "/agents/{agent_id}/history",
            "The agent's card versions, oldest first",
            agents,
            (Reply(200, "its versions", list[AgentVersion]), missing),
        ),
        Operation(
            "GET",
            "/search",
            "Agents matching a skill, tags and words, best first",
            "search",
            (Reply(200, "matching agents, best first", list[AgentRecord]), bad),
            params=query_params(SearchParams, api._SEARCH, search_docs),
        ),
        Operation(
            "GET",
            "/openapi.json",
            "This document",
            "meta",
            (Reply(200, "the OpenAPI 3.1 document of this API", dict[str, Any]),),
        ),
    ]


REGISTRY_SCOPES = {
    "registry:read": "list, get and search agents",
    "registry:write": "register, change and remove agents (one's own; any with admin)",
    "registry:report": "report observed calls",
    "admin": "act on every principal's agents",
}


@functools.cache
def registry_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the registry HTTP API (``GET /openapi.json``; built once, do not change it)."""
    from registry.api import ACCESS_RULES

    return build_document(
        title="scaleout registry",
        version="1",
        description="Who can do what, how well, how fast, at what cost: register agents and MCP servers, list, "
        'search, report calls. Errors are {"error": {"type", "message"}}.',
        operations=registry_operations(),
        rules=ACCESS_RULES,
        scopes=REGISTRY_SCOPES,
    )


def main() -> None:
    """``python -m registry.openapi`` prints the registry's OpenAPI document as JSON."""
    print(json.dumps(registry_document(), indent=2))


if __name__ == "__main__":
    main()
