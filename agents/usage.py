"""Usage accounting carried by every agent reply: tokens, seconds, model, energy estimate."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = ["Usage"]


class Usage(BaseModel):
    """What one or more model calls cost. Adding two usages sums every counter."""

    # camelCase on the wire (A2A metadata), snake_case in Python; both are accepted on input
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    model: str = ""
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    models: dict[str, int] = Field(default_factory=dict, description="calls per model name")

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        models = dict(self.models)
        for name, n in other.models.items():
            models[name] = models.get(name, 0) + n
        return Usage(
            model=self.model or other.model,
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            wall_seconds=self.wall_seconds + other.wall_seconds,
            cpu_seconds=self.cpu_seconds + other.cpu_seconds,
            models=models,
        )
