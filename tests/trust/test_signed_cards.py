"""Signed Agent Cards: agents sign and publish their key, the registry verifies on add and refresh, pins the key,
flags a rotation, and the router can keep to verified agents. Interop both ways with the a2a-sdk's signing code."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from a2a.types import AgentCard as SdkCard
from a2a.utils.signing import create_agent_card_signer, create_signature_verifier
from google.protobuf.json_format import MessageToDict, ParseDict
from jwt import PyJWK
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from agents.examples import echo_agent
from agents.serve import JWKS_PATH, create_app
from agents.testing import free_port, serve_in_thread
from orchestrator.cli import build_parser, serve_parts
from orchestrator.router import Router
from orchestrator.spec import TaskSpec
from protocol.a2a import AGENT_CARD_PATH
from protocol.auth import SigningKey
from protocol.signing import SignatureError, canonical_json, card_payload, sign_card, verify_card
from registry.discovery import register_url
from registry.health import HealthChecker
from registry.store import Registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    reg = Registry(db_url)
    yield reg
    reg.close()


@contextmanager
def signed_agent(name: str, key: SigningKey | None, port: int | None = None) -> Iterator[str]:
    """Serve the echo agent ``name`` with its card signed by ``key``; yields the base URL."""
    port = port or free_port()
    app = create_app(echo_agent(name), f"http://127.0.0.1:{port}", signing_key=key)
    with serve_in_thread(app, port) as base:
        yield base


@contextmanager
def documents(card: dict[str, Any], jwks: dict[str, Any] | None, port: int) -> Iterator[str]:
    """Serve a fixed card (and JWKS) as given: for cards crafted by hand or by the a2a-sdk."""

    async def card_endpoint(_: Any) -> JSONResponse:
        return JSONResponse(card)

    async def jwks_endpoint(_: Any) -> JSONResponse:
        return JSONResponse(jwks or {"keys": []})

    app = Starlette(routes=[Route(AGENT_CARD_PATH, card_endpoint), Route(JWKS_PATH, jwks_endpoint)])
    with serve_in_thread(app, port) as base:
        yield base


def plain_card(name: str, port: int) -> dict[str, Any]:
    """The unsigned card the echo agent ``name`` would serve on ``port``."""
    return echo_agent(name).card(f"http://127.0.0.1:{port}/").wire()


def test_jcs_canonical_form() -> None:
    assert canonical_json({"b": 1.0, "a": [1e-7, 1e21, 0.5, "é", None, True]}) == (
        '{"a":[1e-7,1e+21,0.5,"é",null,true],"b":1}'.encode()
    )
    assert canonical_json({"\u20ac": 1, "\U0001f600": 2, "a": 3}) == '{"a":3,"€":1,"😀":2}'.encode()


async def test_a_signed_agent_verifies_in_the_registry_and_publishes_its_key(registry: Registry) -> None:
    key = SigningKey.generate()
    with signed_agent("signer", key) as base:
        import httpx

        async with httpx.AsyncClient() as client:
            served = (await client.get(base + AGENT_CARD_PATH)).json()
            jwks = (await client.get(base + JWKS_PATH)).json()
        record = await register_url(registry, base)
    assert jwks == {"keys": [key.jwk()]}
    assert len(served["signatures"]) == 1
    assert record.trust.verified and record.trust.kid == key.kid and record.trust.trusted
    assert record.trust.fingerprint is not None and record.trust.fingerprint.startswith(key.kid)
    assert [e.kind for e in registry.key_events(record.id)] == ["pinned"]


async def test_an_unsigned_agent_is_registered_unverified(registry: Registry) -> None:
    with signed_agent("plain", None) as base:
        record = await register_url(registry, base)
    assert not record.trust.verified and record.trust.error == "the card is not signed"


async def test_a_card_served_with_another_keys_signature_is_rejected(registry: Registry) -> None:
    port = free_port()
    mine, other = SigningKey.generate(), SigningKey.generate()
    jku = f"http://127.0.0.1:{port}{JWKS_PATH}"
    card = plain_card("forged", port)
    # signed by ``other`` over another card, carried by this one: the payload differs
    borrowed = sign_card(plain_card("someone-else", port), other, jku=jku)["signatures"]
    with documents({**card, "signatures": borrowed}, {"keys": [other.jwk()]}, port) as base:
        record = await register_url(registry, base)
    assert not record.trust.verified
    assert "does not verify" in (record.trust.error or "")
    # signed by ``mine`` but the agent's JWKS publishes only ``other``: the key named is not the agent's
    signed = sign_card(card, mine, jku=jku)
    with documents(signed, {"keys": [other.jwk()]}, port) as base:
        record = await register_url(registry, base)
    assert not record.trust.verified
    assert "is not published" in (record.trust.error or "")
    # ``other``'s key published under ``mine``'s kid: the signature does not verify with it
    with documents(signed, {"keys": [{**other.jwk(), "kid": mine.kid}]}, port) as base:
        record = await register_url(registry, base)
    assert not record.trust.verified


def test_a_changed_card_field_breaks_verification() -> None:
    key = SigningKey.generate()
    signed = sign_card(plain_card("tamper", 9), key)
    assert verify_card(signed).kid == key.kid
    for change in ({"description": "now cheaper"}, {"version": "9.9.9"}, {"name": "tamper2"}):
        with pytest.raises(SignatureError, match="does not verify"):
            verify_card({**signed, **change})
    skills = json.loads(json.dumps(signed["skills"]))
    skills[0]["tags"].append("extra")
    with pytest.raises(SignatureError):
        verify_card({**signed, "skills": skills})


async def test_a_key_rotation_is_detected_flagged_and_can_be_accepted(registry: Registry) -> None:
    first, second = SigningKey.generate(), SigningKey.generate()
    port = free_port()
    with signed_agent("rotating", first, port) as base:
        record = await register_url(registry, base)
    assert record.trust.trusted
    router = Router(registry, require_signed=True, cache_ttl_s=0)
    task = TaskSpec(id="t", skill="echo", input={"text": "hi"})
    assert [c.agent.name for c in (await router.route(task)).candidates] == ["rotating"]
    with signed_agent("rotating", second, port) as base:
        record = await register_url(registry, base)  # the refresh
    assert record.trust.verified and record.trust.kid == second.kid
    assert record.trust.key_changed_at is not None and not record.trust.trusted
    events = registry.key_events(record.id)
    assert [e.kind for e in events] == ["pinned", "rotated"]
    assert events[1].old_fingerprint != events[1].new_fingerprint
    routing = await router.route(task)
    assert routing.candidates == [] and "key changed" in routing.excluded[0]["why"]
    assert Router(registry, cache_ttl_s=0).rank(task, [registry.get(record.id)]).candidates  # default: allowed
    accepted = registry.accept_key(record.id)
    assert accepted.trust.trusted
    assert [c.agent.name for c in (await router.route(task)).candidates] == ["rotating"]


async def test_a_signed_agent_that_stops_signing_is_flagged(registry: Registry) -> None:
    port = free_port()
    with signed_agent("lapsed", SigningKey.generate(), port) as base:
        await register_url(registry, base)
    with signed_agent("lapsed", None, port) as base:
        record = await register_url(registry, base)
    assert not record.trust.verified and record.trust.key_changed_at is not None
    assert [e.kind for e in registry.key_events(record.id)] == ["pinned", "unsigned"]


async def test_require_signed_excludes_unsigned_agents(registry: Registry) -> None:
    with signed_agent("unsigned-echo", None) as base:
        await register_url(registry, base)
    task = TaskSpec(id="t", skill="echo", input={"text": "hi"})
    routing = await Router(registry, require_signed=True).route(task)
    assert routing.candidates == [] and "not signed" in routing.excluded[0]["why"]
    assert (await Router(registry).route(task)).candidates


def test_a_card_signed_by_scaleout_verifies_with_the_a2a_sdk() -> None:
    key = SigningKey.generate()
    signed = sign_card(plain_card("interop", 9), key)
    sdk_card = ParseDict(signed, SdkCard(), ignore_unknown_fields=True)
    verifier = create_signature_verifier(lambda kid, jku: PyJWK(key.jwk()), ["EdDSA"])
    verifier(sdk_card)  # raises InvalidSignaturesError when it does not verify
    tampered = ParseDict({**signed, "description": "changed"}, SdkCard(), ignore_unknown_fields=True)
    with pytest.raises(Exception, match="No valid signature"):
        verifier(tampered)


async def test_a_card_signed_by_the_a2a_sdk_verifies_in_the_registry(registry: Registry) -> None:
    port = free_port()
    key = SigningKey.generate()
    sdk_card = ParseDict(plain_card("sdk-signed", port), SdkCard(), ignore_unknown_fields=True)
    jku = f"http://127.0.0.1:{port}{JWKS_PATH}"
    create_agent_card_signer(key.key, {"kid": key.kid, "alg": "EdDSA", "jku": jku, "typ": "JOSE"})(sdk_card)
    served = MessageToDict(sdk_card)
    assert card_payload(served) == card_payload(plain_card("sdk-signed", port))
    with documents(served, {"keys": [key.jwk()]}, port) as base:
        record = await register_url(registry, base)
    assert record.trust.verified and record.trust.kid == key.kid


def test_agent_keygen_writes_a_private_key_and_prints_the_public_jwk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.cli import main

    out = tmp_path / "agent.pem"
    assert main(["agent", "keygen", "--out", str(out)]) == 0
    jwk = json.loads(capsys.readouterr().out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert SigningKey.load(out).jwk() == jwk
    assert main(["agent", "keygen", "--out", str(out)]) == 2  # never overwrites an identity by accident


async def test_the_health_sweep_verifies_the_card_and_flags_a_rotation(registry: Registry) -> None:
    first, second = SigningKey.generate(), SigningKey.generate()
    port = free_port()
    with signed_agent("swept", first, port) as base:
        record = await register_url(registry, base)
    assert record.trust.trusted
    with signed_agent("swept", second, port):  # same card version, new key: only the sweep sees it
        report = await HealthChecker(registry).sweep()
    assert report.updated == [record.id]
    swept = registry.get(record.id)
    assert swept.trust.verified and swept.trust.kid == second.kid and not swept.trust.trusted
    assert [e.kind for e in registry.key_events(record.id)] == ["pinned", "rotated"]


def test_orchestrator_serve_require_signed_routes_only_to_verified_agents(tmp_path: Path) -> None:
    base = ["orchestrator", "serve", "--db", str(tmp_path / "o.db"), "--health-interval", "0"]
    for flags, expected in (([], False), (["--require-signed"], True)):
        app, _ = serve_parts(build_parser().parse_args([*base, *flags]))
        orchestrator = app.app.state.orchestrator
        assert orchestrator.router.require_signed is expected
        orchestrator.store.close()
