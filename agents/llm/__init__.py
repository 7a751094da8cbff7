"""Model backends behind one seam (``Brain``): llama.cpp for real work, scripted for tests."""

from agents.llm.base import Brain, Completion, GenerationRequest
from agents.llm.engine import ContextOverflow, Engine, EngineClosed, EngineConfig, EngineStats
from agents.llm.llamacpp import LlamaCpp
from agents.llm.native import ContextConfig
from agents.llm.pool import POOL, ModelPool, default_model_path
from agents.llm.scripted import Scripted

__all__ = [
    "Brain",
    "Completion",
    "GenerationRequest",
    "LlamaCpp",
    "Scripted",
    "ModelPool",
    "POOL",
    "default_model_path",
    "ContextConfig",
    "Engine",
    "EngineClosed",
    "EngineConfig",
    "EngineStats",
    "ContextOverflow",
]
