"""The contract ledger: every signed contract, appended to a hash chain in the run store's database.

Each entry's body is JCS text holding its sequence number, the previous entry's hash, the contract terms, both
parties' signatures over them, the run it came from, the time, and the orchestrator's counter-signature over all
of that; ``entry_hash`` is the SHA-256 of the body. ``verify`` recomputes the chain and every signature and names
the first entry that does not hold (edited, deleted, reordered or inserted rows all break the chain).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field

from orchestrator import tables as t
from protocol.auth import SigningKey
from protocol.negotiation import ContractTerms, PartySignature
from protocol.signing import SignatureError, canonical_json, sign_detached, verify_detached, verify_terms

__all__ = ["GENESIS", "SignedContract", "LedgerEntry", "LedgerCheck", "ContractLedger", "TrustedKeys"]

GENESIS = "0" * 64
"""The previous hash of the first entry."""
_APPEND_TRIES = 5


class SignedContract(BaseModel):
    """Contract terms with both parties' signatures (buyer first, then seller)."""

    terms: ContractTerms
    signatures: list[PartySignature] = Field(min_length=2, max_length=2)


class LedgerEntry(BaseModel):
    """One row of the ledger as read back: its sequence, hashes, body (parsed) and the contract it holds."""

    seq: int
    prev_hash: str
    entry_hash: str
    run_id: str | None = None
    recorded_at: str
    contract: SignedContract
    countersignature: dict[str, str]

    def line(self) -> dict[str, Any]:
        """The entry as one JSON-lines record (``scaleout ledger export``)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class LedgerCheck(BaseModel):
    """The outcome of ``ContractLedger.verify``: entries checked, the head hash, and the first bad entry."""

    ok: bool
    entries: int
    head: str = GENESIS
    bad_seq: int | None = None
    problem: str | None = None

    def summary(self) -> str:
        """One line: ``ok: N entries, head H`` or ``FAILED at entry S: why``."""
        if self.ok:
            return f"ok: {self.entries} entries, head {self.head}"
        return f"FAILED at entry {self.bad_seq}: {self.problem}"


class TrustedKeys:
    """Public keys a verifier trusts, by kid, each valid from/until an optional time (JWK members ``nbf`` and
    ``exp``, seconds since the epoch, as in a JWT), plus revoked kids: a JWKS document as ``protocol.auth``
    writes it."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.keys = {str(k["kid"]): dict(k) for k in document.get("keys", []) if isinstance(k, dict) and "kid" in k}
        self.revoked = set(document.get("revoked", []))

    def problem(self, kid: str, at: datetime) -> str | None:
        """Why the key ``kid`` was not valid at ``at``, or None when it was."""
        key = self.keys.get(kid)
        if key is None:
            return f"key {kid} is not among the trusted keys"
        if kid in self.revoked:
            return f"key {kid} has been revoked"
        stamp = at.timestamp()
        if "nbf" in key and stamp < float(key["nbf"]):
            return f"key {kid} was not yet valid at {at.isoformat()}"
        if "exp" in key and stamp > float(key["exp"]):
            return f"key {kid} had expired at {at.isoformat()}"
        return None


