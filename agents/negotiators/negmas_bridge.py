"""NegMAS both ways: scaleout negotiators as NegMAS ``SAONegotiator``s, NegMAS negotiators as scaleout agents.

Needs the optional ``negotiation`` extra (``pip install 'scaleout[negotiation]'``: negmas 0.16 and
negmas-genius-agents); importing this module without it raises an ``ImportError`` that names the extra. Nothing
else in scaleout imports NegMAS.

- ``ScaleoutNegotiator(strategy="boulware")`` / ``negmas_negotiator_class("boulware")``: any registered strategy
  in NegMAS mechanisms and tournaments (its ufun seen as a ``NegmasUtility``, outcomes as our issues: numeric
  issues by value, categorical ones by index 0..n-1).
- ``negmas_agent(name, "negmas.sao.AspirationNegotiator", preferences)``: a NegMAS negotiator behind the same
  ``respond`` skill as ``negotiator_agent``, served over A2A and MCP like any agent.
"""

from agents.negotiators.negmas_bridge_agent import (
    NegmasSessions,
    NegotiatorFactory,
    UtilityFor,
    load_negotiator_class,
    negmas_agent,
)
from agents.negotiators.negmas_bridge_sao import ScaleoutNegotiator, negmas_negotiator_class, negmas_negotiator_classes
from agents.negotiators.negmas_bridge_space import (
    CONTINUOUS_LEVELS,
    NEGMAS_MISSING,
    IssueMap,
    NegmasUtility,
    ScaleoutUfun,
    issue_map,
    negmas_outcome_space,
)

__all__ = [
    "NEGMAS_MISSING",
    "CONTINUOUS_LEVELS",
    "IssueMap",
    "issue_map",
    "NegmasUtility",
    "ScaleoutUfun",
    "negmas_outcome_space",
    "ScaleoutNegotiator",
    "negmas_negotiator_class",
    "negmas_negotiator_classes",
    "negmas_agent",
    "NegmasSessions",
    "NegotiatorFactory",
    "UtilityFor",
    "load_negotiator_class",
]
