"""Small-model agents: typed skills, a brain (llama.cpp or scripted), served over A2A and MCP.

>>> from agents import Agent, SkillContext, LlamaCpp
"""

from agents.agent import Agent, Skill, SkillContext
from agents.client import AgentClient, HttpAgentClient, LocalAgentClient, skill_message
from agents.errors import (
    AgentError,
    DeadlineExceeded,
    InvalidModelOutput,
    ModelBackendMissing,
    ModelBusy,
    SkillInputError,
    SkillNotFound,
)
from agents.llm import Brain, GenerationRequest, LlamaCpp, Scripted
from agents.serve import create_app
from agents.usage import Usage

__all__ = [
    "Agent",
    "Skill",
    "SkillContext",
    "AgentClient",
    "HttpAgentClient",
    "LocalAgentClient",
    "skill_message",
    "AgentError",
    "DeadlineExceeded",
    "InvalidModelOutput",
    "ModelBusy",
    "ModelBackendMissing",
    "SkillInputError",
    "SkillNotFound",
    "Brain",
    "GenerationRequest",
    "LlamaCpp",
    "Scripted",
    "create_app",
    "Usage",
]