def _hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class ContractLedger:
    """Appends signed contracts to ``orch_ledger`` and verifies the chain; ``key`` counter-signs each entry."""

    def __init__(self, engine: sa.Engine, key: SigningKey | None = None) -> None:
        self.engine = engine
        self.key = key

    # -- writing --------------------------------------------------------------------------------------------

    def append(
        self,
        contract: SignedContract,
        *,
        run_id: str | None = None,
        events: list[dict[str, Any]] | None = None,
        conn: sa.Connection | None = None,
    ) -> LedgerEntry:
        """Append ``contract`` (its signatures checked first: a contract that does not verify is refused with
        SignatureError) in one transaction, with ``events`` (run events) in the same transaction; or inside
        ``conn``'s transaction when given."""
        if self.key is None:
            raise ValueError("the ledger needs the orchestrator's signing key to counter-sign entries (--signing-key)")
        _check_contract(contract)
        if conn is not None:
            return self._append(conn, contract, run_id, events or [])
        for attempt in range(_APPEND_TRIES):
            try:
                with self.engine.begin() as connection:
                    return self._append(connection, contract, run_id, events or [])
            except sa.exc.IntegrityError:  # another appender took this sequence number first (SQLite): retry
                if attempt == _APPEND_TRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _append(
        self, conn: sa.Connection, contract: SignedContract, run_id: str | None, events: list[dict[str, Any]]
    ) -> LedgerEntry:
        assert self.key is not None
        if conn.dialect.name == "postgresql":  # appenders queue here: the chain has one head
            conn.execute(sa.text("LOCK TABLE orch_ledger IN EXCLUSIVE MODE"))
        last = conn.execute(
            sa.select(t.ledger.c.seq, t.ledger.c.entry_hash).order_by(t.ledger.c.seq.desc()).limit(1)
        ).first()
        seq, prev = (int(last.seq) + 1, str(last.entry_hash)) if last is not None else (1, GENESIS)
        stamp = datetime.now(UTC)
        body: dict[str, Any] = {
            "seq": seq,
            "prevHash": prev,
            "runId": run_id,
            "recordedAt": stamp.isoformat(),
            "contract": contract.terms.wire(),
            "signatures": [s.wire() for s in contract.signatures],
        }
        protected, signature = sign_detached(canonical_json(body), self.key)
        body["countersignature"] = {"protected": protected, "signature": signature}
        text = canonical_json(body)
        entry_hash = _hash(text)
        row = {
            "seq": seq,
            "entry_hash": entry_hash,
            "body": text.decode(),
            "contract_id": contract.terms.contract_id,
            "run_id": run_id,
            "recorded_at": stamp,
        }
        conn.execute(t.ledger.insert(), [row])
        if events:
            conn.execute(t.events.insert(), events)
        return _entry(seq, entry_hash, text.decode())

    # -- reading and verifying ------------------------------------------------------------------------------

    def rows(self, *, after: int = 0, limit: int | None = None) -> Iterator[sa.Row[Any]]:
        """The stored rows in sequence order (as stored: not verified)."""
        query = sa.select(t.ledger).where(t.ledger.c.seq > after).order_by(t.ledger.c.seq)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            yield from conn.execute(query)

    def entries(self, *, after: int = 0, limit: int | None = None) -> list[LedgerEntry]:
        """The entries in sequence order, parsed (use ``verify`` to know they hold)."""
        return [_entry(int(r.seq), str(r.entry_hash), str(r.body)) for r in self.rows(after=after, limit=limit)]

    def head(self) -> tuple[int, str]:
        """The last entry's sequence number and hash ((0, GENESIS) when empty)."""
        with self.engine.connect() as conn:
            last = conn.execute(
                sa.select(t.ledger.c.seq, t.ledger.c.entry_hash).order_by(t.ledger.c.seq.desc()).limit(1)
            ).first()
        return (int(last.seq), str(last.entry_hash)) if last is not None else (0, GENESIS)

    def verify(
        self,
        *,
        trusted: TrustedKeys | None = None,
        orchestrator_keys: Mapping[str, Any] | None = None,
        expected_head: str | None = None,
    ) -> LedgerCheck:
        """Recompute the chain from the first entry and check every signature; stops at the first bad entry.

        ``trusted``: party keys must be among them and valid at the entry's time; ``orchestrator_keys`` (kid ->
        public JWK): the counter-signatures must be by one of them (default: this ledger's key, when it has one).
        ``expected_head``: a head hash seen before (printed by the scenario report): the chain must still contain
        it, so removing the last entries is detected too.
        """
        allowed = dict(orchestrator_keys or {})
        if not allowed and self.key is not None:
            allowed = {self.key.kid: self.key.jwk()}
        prev, expected, count, seen_head = GENESIS, 1, 0, False
        for row in self.rows():
            problem = _check_row(row, expected, prev, trusted, allowed)
            if problem is not None:
                return LedgerCheck(ok=False, entries=count, head=prev, bad_seq=expected, problem=problem)
            prev, expected, count = str(row.entry_hash), expected + 1, count + 1
            seen_head = seen_head or prev == expected_head
        if expected_head is not None and expected_head != GENESIS and not seen_head:
            why = f"the chain no longer contains the head {expected_head}: entries after {count} were removed"
            return LedgerCheck(ok=False, entries=count, head=prev, bad_seq=count + 1, problem=why)
        return LedgerCheck(ok=True, entries=count, head=prev)


