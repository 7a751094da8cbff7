"""Signatures over JSON: RFC 8785 (JCS) canonical form, signed A2A Agent Cards and signed contract terms.

An Agent Card signature is a JWS (RFC 7515) over the JCS-canonical card without its ``signatures`` and without
empty values, kept detached in the card's ``signatures`` list as ``{protected, signature, header?}``, exactly as
A2A 1.0 and the a2a-sdk define it. Contract terms are signed the same way (detached JWS over their canonical
form). Keys are the Ed25519 keys of ``protocol.auth`` (``SigningKey``); the protected header names the key id
and, so that a verifier needs no key server, carries the public JWK itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt import api_jws
from pydantic import Field

from protocol.a2a import WireModel
from protocol.auth import SigningKey

__all__ = [
    "SignatureError",
    "CardSignature",
    "CardVerification",
    "KeyResolver",
    "canonical_json",
    "card_payload",
    "public_key_of",
    "jwk_fingerprint",
    "sign_card",
    "verify_card",
    "sign_detached",
    "verify_detached",
    "signed_by",
    "sign_terms",
    "verify_terms",
]

_MAX_DEPTH = 64
_ALGORITHMS = ["EdDSA"]


class SignatureError(ValueError):
    """A signature that does not verify, or a document that cannot be signed; the message says which and why."""


class CardSignature(WireModel):
    """One entry of an Agent Card's ``signatures``: the JWS protected header and signature (base64url), and the
    optional unprotected header."""

    protected: str = Field(min_length=1, max_length=8_000)
    signature: str = Field(min_length=1, max_length=2_000)
    header: dict[str, Any] | None = None


class CardVerification(WireModel):
    """What a verified card signature proves: which key (id, RFC 7638 SHA-256 fingerprint, public JWK) signed."""

    kid: str
    fingerprint: str
    jwk: dict[str, Any]


KeyResolver = Callable[[str | None, str | None], Mapping[str, Any] | None]
"""Finds the public JWK for a signature's ``kid`` and ``jku`` (a JWKS URL), or None when it knows none."""


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 form of a JSON value (keys sorted by UTF-16 code units, ECMAScript numbers)."""
    out: list[str] = []
    _canonical(value, out, 0)
    return "".join(out).encode("utf-8")


def _canonical(value: Any, out: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise SignatureError(f"the document nests deeper than {_MAX_DEPTH} levels; it cannot be canonicalised")
    if isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value, key=lambda k: str(k).encode("utf-16-be"))):
            if not isinstance(key, str):
                raise SignatureError(f"object keys must be strings, got {key!r}")
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _canonical(value[key], out, depth + 1)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _canonical(item, out, depth + 1)
        out.append("]")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif value is True or value is False or value is None:
        out.append(json.dumps(value))
    elif isinstance(value, int | float):
        out.append(_number(value))
    else:
        raise SignatureError(f"{type(value).__name__} is not a JSON value")


def _number(value: int | float) -> str:
    """ECMAScript Number::toString, as RFC 8785 requires."""
    if isinstance(value, int) and abs(value) > 2**53 - 1:
        raise SignatureError(f"the integer {value} is beyond what JSON numbers represent exactly (2^53)")
    number = float(value)
    if not math.isfinite(number):
        raise SignatureError(f"{value} has no JSON form")
    if number == 0:
        return "0"
    if number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    text = repr(number)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    sign = "-" if exponent.startswith("-") else "+"
    return f"{mantissa.removesuffix('.0')}e{sign}{int(exponent.lstrip('+-'))}"


def _clean_empty(value: Any) -> Any:
    """Drop empty strings, lists and objects (recursively), as the a2a-sdk does before canonicalising a card."""
    if isinstance(value, dict):
        cleaned = {k: c for k, v in value.items() if (c := _clean_empty(v)) is not None}
        return cleaned or None
    if isinstance(value, list):
        items = [c for v in value if (c := _clean_empty(v)) is not None]
        return items or None
    if isinstance(value, str) and not value:
        return None
    return value


def card_payload(card: Mapping[str, Any]) -> bytes:
    """The bytes a card signature covers: the JCS form of the card without ``signatures`` and empty values."""
    body = {k: v for k, v in card.items() if k != "signatures"}
    return canonical_json(_clean_empty(body) or {})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwk_fingerprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of an Ed25519 public JWK, hex (64 digits)."""
    required = {"crv": jwk.get("crv"), "kty": jwk.get("kty"), "x": jwk.get("x")}
    return hashlib.sha256(canonical_json(required)).hexdigest()


