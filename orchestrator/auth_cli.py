"""``scaleout auth keygen|token|revoke``: signing keys, bearer tokens and revocation, all local files.

keygen writes ``signing-key.pem`` (private, owner-only) and adds its public half to ``jwks.json`` (give that file to
every server: ``--jwks``); token signs a token with a private key; revoke lists a key id in ``jwks.json`` as revoked,
which running servers pick up within a second.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register the ``auth`` command group on the top-level ``scaleout`` parser."""
    from protocol.auth import SCOPES

    auth = _parser(subparsers, "auth", "keygen", help="signing keys, bearer tokens and revocation")
    sub = auth.add_subparsers(dest="auth_command", required=True)

    keygen = _parser(sub, "keygen", help="make an Ed25519 signing key and add its public key to a JWKS file")
    keygen.add_argument("--key", default="signing-key.pem", help="where to write the private key (owner-only)")
    keygen.add_argument("--jwks", default="jwks.json", help="the JWKS file to add the public key to (created)")
    keygen.set_defaults(func=_keygen)

    token = _parser(sub, "token", help="sign a bearer token (printed on stdout)")
    token.add_argument("--key", default="signing-key.pem", help="the private key to sign with")
    token.add_argument("--sub", required=True, help="who the token is for (a user, service or agent name)")
    token.add_argument(
        "--scope", action="append", required=True, choices=SCOPES, help="a scope (repeat for more)", metavar="SCOPE"
    )
    token.add_argument("--aud", action="append", default=None, help="audience: the server(s) it is for (scaleout)")
    token.add_argument("--iss", default="scaleout", help="issuer (default scaleout)")
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires (default 3600)")
    token.add_argument("--tenant", help="tenant whose runs and records the principal sees (default: its subject)")
    token.set_defaults(func=_token)

    revoke = _parser(sub, "revoke", help="revoke every token signed by a key id")
    revoke.add_argument("kid", help="the key id (printed by keygen; the 'kid' in a token's header)")
    revoke.add_argument("--jwks", default="jwks.json", help="the JWKS file the servers read")
    revoke.set_defaults(func=_revoke)


_EXAMPLES = {
    "keygen": "example:\n  scaleout auth keygen --key signing-key.pem --jwks jwks.json",
    "token": "example:\n  scaleout auth token --sub alice --scope runs:submit --scope runs:read "
    "> ~/.config/scaleout/token",
    "revoke": "example:\n  scaleout auth revoke 5f1c2a9e --jwks jwks.json",
}


def _parser(sub: Any, name: str, example: str | None = None, **kwargs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, epilog=_EXAMPLES[example or name], formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs
    )
    return parser


def _read_jwks(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"keys": [], "revoked": []}
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise SystemExit(f'error: {path} is not a JWKS document ({{"keys": [...]}})')
    document.setdefault("revoked", [])
    return document


def _write_jwks(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)  # servers never read half a file


def _keygen(args: argparse.Namespace) -> int:
    from protocol.auth import SigningKey

    key_path, jwks_path = Path(args.key), Path(args.jwks)
    if key_path.exists():
        print(f"error: {key_path} exists; choose another --key or remove it first", file=sys.stderr)
        return 2
    key = SigningKey.generate()
    key.save(key_path)
    document = _read_jwks(jwks_path)
    document["keys"].append(key.jwk())
    _write_jwks(jwks_path, document)
    print(f"key id {key.kid}: private key in {key_path} (keep it secret), public key added to {jwks_path}")
    return 0


def _token(args: argparse.Namespace) -> int:
    from protocol.auth import SigningKey

    try:
        key = SigningKey.load(args.key)
    except (OSError, ValueError) as exc:
        print(f"error: cannot load the signing key: {exc}", file=sys.stderr)
        return 2
    if args.ttl <= 0:
        print("error: --ttl must be positive", file=sys.stderr)
        return 2
    audience = args.aud or ["scaleout"]
    token = key.token(
        args.sub,
        args.scope,
        issuer=args.iss,
        audience=audience[0] if len(audience) == 1 else audience,
        ttl_s=args.ttl,
        tenant=args.tenant,
    )
    print(token)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    path = Path(args.jwks)
    document = _read_jwks(path)
    if not any(k.get("kid") == args.kid for k in document["keys"]):
        print(f"error: no key {args.kid!r} in {path}", file=sys.stderr)
        return 2
    if args.kid not in document["revoked"]:
        document["revoked"].append(args.kid)
        _write_jwks(path, document)
    print(f"revoked {args.kid}: servers reading {path} refuse its tokens within a second")
    return 0
