"""Bearer tokens: signed, scoped, audience-bound, expiring, revocable by key id; verified from a JWKS file."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from protocol.auth import AuthError, KeySet, SigningKey, TokenVerifier

NOW = 1_900_000_000.0


def _setup(tmp_path: Path) -> tuple[SigningKey, KeySet]:
    key = SigningKey.generate()
    key.save(tmp_path / "key.pem")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [key.jwk()]}))
    return SigningKey.load(tmp_path / "key.pem"), KeySet.load(tmp_path / "jwks.json")


def test_a_token_proves_its_subject_scopes_and_tenant(tmp_path: Path) -> None:
    key, keys = _setup(tmp_path)
    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600
    token = key.token("orch-1", ["runs:read", "agents:call"], issuer="i", audience="reg", ttl_s=60, tenant="acme")
    principal = TokenVerifier(keys, audience="reg", issuer="i").verify(token, now=time.time())
    assert principal.subject == "orch-1" and principal.tenant == "acme" and principal.owner == "tenant:acme"
    assert principal.has("runs:read") and not principal.has("runs:cancel")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("expired", "expired"),
        ("audience", "audience"),
        ("issuer", "issued"),
        ("malformed", "not a JWT"),
        ("foreign key", "unknown kid"),
        ("revoked", "revoked"),
    ],
)
def test_bad_tokens_are_refused_with_the_reason(tmp_path: Path, change: str, message: str) -> None:
    key, keys = _setup(tmp_path)
    verifier = TokenVerifier(keys, audience="reg", issuer="i")
    token = key.token("u", ["runs:read"], issuer="i", audience="reg", ttl_s=60, now=NOW)
    now = NOW
    if change == "expired":
        now = NOW + 3600
    elif change == "audience":
        token = key.token("u", ["runs:read"], issuer="i", audience="other", ttl_s=60, now=NOW)
    elif change == "issuer":
        token = key.token("u", ["runs:read"], issuer="evil", audience="reg", ttl_s=60, now=NOW)
    elif change == "malformed":
        token = "not-a-token"
    elif change == "foreign key":
        token = SigningKey.generate().token("u", ["admin"], issuer="i", audience="reg", ttl_s=60, now=NOW)
    elif change == "revoked":
        keys.revoked.add(key.kid)
    with pytest.raises(AuthError, match=message) as caught:
        verifier.verify(token, now=now)
    assert caught.value.status == 401


def test_cached_tokens_still_expire_and_can_be_revoked(tmp_path: Path) -> None:
    key, keys = _setup(tmp_path)
    verifier = TokenVerifier(keys, audience="reg")
    token = key.token("u", ["runs:read"], issuer="i", audience="reg", ttl_s=60, now=NOW)
    assert verifier.verify(token, now=NOW).subject == "u"
    assert verifier.verify(token, now=NOW + 1).subject == "u"  # from the cache
    with pytest.raises(AuthError, match="expired"):
        verifier.verify(token, now=NOW + 600)
    assert verifier.verify(key.token("u", [], issuer="i", audience="reg", ttl_s=60, now=NOW), now=NOW)
    keys.revoked.add(key.kid)
    with pytest.raises(AuthError, match="revoked"):
        verifier.verify(token, now=NOW + 1)


def test_unknown_scopes_are_refused_when_signing(tmp_path: Path) -> None:
    key, _ = _setup(tmp_path)
    with pytest.raises(ValueError, match="unknown scopes"):
        key.token("u", ["runs:everything"], issuer="i", audience="a", ttl_s=60)


def test_clients_trust_one_thing(tmp_path: Path) -> None:
    import ssl

    import trustme

    from protocol.auth import tls_verify

    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    assert tls_verify() is True
    assert isinstance(tls_verify(str(ca_file)), ssl.SSLContext)
    assert tls_verify(verify=False) is False
    with pytest.raises(ValueError, match="not both"):
        tls_verify(str(ca_file), False)
