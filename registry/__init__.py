"""Who can do what: a registry of A2A agents and MCP servers on SQLite (default) or PostgreSQL.

Imports only ``protocol`` of scaleout. ``Registry`` is the synchronous store; ``registry.api`` serves it over
HTTP, ``registry.client.RegistryClient`` calls that API, ``registry.discovery`` reads cards and MCP servers.
"""

from registry.errors import (
    AgentNotFound,
    CardFetchError,
    CardValidationError,
    Forbidden,
    InsufficientScope,
    InvalidQuery,
    InvalidRequest,
    McpDiscoveryError,
    NameConflict,
    NotOwner,
    RegistryError,
    RegistryReadOnly,
    RegistryUnavailable,
    Unauthorized,
)
from registry.models import (
    AgentRecord,
    AgentStats,
    AgentVersion,
    CallReport,
    CostHints,
    HealthStatus,
    ModelInfo,
    Registration,
    SkillRecord,
    StdioRegistration,
)
from registry.store import Registry

__all__ = [
    "Registry",
    "AgentRecord",
    "AgentStats",
    "AgentVersion",
    "CallReport",
    "CostHints",
    "HealthStatus",
    "ModelInfo",
    "Registration",
    "StdioRegistration",
    "SkillRecord",
    "RegistryError",
    "AgentNotFound",
    "NameConflict",
    "CardFetchError",
    "CardValidationError",
    "McpDiscoveryError",
    "RegistryUnavailable",
    "RegistryReadOnly",
    "InvalidQuery",
    "InvalidRequest",
    "Unauthorized",
    "Forbidden",
    "InsufficientScope",
    "NotOwner",
]
