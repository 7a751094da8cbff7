"""The model-backend seam: every brain turns a prompt (optionally schema-constrained) into text plus usage."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from agents.usage import Usage

__all__ = ["Brain", "Completion", "GenerationRequest"]


class GenerationRequest(BaseModel):
    """One generation: a prompt, an optional JSON schema the output must follow, and bounds."""

    prompt: str = Field(max_length=200_000)
    system: str | None = None
    json_schema: dict[str, Any] | None = None
    max_tokens: int = Field(default=256, ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int = 0
    timeout_s: float | None = Field(default=None, gt=0)


class Completion(BaseModel):
    """The model's text and what producing it cost."""

    text: str
    usage: Usage
    stop_reason: str = "stop"


@runtime_checkable
class Brain(Protocol):
    """A model backend. ``LlamaCpp`` runs a real GGUF; ``Scripted`` replays fixed replies for tests."""

    @property
    def model_name(self) -> str: ...

    async def generate(self, request: GenerationRequest) -> Completion: ...
