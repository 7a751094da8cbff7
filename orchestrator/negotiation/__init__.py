"""Negotiation protocols over A2A agents: contract net, alternating offers (bilateral and one-to-many),
sealed-bid auctions, and outcome analytics (utilities, welfare, Pareto and Nash distances). Every protocol reports
its steps to a ``NegotiationRecorder``; ``NegotiationRuns`` records them as orchestrator runs. With a
``ContractSigning`` / ``AgreementSigning`` agreements are contracts signed by both parties (docs/trust.md)."""

from orchestrator.negotiation.alternating import OneToManyResult, RecorderFactory, alternating_offers, one_to_many
from orchestrator.negotiation.analytics import Analysis, analyse, nash_point, pareto_frontier
from orchestrator.negotiation.auction import AuctionResult, sealed_bid_auction
from orchestrator.negotiation.calls import (
    AgentLedger,
    Ledger,
    NegotiationCallError,
    NegotiationTimeout,
    Party,
    SkillCaller,
    call_skill,
    gather_replies,
)
from orchestrator.negotiation.contract_net import ContractNetResult, award_best, collect_proposals, contract_net
from orchestrator.negotiation.recorder import (
    NO_RECORDER,
    AwardStep,
    BidStep,
    Ended,
    EventLog,
    NegotiationRecorder,
    NoRecorder,
    OfferStep,
    PartyInfo,
    Started,
)
from orchestrator.negotiation.runs import NegotiationRuns, RunRecorder, record_with, recording_runs
from orchestrator.negotiation.signing import AgreementSigning, ContractSigning
from orchestrator.negotiation.spec import NegotiationSpec
from orchestrator.negotiation.transport import serve_parties

__all__ = [
    "OneToManyResult",
    "RecorderFactory",
    "alternating_offers",
    "one_to_many",
    "Analysis",
    "analyse",
    "nash_point",
    "pareto_frontier",
    "AuctionResult",
    "sealed_bid_auction",
    "AgentLedger",
    "Ledger",
    "NegotiationCallError",
    "NegotiationTimeout",
    "Party",
    "SkillCaller",
    "call_skill",
    "gather_replies",
    "ContractNetResult",
    "award_best",
    "collect_proposals",
    "contract_net",
    "NO_RECORDER",
    "AwardStep",
    "BidStep",
    "Ended",
    "EventLog",
    "NegotiationRecorder",
    "NoRecorder",
    "OfferStep",
    "PartyInfo",
    "Started",
    "NegotiationRuns",
    "RunRecorder",
    "record_with",
    "recording_runs",
    "AgreementSigning",
    "ContractSigning",
    "NegotiationSpec",
    "serve_parties",
]
