"""Negotiation protocols over A2A agents: contract net, alternating offers (bilateral and one-to-many),
sealed-bid auctions, and outcome analytics (utilities, welfare, Pareto and Nash distances)."""

from orchestrator.negotiation.alternating import OneToManyResult, alternating_offers, one_to_many
from orchestrator.negotiation.analytics import Analysis, analyse, nash_point, pareto_frontier
from orchestrator.negotiation.auction import AuctionResult, sealed_bid_auction
from orchestrator.negotiation.calls import (
    AgentLedger,
    Ledger,
    NegotiationCallError,
    NegotiationTimeout,
    Party,
    call_skill,
    gather_replies,
)
from orchestrator.negotiation.contract_net import ContractNetResult, award_best, collect_proposals, contract_net
from orchestrator.negotiation.transport import serve_parties

__all__ = [
    "OneToManyResult",
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
    "call_skill",
    "gather_replies",
    "ContractNetResult",
    "award_best",
    "collect_proposals",
    "contract_net",
    "serve_parties",
]
