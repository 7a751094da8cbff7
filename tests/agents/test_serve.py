"""Serving: cards with caching headers, several agents in one process, the agent index."""

from __future__ import annotations

import httpx

from agents.examples import echo_agent
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from protocol.a2a import AgentCard


def test_card_is_cacheable_and_revalidates_with_etag() -> None:
    port = free_port()
    with serve_in_thread(create_app(echo_agent(), base_url=f"http://127.0.0.1:{port}"), port) as url:
        first = httpx.get(url + "/.well-known/agent-card.json")
        assert first.status_code == 200
        assert AgentCard.model_validate(first.json()).url == f"http://127.0.0.1:{port}/"
        assert "max-age=" in first.headers["cache-control"] and first.headers["last-modified"]
        again = httpx.get(url + "/.well-known/agent-card.json", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_several_agents_each_get_a_prefix_and_their_own_card() -> None:
    port = free_port()
    app = create_app([echo_agent("a"), echo_agent("b")], base_url=f"http://127.0.0.1:{port}")
    with serve_in_thread(app, port) as url:
        index = httpx.get(url + "/agents").json()["agents"]
        assert [entry["name"] for entry in index] == ["a", "b"]
        for entry in index:
            card = AgentCard.model_validate(httpx.get(entry["card"]).json())
            assert card.name == entry["name"] and card.url == f"{url}/agents/{entry['name']}/"
        missing = httpx.get(url + "/agents/nobody/.well-known/agent-card.json")
        assert missing.status_code == 404 and "nobody" in missing.json()["error"]


def test_no_network_blocks_everything_but_loopback() -> None:
    import socket

    import pytest

    from agents.testing import NetworkBlocked, no_network

    with no_network():
        with pytest.raises(NetworkBlocked, match="192.0.2.1"):
            socket.create_connection(("192.0.2.1", 80), timeout=1)
        port = free_port()
        with serve_in_thread(create_app(echo_agent(), base_url=f"http://127.0.0.1:{port}"), port) as url:
            assert httpx.get(url + "/.well-known/agent-card.json").status_code == 200
