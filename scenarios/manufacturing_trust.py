"""Signed contracts in the manufacturing scenario: a key per party (derived from the seed, so runs repeat), the
buyers' ``ContractSigning``, the ledger in the run store's database, and its verification for the report."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agents.agent import Agent
from agents.negotiators import set_signing_key
from orchestrator.ledger import ContractLedger, LedgerCheck
from orchestrator.negotiation import NegotiationRuns
from orchestrator.negotiation.signing import ContractSigning
from protocol.auth import SigningKey

__all__ = ["ScenarioTrust", "derived_key"]


def derived_key(seed: int, name: str) -> SigningKey:
    """The Ed25519 key of party ``name`` in the run with ``seed`` (deterministic: for repeatable runs only)."""
    return SigningKey(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()))


class ScenarioTrust:
    """Keys for every party and the orchestrator, the ledger once a run store is open, and its check at the end.
    ``orchestrator_key`` counter-signs ledger entries (default: one derived from the seed)."""

    def __init__(self, seed: int = 0, *, orchestrator_key: SigningKey | None = None) -> None:
        self.seed = seed
        self.orchestrator_key = orchestrator_key or derived_key(seed, "orchestrator")
        self.keys: dict[str, SigningKey] = {}
        self.ledger: ContractLedger | None = None
        self.check: LedgerCheck | None = None
        self.signings: list[ContractSigning] = []

    def key(self, name: str) -> SigningKey:
        """The key of party ``name`` (made on first use)."""
        if name not in self.keys:
            self.keys[name] = derived_key(self.seed, name)
        return self.keys[name]

    def arm(self, agents: list[Agent]) -> int:
        """Give every negotiating agent its key; returns how many took one."""
        return sum(set_signing_key(agent, self.key(agent.name)) for agent in agents)

    def open(self, runs: NegotiationRuns | None) -> None:
        """Keep the ledger in the database of ``runs``' orchestrator (no ledger without a run store)."""
        if runs is not None:
            self.ledger = ContractLedger(runs.orch.store.engine, self.orchestrator_key)

    def signing(self, initiator: str) -> ContractSigning:
        """The contract signing of ``initiator`` (a buyer); the other parties' keys are pinned by kid."""
        pinned = {name: key.kid for name, key in self.keys.items()}
        signing = ContractSigning(initiator, self.key(initiator), ledger=self.ledger, party_keys=pinned)
        self.signings.append(signing)
        return signing

    @property
    def contracts(self) -> int:
        """Contracts signed by both parties in this run."""
        return sum(len(s.signed) for s in self.signings)

    def verify(self) -> LedgerCheck | None:
        """Verify the whole ledger (the chain and every signature); None without a ledger."""
        if self.ledger is not None:
            self.check = self.ledger.verify(orchestrator_keys={self.orchestrator_key.kid: self.orchestrator_key.jwk()})
        return self.check

    def report_lines(self) -> list[str]:
        """The report's ledger section: contracts signed, the ledger head and the verification result."""
        lines = ["", f"Trust: {self.contracts} contracts signed by both parties"]
        if self.check is None:
            return [*lines, "  no ledger (record the run with --record-runs DB to keep one)"]
        return [
            *lines,
            f"  ledger head: {self.check.head} ({self.check.entries} entries)",
            f"  ledger verify: {self.check.summary()}",
        ]
