"""Negotiating agents: linear utilities, classic strategies, an LLM-guided negotiator with hard guardrails."""

from agents.negotiators.agent import Negotiator, negotiator_agent
from agents.negotiators.carrier import Carrier, CarrierProfile, carrier_agent
from agents.negotiators.guided import guided_respond
from agents.negotiators.strategies import STRATEGIES, Strategy, TimeDependent, TitForTat, get_strategy
from agents.negotiators.utility import LinearUtility, OutcomeSpace, Preferences, outcome_space

__all__ = [
    "Negotiator",
    "negotiator_agent",
    "Carrier",
    "CarrierProfile",
    "carrier_agent",
    "guided_respond",
    "STRATEGIES",
    "Strategy",
    "TimeDependent",
    "TitForTat",
    "get_strategy",
    "LinearUtility",
    "OutcomeSpace",
    "Preferences",
    "outcome_space",
]
