"""Negotiating agents: linear and non-linear utilities, classic strategies, an LLM-guided negotiator with guardrails."""

from agents.negotiators.agent import Negotiator, negotiator_agent
from agents.negotiators.carrier import Carrier, CarrierProfile, carrier_agent
from agents.negotiators.contracts import (
    agreement_problem,
    set_signing_key,
    signed_agreement,
    signed_reply,
    terms_problem,
)
from agents.negotiators.guided import guided_respond
from agents.negotiators.language import OfferExplanation, OfferReading, add_language_skills, explain_offer, read_offer
from agents.negotiators.strategies import STRATEGIES, Adaptive, Strategy, TimeDependent, TitForTat, get_strategy
from agents.negotiators.utilities import (
    AdditivePreferences,
    AdditiveUtility,
    AnyPreferences,
    Box,
    LinearValue,
    PiecewiseValue,
    TableEntry,
    TablePreferences,
    TableUtility,
    TableValue,
    ValueFunction,
    utility_for,
)
from agents.negotiators.utility import LinearUtility, OutcomeSpace, Preferences, Utility, outcome_space

__all__ = [
    "Negotiator",
    "negotiator_agent",
    "Carrier",
    "CarrierProfile",
    "carrier_agent",
    "set_signing_key",
    "agreement_problem",
    "signed_agreement",
    "signed_reply",
    "terms_problem",
    "guided_respond",
    "read_offer",
    "explain_offer",
    "add_language_skills",
    "OfferReading",
    "OfferExplanation",
    "STRATEGIES",
    "Strategy",
    "TimeDependent",
    "TitForTat",
    "Adaptive",
    "get_strategy",
    "LinearUtility",
    "Utility",
    "OutcomeSpace",
    "Preferences",
    "outcome_space",
    "AnyPreferences",
    "TablePreferences",
    "TableEntry",
    "AdditivePreferences",
    "LinearValue",
    "PiecewiseValue",
    "TableValue",
    "ValueFunction",
    "Box",
    "TableUtility",
    "AdditiveUtility",
    "utility_for",
]
