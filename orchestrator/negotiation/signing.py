"""Signed agreements: the initiating party (a buyer, an auctioneer) signs the contract terms it proposes, the
other party countersigns them in its reply, and the contract goes to the ledger. No second signature, no contract.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio

from orchestrator.ledger import ContractLedger, LedgerEntry, SignedContract
from orchestrator.negotiation.calls import Ledger, NegotiationCallError, Party, call_skill
from protocol.auth import SigningKey
from protocol.negotiation import Action, ContractTerms, PartySignature, RespondRequest, Response
from protocol.signing import SignatureError, sign_terms, verify_terms

__all__ = ["ContractSigning", "AgreementSigning", "RunLike"]

_log = logging.getLogger(__name__)


class RunLike(Protocol):
    """What the ledger needs of a negotiation run's recorder (``RunRecorder`` has it): its state, to write the
    contract event in the same transaction as the ledger entry."""

    @property
    def run_id(self) -> str: ...

    @property
    def state(self) -> Any: ...


class _Contracts:
    """Signed contracts kept, and appended to a ledger: what both kinds of signing share."""

    def __init__(
        self,
        *,
        ledger: ContractLedger | None = None,
        party_keys: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.party_keys = dict(party_keys or {})
        self.clock = clock or (lambda: datetime.now(UTC))
        self.signed: list[SignedContract] = []
        self.entries: list[LedgerEntry] = []
        self.refused: dict[str, str] = {}

    def check(self, terms: ContractTerms, signer: str, signature: PartySignature | None) -> str | None:
        """Why ``signature`` is not ``signer``'s valid signature over ``terms`` (by its pinned key), or None."""
        if signature is None:
            return "confirmed without signing the contract"
        if signature.signer != signer:
            return f"the contract was signed by {signature.signer!r}, not by {signer!r}"
        try:
            kid = verify_terms(terms, signature.wire()).kid
        except SignatureError as exc:
            return f"its signature does not hold: {exc}"
        pinned = self.party_keys.get(signer)
        if pinned is not None and kid != pinned:
            return f"signed with key {kid}, not its known key {pinned}"
        return None

    async def record(self, contract: SignedContract, run: Any = None) -> LedgerEntry | None:
        """Keep ``contract``; with a ledger, append it, and with a recorded run (``RunLike``) write the run's
        ``negotiation.contract`` event in the same transaction (after the run's queued events are committed)."""
        self.signed.append(contract)
        if self.ledger is None:
            return None
        ledger = self.ledger
        state = getattr(run, "state", None)
        events: list[dict[str, Any]] = []
        run_id = None
        if state is not None and hasattr(state, "writer"):
            await state.writer.flush()  # the run's earlier events first, so its sequence stays in order
            run_id = state.run_id
            state.seq += 1
            data = {"contractId": contract.terms.contract_id, "seller": contract.terms.seller}
            events.append(
                {"run_id": run_id, "seq": state.seq, "kind": "negotiation.contract", "task_id": None, "data": data}
            )

        def append() -> LedgerEntry:
            for event in events:
                event["at"] = datetime.now(UTC)
            return ledger.append(contract, run_id=run_id, events=events)

        entry = await anyio.to_thread.run_sync(append)
        self.entries.append(entry)
        return entry


class ContractSigning(_Contracts):
    """The initiator's side of signed contracts: its name and key, optionally the keys expected of the other
    parties (kid pinned per party name), and the ledger every signed contract is appended to."""

    def __init__(
        self,
        initiator: str,
        key: SigningKey,
        *,
        ledger: ContractLedger | None = None,
        party_keys: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(ledger=ledger, party_keys=party_keys, clock=clock)
        self.initiator = initiator
        self.key = key

    def terms(
        self, *, contract_id: str, negotiation_id: str, protocol: str, seller: str, item: str, values: dict[str, float]
    ) -> tuple[ContractTerms, PartySignature]:
        """The contract terms proposed to ``seller`` and the initiator's signature over them."""
        terms = ContractTerms(
            contract_id=contract_id,
            negotiation_id=negotiation_id,
            protocol=protocol,
            buyer=self.initiator,
            seller=seller,
            item=item,
            values=values,
            agreed_at=self.clock().isoformat(),
        )
        return terms, PartySignature.model_validate(sign_terms(terms, self.key, self.initiator))

    def countersigned(
        self, terms: ContractTerms, mine: PartySignature, theirs: PartySignature | None
    ) -> SignedContract | None:
        """The signed contract when ``theirs`` is the seller's valid signature over ``terms`` (by its pinned key,
        if one is known); None (the reason in ``refused``) otherwise."""
        problem = self.check(terms, terms.seller, theirs)
        if problem is not None:
            self.refused[terms.seller] = problem
            return None
        assert theirs is not None
        return SignedContract(terms=terms, signatures=[mine, theirs])


class AgreementSigning(_Contracts):
    """Signing of alternating-offers agreements, where the orchestrator holds no party's key: after an accept,
    the party whose offer was accepted signs the terms, then the accepting party countersigns them (both in
    ``respond`` calls carrying ``RespondRequest.contract``). The first party is the buyer, the second the seller.
    """

    async def confirm(
        self, request: RespondRequest, offerer: Party, accepter: Party, buyer: str, ledger: Ledger | None, run: Any
    ) -> SignedContract | None:
        """Collect both signatures over the agreement on the table of ``request`` (the accepter's last request);
        the signed contract (recorded), or None with the reason in ``refused[request.negotiation_id]``."""
        agreed = request.history[-1].offer
        seller = accepter.name if offerer.name == buyer else offerer.name
        terms = ContractTerms(
            contract_id=request.negotiation_id,
            negotiation_id=request.negotiation_id,
            protocol="alternating",
            buyer=buyer,
            seller=seller,
            item=request.item or "-",
            values=agreed.values,
            agreed_at=self.clock().isoformat(),
        )
        signatures: dict[str, PartySignature] = {}
        for party, opponent in ((offerer, accepter), (accepter, offerer)):
            ask = request.model_copy(
                update={"me": party.name, "opponent": opponent.name, "contract": terms, "signature": None}
            )
            if signatures:
                ask = ask.model_copy(update={"signature": signatures[opponent.name]})
            try:
                reply = await call_skill(party, "respond", ask, Response, timeout_s=30.0, ledger=ledger)
            except NegotiationCallError as exc:
                self.refused[request.negotiation_id] = f"{party.name} did not sign: {exc}"
                return None
            problem = (
                f"{party.name} refused: {reply.reason}"
                if reply.action is not Action.ACCEPT
                else self.check(terms, party.name, reply.signature)
            )
            if problem is not None:
                self.refused[request.negotiation_id] = f"{party.name}: {problem}"
                return None
            assert reply.signature is not None
            signatures[party.name] = reply.signature
        contract = SignedContract(terms=terms, signatures=[signatures[buyer], signatures[seller]])
        await self.record(contract, run)
        return contract
