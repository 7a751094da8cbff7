"""Calling A2A 0.3 agents with ``HttpAgentClient``: which client an agent gets, from its card or its interfaces.

``HttpAgentClient`` speaks 0.3 through ``agents.a2a_v03_binding.V03JsonRpcBinding``, registered in
``agents.client_bindings.BINDINGS`` as ``("JSONRPC", "0.3")``; ``HttpAgentClient.from_card_url`` and ``for_card``
pick it for a card whose first interface the client speaks is a 0.3 one (a 0.3 card reads as such:
``protocol.a2a_v03_card.card_from_v03``). ``client_for_interfaces`` does the same from a registry record's
interfaces (the orchestrator's case).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents.a2a_v03_binding import V03JsonRpcBinding
from agents.client import HttpAgentClient
from protocol.a2a import AgentCard, AgentInterface
from protocol.a2a_v03_card import card_from_v03, speaks_v03

__all__ = ["client_for_interfaces", "parse_any_card", "v03_client"]

_MAX_INTERFACES = 32  # a record's interfaces come from a card: bounded


def parse_any_card(data: Any) -> AgentCard:
    """A card as JSON, 1.0 or 0.3, as the 1.0 model (a 0.3 card's endpoint becomes a 0.3 interface)."""
    if not isinstance(data, dict):
        raise ValueError("an agent card is a JSON object")
    return AgentCard.model_validate(card_from_v03(data))


def v03_client(url: str, **kwargs: Any) -> HttpAgentClient:
    """An ``HttpAgentClient`` that speaks A2A 0.3 JSON-RPC to the endpoint ``url``; ``kwargs`` as for the client."""
    return HttpAgentClient(url, binding=V03JsonRpcBinding, **kwargs)


def client_for_interfaces(url: str, interfaces: Sequence[Mapping[str, Any]], **kwargs: Any) -> HttpAgentClient:
    """A client for the agent at ``url`` whose card declared ``interfaces`` (as JSON, e.g. a registry record's):
    A2A 0.3 when they declare 0.3 JSON-RPC and no 1.0 JSON-RPC, else 1.0 JSON-RPC; ``kwargs`` go to the client."""
    declared = [
        AgentInterface.model_validate(i)
        for i in list(interfaces)[:_MAX_INTERFACES]
        if isinstance(i, Mapping) and isinstance(i.get("url"), str)
    ]
    if declared and speaks_v03(AgentCard(name="-", description="", version="-", supported_interfaces=declared)):
        return v03_client(url, **kwargs)
    return HttpAgentClient(url, **kwargs)
