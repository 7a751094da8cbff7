"""Signed contracts and the hash-chained ledger: every contract of a manufacturing run is in the ledger with both
signatures; any edit, deletion or reordering of rows is named by ``ledger verify``; no signature, no contract."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from agents.negotiators import Negotiator, Preferences, negotiator_agent, set_signing_key
from orchestrator import tables as t
from orchestrator.cli import main
from orchestrator.ledger import ContractLedger, SignedContract, TrustedKeys
from orchestrator.negotiation import contract_net, serve_parties
from orchestrator.negotiation.signing import ContractSigning
from orchestrator.runs import RunStore
from protocol.auth import SigningKey
from protocol.negotiation import CallForProposals, Issue
from protocol.signing import verify_terms
from scenarios.manufacturing_trust import ScenarioTrust, derived_key
from scenarios.smart_manufacturing import ScenarioConfig, arun

pytestmark = pytest.mark.anyio

ISSUES = [Issue(name="unit_price", values=[10, 11, 12, 13, 14]), Issue(name="quantity", values=[50, 100])]
SUPPLIER = Preferences(
    weights={"unit_price": 0.8, "quantity": 0.2}, limits={"unit_price": (11.0, 20.0)}, reservation=0.0
)


@pytest.fixture
def store(db_url: str) -> Iterator[RunStore]:
    run_store = RunStore(db_url)
    yield run_store
    run_store.close()


def cfp(cfp_id: str = "cfp-1") -> CallForProposals:
    return CallForProposals(
        cfp_id=cfp_id, buyer="buyer", item="bolts", quantity=100, due_day=5, issues=ISSUES, deadline_s=10
    )


def supplier(name: str, key: SigningKey | None) -> object:
    agent = negotiator_agent(name, Negotiator({"bolts": SUPPLIER}), items=["bolts"])
    set_signing_key(agent, key)
    return agent


def price_score(proposal: object) -> float:
    return -proposal.offer.values["unit_price"]  # type: ignore[attr-defined]


async def test_a_contract_net_award_is_signed_by_both_and_kept_in_the_ledger(store: RunStore) -> None:
    buyer_key, seller_key, orch_key = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    ledger = ContractLedger(store.engine, orch_key)
    signing = ContractSigning("buyer", buyer_key, ledger=ledger, party_keys={"s1": seller_key.kid})
    async with serve_parties([supplier("s1", seller_key)], "local") as parties:
        result = await contract_net(cfp(), list(parties.values()), price_score, signing=signing)
    assert [p.bidder for p in result.awarded] == ["s1"]
    [contract] = result.contracts
    assert [s.signer for s in contract.signatures] == ["buyer", "s1"]
    assert verify_terms(contract.terms, contract.signatures[1].wire()).kid == seller_key.kid
    assert contract.terms.negotiation_id == "cfp-1" and contract.terms.values == result.awarded[0].offer.values
    [entry] = ledger.entries()
    assert entry.seq == 1 and entry.contract == contract
    check = ledger.verify()
    assert check.ok and check.entries == 1 and check.head == entry.entry_hash


async def test_a_party_that_refuses_to_sign_means_no_contract(store: RunStore) -> None:
    ledger = ContractLedger(store.engine, SigningKey.generate())
    buyer_key = SigningKey.generate()
    # no key: it confirms, but unsigned; the buyer makes no contract with it and the award passes on
    async with serve_parties([supplier("unsigned", None), supplier("signer", SigningKey.generate())]) as parties:
        signing = ContractSigning("buyer", buyer_key, ledger=ledger)
        result = await contract_net(
            cfp(), list(parties.values()), lambda p: 1.0 if p.bidder == "unsigned" else 0.0, signing=signing
        )
    assert [p.bidder for p in result.awarded] == ["signer"]
    assert "confirmed without signing" in result.withdrawn["unsigned"]
    assert [c.terms.seller for c in result.contracts] == ["signer"]
    # terms outside its limits (price 10 < its floor 11): the guardrail refuses before signing
    async with serve_parties([supplier("careful", SigningKey.generate())]) as parties:
        signing = ContractSigning("buyer", buyer_key, ledger=ledger)
        collected = await contract_net(cfp("cfp-2"), list(parties.values()), price_score, awards=0, signing=signing)
        from orchestrator.negotiation import award_best
        from protocol.negotiation import Offer

        cheap = Offer(values={"unit_price": 10.0, "quantity": 100.0})
        result = await award_best(collected, parties, terms={"careful": cheap}, signing=signing)
    assert result.awarded == [] and result.contracts == []
    assert "refused to sign: unit_price=10 is outside my limits" in result.withdrawn["careful"]
    assert len(ledger.entries()) == 1  # only the contract with "signer"


def _ledger_with(store: RunStore, n: int) -> tuple[ContractLedger, SigningKey]:
    orch = SigningKey.generate()
    ledger = ContractLedger(store.engine, orch)
    buyer, seller = SigningKey.generate(), SigningKey.generate()
    for i in range(n):
        signing = ContractSigning("buyer", buyer)
        terms, mine = signing.terms(
            contract_id=f"c{i}",
            negotiation_id=f"n{i}",
            protocol="contract_net",
            seller="s",
            item="bolts",
            values={"unit_price": 10.0 + i},
        )
        from protocol.negotiation import PartySignature
        from protocol.signing import sign_terms

        theirs = PartySignature.model_validate(sign_terms(terms, seller, "s"))
        ledger.append(SignedContract(terms=terms, signatures=[mine, theirs]), run_id=f"run-{i}")
    return ledger, orch


def _rows(store: RunStore) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t.ledger).order_by(t.ledger.c.seq))]


def _replace(store: RunStore, rows: list[dict[str, object]]) -> None:
    with store.engine.begin() as conn:
        conn.execute(t.ledger.delete())
        conn.execute(t.ledger.insert(), rows)


@pytest.mark.parametrize("column", ["body", "entry_hash", "contract_id", "run_id"])
@pytest.mark.parametrize("row", [0, 2, 4])
def test_changing_any_byte_of_a_row_is_named(store: RunStore, column: str, row: int) -> None:
    ledger, _ = _ledger_with(store, 5)
    rows = _rows(store)
    text = str(rows[row][column])
    for position in (0, len(text) // 2, len(text) - 1):
        changed = [dict(r) for r in rows]
        flipped = chr(ord(text[position]) ^ 1)
        changed[row][column] = text[:position] + flipped + text[position + 1 :]
        _replace(store, changed)
        check = ledger.verify()
        assert not check.ok and check.bad_seq == row + 1, (column, position, check)
    _replace(store, rows)
    assert ledger.verify().ok


def test_a_changed_time_or_sequence_is_named(store: RunStore) -> None:
    from datetime import timedelta

    ledger, _ = _ledger_with(store, 3)
    rows = _rows(store)
    later = [dict(r) for r in rows]
    later[1]["recorded_at"] = rows[1]["recorded_at"] + timedelta(seconds=1)  # type: ignore[operator]
    _replace(store, later)
    assert ledger.verify().bad_seq == 2
    renumbered = [dict(r) for r in rows]
    renumbered[2]["seq"] = 7
    _replace(store, renumbered)
    assert ledger.verify().bad_seq == 3


def test_deleting_or_reordering_rows_is_named(store: RunStore) -> None:
    ledger, _ = _ledger_with(store, 4)
    rows = _rows(store)
    _replace(store, [rows[0], rows[2], rows[3]])
    check = ledger.verify()
    assert not check.ok and check.bad_seq == 2 and "missing" in (check.problem or "")
    swapped = [dict(r) for r in rows]
    swapped[1]["seq"], swapped[2]["seq"] = 3, 2
    _replace(store, swapped)
    check = ledger.verify()
    assert not check.ok and check.bad_seq == 2
    # the last entry deleted: only a head seen before tells (the scenario report prints it)
    head = rows[-1]["entry_hash"]
    _replace(store, rows[:-1])
    assert ledger.verify().ok
    check = ledger.verify(expected_head=str(head))
    assert not check.ok and check.bad_seq == 4
    _replace(store, rows)
    assert ledger.verify(expected_head=str(head)).ok


def test_a_forged_countersignature_or_an_untrusted_party_key_is_named(store: RunStore) -> None:
    ledger, orch = _ledger_with(store, 2)
    other = ContractLedger(store.engine, SigningKey.generate())
    assert not other.verify().ok and "counter-signed by key" in (other.verify().problem or "")
    assert ContractLedger(store.engine).verify(orchestrator_keys={orch.kid: orch.jwk()}).ok
    check = ledger.verify(trusted=TrustedKeys({"keys": []}))
    assert not check.ok and check.bad_seq == 1 and "not among the trusted keys" in (check.problem or "")


def test_ledger_commands(store: RunStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger, orch = _ledger_with(store, 3)
    db = str(store.url)
    key_file = tmp_path / "orch.jwk"
    key_file.write_text(json.dumps(orch.jwk()))
    assert main(["ledger", "verify", "--db", db, "--orchestrator-key", str(key_file)]) == 0
    assert capsys.readouterr().out.startswith("ok: 3 entries, head ")
    assert main(["ledger", "export", "--db", db]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3] and lines[2]["contract"]["terms"]["contractId"] == "c2"
    assert main(["ledger", "show", "--db", db, "--after", "2"]) == 0
    assert "c2" in capsys.readouterr().out
    rows = _rows(store)
    _replace(store, [rows[0], rows[2]])
    assert main(["ledger", "verify", "--db", db]) == 1
    assert capsys.readouterr().out.startswith("FAILED at entry 2:")


async def test_every_contract_of_a_manufacturing_run_is_in_the_ledger_signed_by_both(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/scenario.db"
    config = ScenarioConfig(suppliers=12, distributors=3, brain="rule", seed=11, out=None, progress=False)
    trust = ScenarioTrust(config.seed)
    result = await arun(config.model_copy(update={"record_runs": db}), trust=trust)
    assert trust.check is not None and trust.check.ok, trust.check
    store = RunStore(db, migrate=False)
    try:
        entries = ContractLedger(store.engine).entries()
        runs = {r["id"] for r in store.list_runs(kind="negotiation", limit=100)}
    finally:
        store.close()
    deliveries = [d for d in result.schedule if d.carrier is not None]
    assert len(entries) == len(result.contracts) + len(deliveries) == trust.contracts
    by_contract = {(e.contract.terms.seller, e.contract.terms.item): e for e in entries}
    for contract in result.contracts:
        entry = by_contract[(contract.seller, contract.item)]
        assert entry.contract.terms.values == contract.terms.values and entry.run_id in runs
        buyer, seller = entry.contract.signatures
        assert verify_terms(entry.contract.terms, buyer.wire()).kid == derived_key(11, contract.buyer).kid
        assert verify_terms(entry.contract.terms, seller.wire()).kid == derived_key(11, contract.seller).kid
    for delivery in deliveries:
        assert (delivery.carrier, delivery.item) in by_contract
    lines = trust.report_lines()
    assert f"ledger head: {trust.check.head}" in lines[2] and "ledger verify: ok" in lines[3]