def _check_contract(contract: SignedContract) -> None:
    terms = contract.terms
    wanted = [terms.buyer, terms.seller]
    signers = [s.signer for s in contract.signatures]
    if signers != wanted:
        raise SignatureError(f"a contract is signed by its buyer then its seller {wanted}, not {signers}")
    for sig in contract.signatures:
        verify_terms(terms, sig.wire())


def _entry(seq: int, entry_hash: str, text: str) -> LedgerEntry:
    body = json.loads(text)
    contract = SignedContract(terms=body["contract"], signatures=body["signatures"])
    return LedgerEntry(
        seq=seq,
        prev_hash=body["prevHash"],
        entry_hash=entry_hash,
        run_id=body.get("runId"),
        recorded_at=body["recordedAt"],
        contract=contract,
        countersignature=body["countersignature"],
    )


def _check_row(
    row: sa.Row[Any], expected: int, prev: str, trusted: TrustedKeys | None, allowed: Mapping[str, Any]
) -> str | None:
    """Why ``row`` is not the valid entry ``expected`` following ``prev``, or None."""
    if int(row.seq) != expected:
        return f"the next entry is numbered {row.seq}: entries {expected}..{int(row.seq) - 1} are missing"
    text = str(row.body).encode()
    if _hash(text) != row.entry_hash:
        return "its body does not hash to its entry_hash: the row was changed"
    try:
        body = json.loads(text)
    except ValueError:
        return "its body is not JSON"
    if not isinstance(body, dict) or canonical_json(body) != text:
        return "its body is not in canonical (JCS) form"
    if body.get("seq") != expected:
        return f"its body says entry {body.get('seq')}, stored as entry {expected}: rows were reordered"
    if body.get("prevHash") != prev:
        return "its previous hash is not the hash of the entry before it: an entry was removed, added or reordered"
    if body.get("runId") != row.run_id or body.get("contract", {}).get("contractId") != row.contract_id:
        return "its run_id or contract_id column differs from its body"
    try:
        recorded = datetime.fromisoformat(str(body["recordedAt"]))
        contract = SignedContract(terms=body["contract"], signatures=body["signatures"])
        _check_contract(contract)
        counter = body.pop("countersignature")
        check = verify_detached(canonical_json(body), counter["protected"], counter["signature"])
    except SignatureError as exc:
        return f"a signature does not hold: {exc}"
    except (KeyError, TypeError, ValueError) as exc:
        return f"its body is malformed: {exc}"
    stored = row.recorded_at if row.recorded_at.tzinfo else row.recorded_at.replace(tzinfo=UTC)
    if stored != recorded:
        return "its recorded_at column differs from its body"
    if allowed and check.kid not in allowed:
        return f"it is counter-signed by key {check.kid}, not by the orchestrator's ({', '.join(allowed)})"
    if trusted is not None:
        for sig in contract.signatures:
            kid = verify_terms(contract.terms, sig.wire()).kid
            if (why := trusted.problem(kid, recorded)) is not None:
                return f"{sig.signer}'s signature: {why}"
    return None
