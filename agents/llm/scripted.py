"""A deterministic brain for tests: replays scripted replies in order, recording every request it saw."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from agents.llm.base import Completion, GenerationRequest
from agents.usage import Usage

__all__ = ["Scripted"]

Reply = str | dict[str, Any] | BaseModel | Callable[[GenerationRequest], "str | dict[str, Any] | BaseModel"]


class Scripted:
    """Replies are strings, dicts or models (sent as JSON), or callables of the request.

    With ``cycle=True`` the script repeats; otherwise running out raises ``RuntimeError``, so a test that
    makes more calls than it scripted fails loudly instead of passing by accident.
    """

    def __init__(self, replies: Iterable[Reply], *, cycle: bool = False, name: str = "scripted") -> None:
        self._replies = list(replies)
        self._cycle = cycle
        self._next = 0
        self._name = name
        self.requests: list[GenerationRequest] = []

    @property
    def model_name(self) -> str:
        return self._name

    async def generate(self, request: GenerationRequest) -> Completion:
        self.requests.append(request)
        if self._next >= len(self._replies):
            if not self._cycle or not self._replies:
                raise RuntimeError(f"Scripted brain ran out of replies after {len(self._replies)} calls")
            self._next = 0
        reply = self._replies[self._next]
        self._next += 1
        if callable(reply) and not isinstance(reply, BaseModel):
            reply = reply(request)
        if isinstance(reply, BaseModel):
            text = reply.model_dump_json()
        elif isinstance(reply, dict):
            text = json.dumps(reply)
        else:
            text = str(reply)
        usage = Usage(
            model=self._name,
            calls=1,
            prompt_tokens=len(request.prompt.split()),
            completion_tokens=len(text.split()),
            models={self._name: 1},
        )
        return Completion(text=text, usage=usage)
