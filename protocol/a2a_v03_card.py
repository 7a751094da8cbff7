"""A2A 0.3 agent cards: read one as a 1.0 card, write a 1.0 card's 0.3 view, and pick the interface to call.

A 0.3 card names its endpoint with ``url``, ``preferredTransport`` and ``protocolVersion`` (plus
``additionalInterfaces``), where 1.0 lists ``supportedInterfaces``; security schemes are OpenAPI-shaped
(``{"type": "http", "scheme": "bearer"}``) where 1.0 wraps each in a named field (``httpAuthSecurityScheme``), and
requirements are ``[{name: [scopes]}]`` where 1.0 has ``[{"schemes": {name: {"list": [scopes]}}}]``.
A 1.0 agent that also speaks 0.3 declares a second interface with ``protocolVersion`` 0.3 (``with_v03_interface``).
"""

from __future__ import annotations

from typing import Any

from protocol.a2a import PROTOCOL_VERSION, AgentCard, AgentInterface
from protocol.a2a_v03 import V03_PROTOCOL_VERSION, V03_VERSION

__all__ = [
    "JSONRPC",
    "is_v03_card",
    "card_from_v03",
    "card_to_v03",
    "with_v03_interface",
    "jsonrpc_interface",
    "speaks_v03",
]

JSONRPC = "JSONRPC"
_MAX_INTERFACES = 32  # a card comes from the network: bounded

# 1.0 field of a security scheme -> the 0.3 ``type``; and the fields each renames (1.0 name -> 0.3 name)
_SCHEME_TYPES = {
    "httpAuthSecurityScheme": "http",
    "apiKeySecurityScheme": "apiKey",
    "oauth2SecurityScheme": "oauth2",
    "openIdConnectSecurityScheme": "openIdConnect",
    "mtlsSecurityScheme": "mutualTLS",
}
_SCHEME_FIELDS_RENAMED = {"location": "in"}


