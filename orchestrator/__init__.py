"""The orchestrator: routes tasks to registered agents, runs task graphs, records every run.

>>> from orchestrator import Orchestrator, TaskSpec, GraphSpec
"""

from orchestrator.credentials import AgentCredentials
from orchestrator.energy import EnergyModel
from orchestrator.graph import GraphError, TaskGraph
from orchestrator.limits import LimitExceeded, RunLimits
from orchestrator.router import Candidate, Router, Routing
from orchestrator.runs import RunStore, StoreUnavailable
from orchestrator.service import Orchestrator, ReplicaConflict, RunNotFound
from orchestrator.spec import Constraints, GraphSpec, TaskSpec
from orchestrator.transports import AgentCallError, AgentUnreachable, Transports

__all__ = [
    "Orchestrator",
    "RunLimits",
    "LimitExceeded",
    "RunNotFound",
    "ReplicaConflict",
    "StoreUnavailable",
    "RunStore",
    "Router",
    "Routing",
    "Candidate",
    "TaskGraph",
    "GraphError",
    "GraphSpec",
    "TaskSpec",
    "Constraints",
    "EnergyModel",
    "Transports",
    "AgentCallError",
    "AgentUnreachable",
    "AgentCredentials",
]
