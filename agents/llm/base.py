"""The model-backend seam: every brain turns a prompt (optionally schema-constrained) into text plus usage."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field, model_validator

from agents.usage import Usage

__all__ = ["Brain", "Completion", "GenerationRequest"]


class GenerationRequest(BaseModel):
    """One generation: a prompt, an optional JSON schema or shortlist the output must follow, and bounds.

    ``session_id`` names the conversation: a backend that caches (``LlamaCpp``) keeps its KV state, so the
    next turn evaluates only the new text. ``choices`` makes the output exactly one of the given strings.
    """

    prompt: str = Field(max_length=200_000)
    system: str | None = None
    json_schema: dict[str, Any] | None = None
    max_tokens: int = Field(default=256, ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int = 0
    timeout_s: float | None = Field(default=None, gt=0)
    session_id: str | None = Field(default=None, min_length=1, max_length=200)
    choices: list[str] | None = Field(default=None, min_length=1, max_length=256)
    stop: list[str] | None = Field(default=None, max_length=8)

    @model_validator(mode="after")
    def _one_constraint(self) -> GenerationRequest:
        if self.choices is not None and self.json_schema is not None:
            raise ValueError("give json_schema or choices, not both")
        return self


class Completion(BaseModel):
    """The model's text and what producing it cost (``cached_tokens``: prompt tokens reused, not evaluated)."""

    text: str
    usage: Usage
    stop_reason: str = "stop"
    cached_tokens: int = 0
    token_ids: list[int] = Field(default_factory=list)


@runtime_checkable
class Brain(Protocol):
    """A model backend. ``LlamaCpp`` runs a real GGUF; ``Scripted`` replays fixed replies for tests."""

    @property
    def model_name(self) -> str: ...

    async def generate(self, request: GenerationRequest) -> Completion: ...
