"""Who is calling: principals, scopes and signed bearer tokens (JWT, EdDSA) verified without a database.

A token names a subject, its scopes, an issuer, an audience and an expiry, signed by a key whose public half is
in a JWKS file every verifying host has. Revocation is by key id (a kid listed in the key set's ``revoked``).
Verified tokens are cached until they expire, so a request pays one dictionary lookup, not a signature check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCOPES",
    "ADMIN",
    "AuthError",
    "Principal",
    "LOCAL_PRINCIPAL",
    "KeySet",
    "SigningKey",
    "TokenVerifier",
    "AuthSettings",
    "client_token",
    "bearer_headers",
    "tls_verify",
]

ADMIN = "admin"
SCOPES = (
    "registry:read",
    "registry:write",
    "registry:report",
    "runs:submit",
    "runs:read",
    "runs:cancel",
    "agents:call",
    ADMIN,
)
_ALGORITHMS = ["EdDSA"]
_CACHE_SIZE = 10_000


class AuthError(Exception):
    """A credential that does not authenticate (``status`` 401) or lacks a scope (403)."""

    def __init__(self, message: str, *, status: int = 401, error: str = "invalid_token") -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class Principal(BaseModel):
    """A caller: a user, a service (an orchestrator) or an agent, with its scopes and tenant."""

    model_config = ConfigDict(frozen=True)

    subject: str
    scopes: frozenset[str] = frozenset()
    tenant: str | None = None
    authenticated: bool = True

    @property
    def owner(self) -> str:
        """What records created by this principal are owned by: ``tenant:NAME``, else ``user:SUBJECT``; ``local``
        for the unauthenticated local caller (and for records made before access control). The prefixes keep a
        subject from ever owning a tenant's records, or the local ones."""
        if not self.authenticated:
            return "local" if ADMIN in self.scopes else "anonymous"
        return f"tenant:{self.tenant}" if self.tenant else f"user:{self.subject}"

    def has(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes


LOCAL_PRINCIPAL = Principal(subject="local", scopes=frozenset(SCOPES), authenticated=False)
"""Who an unauthenticated caller is on a loopback server without keys: everything, as before access control."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _thumbprint(x: str) -> str:
    """The RFC 7638 thumbprint of an OKP Ed25519 key (hex, 16 digits): its key id."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]  # hex: never starts with '-' on a command line


class SigningKey:
    """An Ed25519 private key with its key id; signs tokens (``scaleout auth token``)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.x = _b64(raw)
        self.kid = _thumbprint(self.x)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | Path) -> SigningKey:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key; make one with 'scaleout auth keygen'")
        return cls(key)

    def save(self, path: str | Path) -> None:
        """Write the private key as PEM, readable by its owner only."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)

    def jwk(self) -> dict[str, str]:
        """The public half as a JWK."""
        return {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def token(
        self,
        subject: str,
        scopes: Iterable[str],
        *,
        issuer: str,
        audience: str | list[str],
        ttl_s: float,
        tenant: str | None = None,
        now: float | None = None,
    ) -> str:
        """A signed bearer token for ``subject`` with ``scopes``, valid for ``ttl_s`` seconds."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; known: {', '.join(SCOPES)}")
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "sub": subject,
            "iss": issuer,
            "aud": audience,
            "iat": issued,
            "exp": issued + int(ttl_s),
            "scope": " ".join(sorted(set(scopes))),
        }
        if tenant:
            claims["tenant"] = tenant
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})


class KeySet:
    """Public keys trusted to sign tokens (a JWKS document), and the key ids revoked.

    Loaded from a file, it re-reads the file when it changes (checked at most once a second), so
    ``scaleout auth revoke`` takes effect on running servers without a restart.
    """

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], revoked: Iterable[str] = ()) -> None:
        self.keys = dict(keys)
        self.revoked = set(revoked)
        self.path: Path | None = None
        self._mtime = 0.0
        self._checked = 0.0

    def refresh(self, now: float | None = None) -> None:
        """Re-read the file this set came from if it changed since (at most one check a second)."""
        clock = time.monotonic() if now is None else now
        if self.path is None or clock - self._checked < 1.0:
            return
        self._checked = clock
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return  # keep the keys we have rather than trusting nothing mid-edit
        if mtime != self._mtime:
            fresh = KeySet.load(self.path)
            self.keys, self.revoked, self._mtime = fresh.keys, fresh.revoked, fresh._mtime

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any]) -> KeySet:
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in document.get("keys", []):
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "kid" not in jwk:
                raise ValueError(f"unsupported key {jwk.get('kid')!r}: only Ed25519 (OKP) keys with a kid are used")
            raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
            keys[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(raw)
        return cls(keys, document.get("revoked", []))

    @classmethod
    def load(cls, path: str | Path) -> KeySet:
        """Read a JWKS file (``{"keys": [...], "revoked": [kid, ...]}``)."""
        where = Path(path).expanduser()
        try:
            keys = cls.from_jwks(json.loads(where.read_text()))
            keys._mtime = where.stat().st_mtime
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the key set {path}: {exc}") from None
        keys.path = where
        return keys

    def document(self) -> dict[str, Any]:
        """The JWKS document of this set (public keys and revoked kids)."""
        keys = [
            {"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig", "x": _b64(_raw(key))}
            for kid, key in self.keys.items()
        ]
        return {"keys": keys, "revoked": sorted(self.revoked)}


class TokenVerifier:
    """Verifies bearer tokens for one audience against a key set; caches verified tokens until they expire."""

    def __init__(self, keys: KeySet, *, audience: str, issuer: str | None = None, leeway_s: float = 30.0) -> None:
        self.keys = keys
        self.audience = audience
        self.issuer = issuer
        self.leeway_s = leeway_s
        self._cache: OrderedDict[str, tuple[Principal, float, str]] = OrderedDict()

    def verify(self, token: str, *, now: float | None = None) -> Principal:
        """The principal ``token`` proves; raises AuthError (401) saying what is wrong with it."""
        clock = now if now is not None else time.time()
        self.keys.refresh()
        cached = self._cache.get(token)
        if cached is not None:
            principal, expires, kid = cached
            if clock <= expires + self.leeway_s and kid not in self.keys.revoked:
                self._cache.move_to_end(token)
                return principal
            del self._cache[token]
        principal, expires, kid = self._decode(token, clock)
        self._cache[token] = (principal, expires, kid)
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    def _decode(self, token: str, clock: float) -> tuple[Principal, float, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("the bearer token is not a JWT") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in self.keys.keys:
            raise AuthError("the token is signed by a key this server does not trust (unknown kid)")
        if kid in self.keys.revoked:
            raise AuthError(f"the token's signing key {kid} has been revoked")
        try:
            claims = jwt.decode(
                token,
                self.keys.keys[kid],
                algorithms=_ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "sub", "aud"], "verify_iat": False, "verify_exp": False},
            )
        except jwt.InvalidAudienceError:
            raise AuthError(f"the token is not meant for this server (audience is not {self.audience!r})") from None
        except jwt.InvalidIssuerError:
            raise AuthError(f"the token was not issued by {self.issuer!r}") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"the token does not verify: {exc}") from None
        if not isinstance(claims["exp"], int | float) or claims["exp"] + self.leeway_s < clock:
            raise AuthError("the token has expired; get a new one")
        if not 0 < len(str(claims["sub"])) <= 150 or len(str(claims.get("tenant") or "")) > 150:
            raise AuthError("the token's subject or tenant is empty or longer than 150 characters")
        scopes = frozenset(str(claims.get("scope", "")).split())
        tenant = claims.get("tenant")
        principal = Principal(
            subject=str(claims["sub"]), scopes=scopes & set(SCOPES), tenant=tenant if isinstance(tenant, str) else None
        )
        return principal, float(claims["exp"]), kid


def client_token(explicit: str | None = None) -> str | None:
    """The bearer token a client sends: ``explicit``, else ``$SCALEOUT_TOKEN``, else the file named by
    ``$SCALEOUT_TOKEN_FILE`` (default ``~/.config/scaleout/token``), else None."""
    if explicit:
        return explicit
    if os.environ.get("SCALEOUT_TOKEN"):
        return os.environ["SCALEOUT_TOKEN"].strip()
    default = Path(os.environ.get("XDG_CONFIG_HOME", "~/.config")).expanduser() / "scaleout" / "token"
    where = Path(os.environ.get("SCALEOUT_TOKEN_FILE") or default).expanduser()
    try:
        return where.read_text().strip() or None
    except OSError:
        return None


def tls_verify(ca_file: str | None = None, verify: ssl.SSLContext | bool | None = None) -> ssl.SSLContext | bool:
    """What an HTTP client checks servers' certificates with: ``verify`` as given, else a context trusting the CA
    bundle ``ca_file``, else the system's trust store (True). Give one of the two, not both."""
    if verify is not None and ca_file is not None:
        raise ValueError("pass ca_file or verify, not both")
    if verify is not None:
        return verify
    return ssl.create_default_context(cafile=ca_file) if ca_file is not None else True


def bearer_headers(token: str | None = None) -> dict[str, str]:
    """``{"Authorization": "Bearer ..."}`` for ``client_token(token)``, or ``{}`` without a token."""
    found = client_token(token)
    return {"Authorization": f"Bearer {found}"} if found else {}


class AuthSettings(BaseModel):
    """What a server needs to authenticate callers (built by the ``serve`` commands from their flags)."""

    model_config = ConfigDict(extra="forbid")

    jwks_file: Path | None = Field(default=None, description="trusted public keys (scaleout auth keygen writes one)")
    audience: str = Field(default="scaleout", description="this server's audience: tokens must name it")
    issuer: str | None = Field(default=None, description="the issuer tokens must name (any when unset)")

    def verifier(self) -> TokenVerifier | None:
        """A verifier over the key set, or None when no key set is configured."""
        if self.jwks_file is None:
            return None
        return TokenVerifier(KeySet.load(self.jwks_file), audience=self.audience, issuer=self.issuer)