def public_key_of(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """The Ed25519 public key of an OKP JWK; raises SignatureError for any other kind of key."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise SignatureError(f"unsupported key {jwk.get('kid')!r}: only Ed25519 (OKP) keys verify here")
    try:
        return Ed25519PublicKey.from_public_bytes(_unb64(jwk["x"]))
    except ValueError as exc:
        raise SignatureError(f"the key {jwk.get('kid')!r} is not an Ed25519 public key: {exc}") from None


def sign_detached(payload: bytes, key: SigningKey, **header: Any) -> tuple[str, str]:
    """A detached JWS over ``payload``: (protected, signature), base64url. The protected header names the
    algorithm, the key id and the public JWK, plus ``header``."""
    headers = {"kid": key.kid, "typ": "JOSE", "jwk": {k: v for k, v in key.jwk().items() if k != "use"}, **header}
    token = api_jws.encode(payload, key.key, algorithm="EdDSA", headers=headers)
    protected, _, signature = token.split(".")
    return protected, signature


def _protected_header(protected: str) -> dict[str, Any]:
    try:
        header = json.loads(_unb64(protected))
    except (ValueError, UnicodeDecodeError):
        raise SignatureError("the signature's protected header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise SignatureError("the signature's protected header is not a JSON object")
    return header


def verify_detached(
    payload: bytes, protected: str, signature: str, resolver: KeyResolver | None = None
) -> CardVerification:
    """Check a detached JWS over ``payload``; the key is the one ``resolver`` gives for the header's kid/jku,
    else the header's own ``jwk`` (whose thumbprint must be its kid). Raises SignatureError saying why not."""
    header = _protected_header(protected)
    if header.get("alg") not in _ALGORITHMS:
        raise SignatureError(f"the signature uses {header.get('alg')!r}; only EdDSA (Ed25519) is accepted")
    kid = header.get("kid")
    jwk = resolver(kid, header.get("jku")) if resolver is not None else None
    if jwk is None:
        embedded = header.get("jwk")
        if not isinstance(embedded, dict):
            raise SignatureError(f"no public key for kid {kid!r}: the header carries none and none is published")
        jwk = embedded
    key = public_key_of(jwk)
    known = jwk_fingerprint(jwk)[:16]  # protocol.auth's key id: the thumbprint's first 16 hex digits
    if jwk is header.get("jwk") and kid not in (None, known):
        raise SignatureError(f"the header's kid {kid!r} is not the thumbprint {known} of the key it carries")
    token = f"{protected}.{_b64(payload)}.{signature}"
    try:
        api_jws.decode_complete(token, key, algorithms=_ALGORITHMS)
    except jwt.PyJWTError as exc:
        raise SignatureError(f"the signature by key {kid or known} does not verify: {exc}") from None
    public = {k: v for k, v in jwk.items() if k in ("kty", "crv", "x")} | {"kid": str(kid or known)}
    return CardVerification(kid=str(kid or known), fingerprint=jwk_fingerprint(jwk), jwk=public)


def sign_card(card: Mapping[str, Any], key: SigningKey, *, jku: str | None = None) -> dict[str, Any]:
    """``card`` (a wire dict) with one more signature by ``key`` in its ``signatures``; ``jku`` is the URL of the
    JWKS publishing the key."""
    extra = {"jku": jku} if jku else {}
    protected, signature = sign_detached(card_payload(card), key, **extra)
    signatures = [*card.get("signatures", []), {"protected": protected, "signature": signature}]
    return {**card, "signatures": signatures}


def verify_card(card: Mapping[str, Any], resolver: KeyResolver | None = None) -> CardVerification:
    """The first signature of ``card`` that verifies (see ``verify_detached``); SignatureError when the card has
    none, or when none verifies (naming why the first failed)."""
    raw = card.get("signatures") or []
    if not isinstance(raw, list) or not raw:
        raise SignatureError("the card carries no signatures")
    payload = card_payload(card)
    problems: list[str] = []
    for entry in raw[:16]:
        try:
            sig = CardSignature.model_validate(entry)
            return verify_detached(payload, sig.protected, sig.signature, resolver)
        except SignatureError as exc:
            problems.append(str(exc))
        except ValueError as exc:
            problems.append(f"malformed signature entry: {exc}")
    raise SignatureError(f"none of the card's {len(raw)} signatures verifies: {problems[0]}")


def signed_by(protected: str) -> str | None:
    """The key id a protected header names (without verifying anything)."""
    kid = _protected_header(protected).get("kid")
    return kid if isinstance(kid, str) else None


def sign_terms(terms: Any, key: SigningKey, signer: str) -> dict[str, str]:
    """``signer``'s signature over contract ``terms`` (a ``ContractTerms`` or its wire dict), as the wire dict
    of a ``PartySignature``: a detached JWS over the JCS form."""
    body = terms.wire() if hasattr(terms, "wire") else terms
    protected, signature = sign_detached(canonical_json(body), key)
    return {"signer": signer, "protected": protected, "signature": signature}


def verify_terms(terms: Any, signature: Mapping[str, Any], resolver: KeyResolver | None = None) -> CardVerification:
    """Check ``signature`` (a ``PartySignature`` wire dict) over contract ``terms``; the key that signed, or
    SignatureError."""
    body = terms.wire() if hasattr(terms, "wire") else terms
    try:
        protected, sig = str(signature["protected"]), str(signature["signature"])
    except (KeyError, TypeError):
        raise SignatureError("the contract signature lacks its protected header or signature") from None
    return verify_detached(canonical_json(body), protected, sig, resolver)
