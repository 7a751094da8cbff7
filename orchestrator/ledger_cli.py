"""``scaleout ledger verify|show|export``: check the contract ledger's hash chain and signatures, list its entries,
or write them as JSON lines (docs/trust.md).

Exit status of ``verify``: 0 when every entry holds, 1 naming the first bad entry, 2 when the ledger cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "orchestrator_keys"]

_DB_HELP = "the database the orchestrator (or a scenario with --record-runs) wrote the ledger to (URL or SQLite path)"


def add_parser(subparsers: Any) -> None:
    """Register the ``ledger`` command group on the top-level ``scaleout`` parser."""
    ledger = subparsers.add_parser("ledger", help="verify, show or export the ledger of signed contracts")
    sub = ledger.add_subparsers(dest="ledger_command", required=True)
    verify = sub.add_parser("verify", help="recompute the hash chain and check every signature")
    verify.add_argument(
        "--orchestrator-key",
        metavar="FILE",
        help="the orchestrator's key (its private PEM, or a JWK / JWKS of its public key): counter-signatures "
        "must be by it (default: any key, as long as each signature holds)",
    )
    verify.add_argument(
        "--trusted-keys",
        metavar="JWKS",
        help="party keys to trust (a JWKS; 'revoked' kids and a key's nbf/exp are checked at each entry's time)",
    )
    verify.add_argument("--head", help="a head hash printed earlier: the chain must still reach it")
    show = sub.add_parser("show", help="list the entries: sequence, contract, parties, values, hash")
    export = sub.add_parser("export", help="write every entry as one JSON line")
    for command in (verify, show, export):
        command.add_argument("--db", help=_DB_HELP)
        command.set_defaults(func=_ledger)
    for command in (show, export):
        command.add_argument("--after", type=int, default=0, help="start after this sequence number")
        command.add_argument("--limit", type=int, default=None, help="at most this many entries")


def orchestrator_keys(path: str) -> dict[str, Any]:
    """The orchestrator keys (kid -> public JWK) in ``path``: a private key PEM, a JWK or a JWKS."""
    from protocol.auth import SigningKey

    text = Path(path).read_text()
    if "PRIVATE KEY" in text:
        key = SigningKey.load(path)
        return {key.kid: key.jwk()}
    document = json.loads(text)
    keys = document.get("keys", [document]) if isinstance(document, dict) else []
    return {str(k["kid"]): k for k in keys if isinstance(k, dict) and "kid" in k}


def _ledger(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from orchestrator.ledger import ContractLedger, TrustedKeys
    from orchestrator.runs import RunStore
    from registry.db import require_existing, resolve_url
    from registry.errors import RegistryError

    try:
        url = resolve_url(args.db)
        require_existing(url, "the ledger is stored where 'scaleout orchestrator serve --db DB' ran")
        store = RunStore(url, migrate=False)
    except (RegistryError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ledger = ContractLedger(store.engine)
    try:
        if args.ledger_command == "verify":
            allowed = orchestrator_keys(args.orchestrator_key) if args.orchestrator_key else None
            trusted = TrustedKeys(json.loads(Path(args.trusted_keys).read_text())) if args.trusted_keys else None
            check = ledger.verify(trusted=trusted, orchestrator_keys=allowed, expected_head=args.head)
            print(check.summary())
            return 0 if check.ok else 1
        for entry in ledger.entries(after=args.after, limit=args.limit):
            if args.ledger_command == "export":
                print(json.dumps(entry.line(), separators=(",", ":")))
                continue
            terms = entry.contract.terms
            values = ", ".join(f"{k}={v:g}" for k, v in sorted(terms.values.items()))
            print(
                f"{entry.seq:>6}  {entry.recorded_at}  {terms.contract_id}  {terms.buyer} <- {terms.seller}  "
                f"{terms.item}: {values}  {entry.entry_hash[:16]}"
            )
        return 0
    except sa.exc.OperationalError as exc:
        print(
            f"error: cannot read the ledger from {url}: {exc.orig}; is it the orchestrator's database?", file=sys.stderr
        )
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.engine.dispose()
