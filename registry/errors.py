"""Errors the registry raises; each message says what was wrong and how to fix it."""

from __future__ import annotations

__all__ = [
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


class RegistryError(Exception):
    """Base of every registry error."""


class AgentNotFound(RegistryError, LookupError):
    """No agent with that id (or name) is registered."""


class NameConflict(RegistryError):
    """The agent name is already registered under another id."""


class CardFetchError(RegistryError):
    """The agent card could not be fetched (unreachable host, timeout, HTTP error)."""


class CardValidationError(RegistryError, ValueError):
    """The agent card (or registration payload) does not validate."""


class McpDiscoveryError(RegistryError):
    """An MCP server could not be reached or did not list its tools."""


class RegistryUnavailable(RegistryError):
    """The registry database cannot be opened (missing directory, server down, bad URL)."""


class RegistryReadOnly(RegistryError):
    """The registry database is read-only, so the operation could not be written."""


class InvalidQuery(RegistryError, ValueError):
    """A search or list request has out-of-range parameters."""


class InvalidRequest(RegistryError, ValueError):
    """A request body or path parameter does not validate (the message names the fields, on one line)."""


class Unauthorized(RegistryError):
    """The registry server refused the caller's credentials (HTTP 401): no token, or a malformed, expired,
    revoked or foreign one. Set $SCALEOUT_TOKEN (or pass ``token=`` / ``--token``) to a token for this server."""


class Forbidden(RegistryError, PermissionError):
    """The caller is known but may not do this (HTTP 403)."""


class InsufficientScope(Forbidden):
    """The caller's token lacks the scope the route needs (the message names it)."""


class NotOwner(Forbidden):
    """The agent belongs to another principal: only its owner or an admin may change, drain or remove it."""
