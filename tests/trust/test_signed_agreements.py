"""Alternating-offers agreements signed by both parties (the orchestrator holds neither key), over both
transports; a party that will not sign means no agreement; the guardrail checks the terms before signing."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from agents.negotiators import Negotiator, Preferences, agreement_problem, negotiator_agent
from orchestrator.ledger import ContractLedger
from orchestrator.negotiation import AgreementSigning, alternating_offers, serve_parties
from orchestrator.runs import RunStore
from protocol.auth import SigningKey
from protocol.negotiation import ContractTerms, Issue, Offer, OfferRecord, PartySignature, RespondRequest
from protocol.signing import sign_terms, verify_terms

pytestmark = pytest.mark.anyio

ISSUES = [Issue(name="price", values=[80.0, 90.0, 100.0, 110.0, 120.0]), Issue(name="day", values=[1.0, 2.0, 3.0])]
BUYER = Preferences(weights={"price": 0.7, "day": 0.3}, increasing={"price": False, "day": False}, reservation=0.2)
SELLER = Preferences(weights={"price": 0.8, "day": 0.2}, reservation=0.2, limits={"price": (90.0, 999.0)})


@pytest.fixture(params=["local", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(tmp_path: object) -> Iterator[RunStore]:
    run_store = RunStore(f"sqlite:///{tmp_path}/orch.db")
    yield run_store
    run_store.close()


async def test_both_parties_sign_an_alternating_offers_agreement(transport: str, store: RunStore) -> None:
    buyer_key, seller_key = SigningKey.generate(), SigningKey.generate()
    agents = [
        negotiator_agent("buyer", Negotiator(BUYER, "linear", signing_key=buyer_key)),
        negotiator_agent("seller", Negotiator(SELLER, "conceder", signing_key=seller_key)),
    ]
    ledger = ContractLedger(store.engine, SigningKey.generate())
    signing = AgreementSigning(ledger=ledger, party_keys={"buyer": buyer_key.kid, "seller": seller_key.kid})
    with anyio.fail_after(30):
        async with serve_parties(agents, transport) as parties:
            outcome = await alternating_offers(
                parties["buyer"], parties["seller"], ISSUES, item="bolts", negotiation_id="neg-1", signing=signing
            )
    assert outcome.agreement is not None
    [contract] = signing.signed
    assert contract.terms.values == outcome.agreement.values and contract.terms.protocol == "alternating"
    assert (contract.terms.buyer, contract.terms.seller) == ("buyer", "seller")
    kids = [verify_terms(contract.terms, s.wire()).kid for s in contract.signatures]
    assert kids == [buyer_key.kid, seller_key.kid]
    assert [e.contract for e in ledger.entries()] == [contract] and ledger.verify().ok


async def test_a_party_without_a_key_means_no_agreement(transport: str) -> None:
    agents = [
        negotiator_agent("buyer", Negotiator(BUYER, "linear", signing_key=SigningKey.generate())),
        negotiator_agent("seller", Negotiator(SELLER, "conceder")),
    ]
    signing = AgreementSigning()
    with anyio.fail_after(30):
        async with serve_parties(agents, transport) as parties:
            outcome = await alternating_offers(
                parties["buyer"], parties["seller"], ISSUES, item="bolts", signing=signing
            )
    assert outcome.agreement is None and signing.signed == []
    assert "no contract" in outcome.reason and "seller" in outcome.reason


def test_the_guardrail_refuses_terms_outside_the_limits_or_badly_signed() -> None:
    other = SigningKey.generate()
    terms = ContractTerms(
        contract_id="n",
        negotiation_id="n",
        protocol="alternating",
        buyer="buyer",
        seller="seller",
        item="bolts",
        values={"price": 80.0, "day": 2.0},
        agreed_at="2026-12-01T00:00:00+00:00",
    )
    history = [OfferRecord(sender="buyer", round=1, offer=Offer(values=terms.values))]
    req = RespondRequest(
        negotiation_id="n",
        me="seller",
        opponent="buyer",
        item="bolts",
        issues=ISSUES,
        round=1,
        max_rounds=5,
        time=0.0,
        history=history,
        contract=terms,
    )
    assert agreement_problem("seller", req, SELLER.limits) == "price=80 is outside my limits [90, 999]"
    fine = terms.model_copy(update={"values": {"price": 100.0, "day": 2.0}})
    history = [OfferRecord(sender="buyer", round=1, offer=Offer(values=fine.values))]
    ok = req.model_copy(update={"contract": fine, "history": history})
    assert agreement_problem("seller", ok, SELLER.limits) is None
    forged = PartySignature.model_validate(sign_terms(terms, other, "buyer"))  # over other terms
    assert "does not hold" in (agreement_problem("seller", ok.model_copy(update={"signature": forged}), {}) or "")
    changed = ok.model_copy(
        update={"history": [OfferRecord(sender="buyer", round=1, offer=Offer(values=terms.values))]}
    )
    assert agreement_problem("seller", changed, {}) == "the contract's values are not the offer accepted"