def _major_minor(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


def is_v03_card(data: Any) -> bool:
    """Whether a card (as JSON) is a 0.3 card: no ``supportedInterfaces``, an endpoint ``url`` instead."""
    return isinstance(data, dict) and not data.get("supportedInterfaces") and isinstance(data.get("url"), str)


def _scheme_from_v03(scheme: Any) -> Any:
    if not isinstance(scheme, dict) or any(k in scheme for k in _SCHEME_TYPES):
        return scheme  # already 1.0 (or a merged card), or nothing we know: kept as given
    kind = next((k for k, t in _SCHEME_TYPES.items() if t == scheme.get("type")), None)
    if kind is None:
        return scheme
    inner = {("location" if k == "in" else k): v for k, v in scheme.items() if k != "type"}
    return {kind: inner}


def _scheme_to_v03(scheme: Any) -> Any:
    if not isinstance(scheme, dict):
        return scheme
    for kind, type_ in _SCHEME_TYPES.items():
        inner = scheme.get(kind)
        if isinstance(inner, dict):
            legacy = {_SCHEME_FIELDS_RENAMED.get(k, k): v for k, v in inner.items()}
            return {**scheme, "type": type_, **legacy}
    return scheme


def card_from_v03(data: dict[str, Any]) -> dict[str, Any]:
    """A card as JSON, read as a 1.0 card (JSON): a 0.3 card's ``url``/``preferredTransport``/
    ``additionalInterfaces`` become ``supportedInterfaces`` (protocol version 0.3), its security and extended-card
    flag their 1.0 forms. A card that already lists ``supportedInterfaces`` comes back unchanged."""
    if not is_v03_card(data):
        return data
    version = str(data.get("protocolVersion") or V03_PROTOCOL_VERSION)[:20]
    first = {"url": data["url"], "protocolBinding": data.get("preferredTransport") or JSONRPC}
    interfaces = [first]
    for extra in (data.get("additionalInterfaces") or [])[:_MAX_INTERFACES]:
        if isinstance(extra, dict) and isinstance(extra.get("url"), str):
            candidate = {"url": extra["url"], "protocolBinding": str(extra.get("transport") or JSONRPC)}
            if candidate not in interfaces:
                interfaces.append(candidate)
    card = {k: v for k, v in data.items() if k not in ("security", "supportsAuthenticatedExtendedCard")}
    card["supportedInterfaces"] = [{**i, "protocolVersion": version} for i in interfaces]
    schemes = data.get("securitySchemes")
    if isinstance(schemes, dict):
        card["securitySchemes"] = {name: _scheme_from_v03(s) for name, s in schemes.items()}
    security = data.get("security")
    if isinstance(security, list) and "securityRequirements" not in data:
        card["securityRequirements"] = [
            {"schemes": {name: {"list": list(scopes or [])} for name, scopes in requirement.items()}}
            for requirement in security
            if isinstance(requirement, dict)
        ]
    if data.get("supportsAuthenticatedExtendedCard"):
        card["capabilities"] = {**(data.get("capabilities") or {}), "extendedAgentCard": True}
    return card


def card_to_v03(card: dict[str, Any]) -> dict[str, Any]:
    """The 0.3 view of a 1.0 card (JSON): the 1.0 fields with the 0.3 ones beside them (``url``,
    ``preferredTransport``, ``protocolVersion``, ``additionalInterfaces``, ``security``, OpenAPI-shaped security
    schemes, ``supportsAuthenticatedExtendedCard``), so a 0.3 client and a 1.0 client both read it.

    The main interface is the first one declared with protocol version 0.3, else the first JSON-RPC one."""
    interfaces = [i for i in card.get("supportedInterfaces") or [] if isinstance(i, dict) and i.get("url")]
    if not interfaces:
        return dict(card)
    legacy = [i for i in interfaces if _major_minor(i.get("protocolVersion", "")) == V03_VERSION]
    main = (legacy or [i for i in interfaces if i.get("protocolBinding") == JSONRPC] or interfaces)[0]
    view = dict(card)
    view["url"] = main["url"]
    view["preferredTransport"] = main.get("protocolBinding") or JSONRPC
    view["protocolVersion"] = V03_PROTOCOL_VERSION
    seen: list[tuple[str, str]] = []
    for interface in legacy or interfaces:
        pair = (interface["url"], interface.get("protocolBinding") or JSONRPC)
        if pair not in seen:
            seen.append(pair)
    view["additionalInterfaces"] = [{"url": url, "transport": transport} for url, transport in seen]
    schemes = card.get("securitySchemes")
    if isinstance(schemes, dict) and schemes:
        view["securitySchemes"] = {name: _scheme_to_v03(s) for name, s in schemes.items()}
    requirements = card.get("securityRequirements")
    if isinstance(requirements, list) and requirements:
        view["security"] = [
            {name: list((scopes or {}).get("list") or []) for name, scopes in (r.get("schemes") or {}).items()}
            for r in requirements
            if isinstance(r, dict)
        ]
    if (card.get("capabilities") or {}).get("extendedAgentCard"):
        view["supportsAuthenticatedExtendedCard"] = True
    return view


def with_v03_interface(card: AgentCard) -> AgentCard:
    """``card`` declaring that its 1.0 JSON-RPC endpoint also answers 0.3: a JSON-RPC interface at the same URL
    with protocol version 0.3, after the others (1.0 clients keep choosing the 1.0 one)."""
    current = jsonrpc_interface(card)
    if current is None or _major_minor(current.protocol_version) != PROTOCOL_VERSION:
        return card
    if any(_major_minor(i.protocol_version) == V03_VERSION for i in card.supported_interfaces):
        return card
    legacy = AgentInterface(url=current.url, protocol_binding=JSONRPC, protocol_version=V03_VERSION)
    return card.model_copy(update={"supported_interfaces": [*card.supported_interfaces, legacy]})


def jsonrpc_interface(card: AgentCard) -> AgentInterface | None:
    """The JSON-RPC interface a client calls: the first 1.0 one, else the first 0.3 one, else None."""
    candidates = [i for i in card.supported_interfaces if i.protocol_binding == JSONRPC]
    for version in (PROTOCOL_VERSION, V03_VERSION):
        for interface in candidates:
            if _major_minor(interface.protocol_version) == version:
                return interface
    return None


def speaks_v03(card: AgentCard) -> bool:
    """Whether a client should speak 0.3 to the agent of ``card``: it declares a 0.3 JSON-RPC interface and no
    1.0 one."""
    interface = jsonrpc_interface(card)
    return interface is not None and _major_minor(interface.protocol_version) == V03_VERSION
