"""Agent = card + typed skills + a brain. Skills are async functions, pydantic in and pydantic out."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

import anyio
from pydantic import BaseModel, ValidationError

from agents.errors import DeadlineExceeded, InvalidModelOutput, SkillInputError, SkillNotFound
from agents.llm.base import Brain, Completion, GenerationRequest
from agents.task_ask import InputUnavailable
from agents.usage import Usage
from protocol import telemetry
from protocol.a2a import AgentCapabilities, AgentCard, AgentInterface, AgentProvider, AgentSkill
from protocol.validation import describe_validation_error

__all__ = ["Agent", "Asker", "RETRY_TEMPERATURE", "Skill", "SkillContext"]

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)
SkillFn = Callable[["SkillContext", Any], Awaitable[BaseModel]]
_SKILL_ID = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")
RETRY_TEMPERATURE = 0.7  # a retry samples: at temperature 0 it would repeat the refused answer
_MAX_CUE = 200  # a prompt's last line longer than this is not repeated after the feedback
_MAX_SESSION_ID = 200  # GenerationRequest.session_id's bound; longer context ids are hashed

Asker = Callable[[str, type[BaseModel], float | None], Awaitable[BaseModel]]
"""What ``SkillContext.ask`` calls: (question, answer type, timeout or None for the default) -> the answer."""


class SkillContext:
    """What a running skill may use: the brain, the usage so far, cancellation and the deadline."""

    def __init__(
        self,
        brain: Brain | None,
        *,
        task_id: str = "",
        context_id: str = "",
        deadline: float | None = None,
        asker: Asker | None = None,
    ) -> None:
        self.brain = brain
        self.task_id = task_id
        self.context_id = context_id
        self.deadline = deadline  # anyio.current_time() value, or None
        self.usage = Usage()
        self.asker = asker  # how ``ask`` reaches the caller; None where nobody can answer

    async def ask(self, question: str, answer_type: type[Out], *, timeout_s: float | None = None) -> Out:
        """Ask the caller ``question`` and wait for an ``answer_type`` answer (the A2A task is input-required).

        The caller answers with the next message on the same task; an answer that does not validate is refused
        with the error and the task keeps waiting. Past ``timeout_s`` (default: the runtime's
        ``input_timeout_s``) raises ``InputTimeout``. The deadline does not run while waiting. Raises
        ``InputUnavailable`` where nobody can answer (a direct ``Agent.call`` without an asker).
        """
        if self.asker is None:
            raise InputUnavailable(
                f"the skill asked {question[:200]!r} but nobody can answer here; run it as an A2A task "
                "(TaskRuntime, serve) or give SkillContext(asker=...)"
            )
        asked_at = anyio.current_time()
        answer = await self.asker(question, answer_type, timeout_s)
        if self.deadline is not None:
            self.deadline += anyio.current_time() - asked_at
        return answer_type.model_validate(answer)

    def remaining(self) -> float | None:
        """Seconds until the deadline (None when there is none)."""
        return None if self.deadline is None else self.deadline - anyio.current_time()

    async def complete(
        self,
        prompt: str,
        *,
        system: str | None = None,
        max_tokens: int = 256,
        seed: int = 0,
        session_id: str | None = None,
    ) -> str:
        """Free text from the brain (no schema); usage is recorded. Prefer ``generate`` for structured output.

        ``session_id`` (default: the task's contextId) names the conversation whose KV cache the call reuses.
        """
        if self.brain is None:
            raise InvalidModelOutput("this agent has no brain; give Agent(brain=LlamaCpp()) or Scripted([...])")
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded("deadline passed before the model call")
        completion = await _generate(
            self.brain,
            GenerationRequest(
                prompt=prompt,
                system=system,
                max_tokens=max_tokens,
                seed=seed,
                timeout_s=remaining,
                session_id=session_id or _session_of(self.context_id),
            ),
        )
        self.usage = self.usage + completion.usage
        return completion.text

    async def generate(
        self,
        prompt: str,
        output_type: type[Out],
        *,
        system: str | None = None,
        max_tokens: int = 256,
        retries: int = 2,
        temperature: float = 0.0,
        seed: int = 0,
        retry_temperature: float = RETRY_TEMPERATURE,
        session_id: str | None = None,
    ) -> Out:
        """Ask the brain for an ``output_type`` inside its JSON schema; retry invalid output, then fail.

        A retry is not a repeat: its prompt carries the validation error and it samples (``retry_temperature``,
        seed ``seed + attempt``). Raises ``InvalidModelOutput`` after ``retries + 1`` failed attempts.
        ``session_id`` (default: the task's contextId) names the conversation: every turn of one A2A context
        runs on the same cached KV sequence, so a prompt that extends the previous turn evaluates only the
        new text.
        """
        if self.brain is None:
            raise InvalidModelOutput("this agent has no brain; give Agent(brain=LlamaCpp()) or Scripted([...])")
        schema = output_type.model_json_schema()
        errors: list[str] = []
        request_prompt, request_temperature = prompt, temperature
        for attempt in range(retries + 1):
            remaining = self.remaining()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded(f"deadline passed before model attempt {attempt + 1}")
            request = GenerationRequest(
                prompt=request_prompt,
                system=system,
                json_schema=schema,
                max_tokens=max_tokens,
                temperature=request_temperature,
                seed=seed + attempt,
                timeout_s=remaining,
                session_id=session_id or _session_of(self.context_id),
            )
            completion = await _generate(self.brain, request)
            self.usage = self.usage + completion.usage
            try:
                return output_type.model_validate_json(completion.text)
            except ValidationError as exc:
                errors.append(_short(exc, completion.text))
                request_prompt = _retry_prompt(prompt, describe_validation_error(exc, limit=1), completion.text)
                request_temperature = max(temperature, retry_temperature)
        raise InvalidModelOutput(
            f"model output failed {output_type.__name__} validation {len(errors)} times: " + " | ".join(errors)
        )


async def _generate(brain: Brain, request: GenerationRequest) -> Completion:
    """One brain call inside its GenAI model span (model, tokens, finish reason; a no-op when tracing is off)."""
    model = brain.model_name
    opened = time.perf_counter()
    with telemetry.generation_span(
        model, max_tokens=request.max_tokens, temperature=request.temperature, seed=request.seed
    ) as span:
        completion = await brain.generate(request)
        usage = completion.usage
        telemetry.record_generation(
            span,
            usage.model or model,
            usage.prompt_tokens,
            usage.completion_tokens,
            completion.stop_reason,
            time.perf_counter() - opened,
        )
    return completion


def _session_of(context_id: str) -> str | None:
    """The generation session of an A2A context: its id, or a digest of an id too long to be a session name."""
    if len(context_id) <= _MAX_SESSION_ID:
        return context_id or None
    return "context-sha256:" + hashlib.sha256(context_id.encode()).hexdigest()


def _retry_prompt(prompt: str, error: str, output: str) -> str:
    """The next attempt's prompt: ``prompt`` with the refused ``output`` after it, why it was refused, and the
    prompt's last line (its cue, e.g. ``JSON:``) again, so the model answers where it answered before."""
    body = prompt.rstrip()
    cue = body[body.rfind("\n") + 1 :] + prompt[len(body) :]
    if len(cue) > _MAX_CUE:
        cue = "JSON: "
    gap = "" if prompt[-1:].isspace() else " "
    return f"{prompt}{gap}{output[:120]}\nThat answer was invalid: {error[:200]}. Answer again.\n{cue}"


def _short(exc: ValidationError, text: str) -> str:
    return f"{describe_validation_error(exc, limit=1)} (output {text[:80]!r})"


@dataclass
class Skill:
    """A typed capability: validated input model in, output model out."""

    id: str
    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    fn: SkillFn
    tags: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    asks: bool = False  # the skill may call ``ctx.ask`` (its task can wait for input)

    def card(self) -> AgentSkill:
        return AgentSkill(
            id=self.id,
            name=self.name,
            description=self.description,
            tags=self.tags,
            examples=self.examples,
            input_modes=["application/json", "text/plain"],
            output_modes=["application/json", "text/plain"],  # agents.output_parts.OUTPUT_MODES
        )

    def parse_input(self, arguments: Any) -> BaseModel:
        """Validate raw arguments (a dict, a JSON string, or plain text for one-string-field models)."""
        if isinstance(arguments, str):
            text_fields = [n for n, f in self.input_model.model_fields.items() if f.annotation is str]
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                if len(self.input_model.model_fields) == 1 and text_fields:
                    arguments = {text_fields[0]: arguments}
                else:
                    raise SkillInputError(
                        f"skill {self.id!r} takes a JSON object matching {self.input_model.__name__}; "
                        "send it as a data part"
                    ) from None
        try:
            return self.input_model.model_validate(arguments)
        except ValidationError as exc:
            details = describe_validation_error(exc)
            raise SkillInputError(f"invalid input for skill {self.id!r}: {details}") from None


class Agent:
    """A named agent with typed skills and a brain.

    >>> agent = Agent("echo", "Repeats what it is told")
    >>> @agent.skill()
    ... async def echo(ctx: SkillContext, req: EchoIn) -> EchoOut: ...
    """

    def __init__(
        self,
        name: str,
        description: str,
        *,
        brain: Brain | None = None,
        version: str = "1.0.0",
        provider: AgentProvider | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}", name):
            raise ValueError(f"agent name {name!r} must be 1-64 letters, digits, '_', '-', '.'")
        self.name = name
        self.description = description
        self.brain = brain
        self.version = version
        self.provider = provider
        self.tags = tags or []
        self.metadata = metadata or {}
        self.skills: dict[str, Skill] = {}

    def skill(
        self,
        id: str | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        examples: list[str] | None = None,
        asks: bool | None = None,
    ) -> Callable[[Callable[[SkillContext, In], Awaitable[Out]]], Callable[[SkillContext, In], Awaitable[Out]]]:
        """Register an async ``fn(ctx, input_model) -> output_model`` as a skill; types come from hints.

        ``asks``: the skill may ask its caller (``ctx.ask``); default: whether its own code calls ``.ask``
        (say ``asks=True`` when a helper it calls asks for it).
        """

        def register(
            fn: Callable[[SkillContext, In], Awaitable[Out]],
        ) -> Callable[[SkillContext, In], Awaitable[Out]]:
            if not inspect.iscoroutinefunction(fn):
                raise TypeError(f"skill {fn.__name__} must be an async function")
            hints = get_type_hints(fn)
            params = [p for p in inspect.signature(fn).parameters if p != "return"]
            if len(params) != 2:
                raise TypeError(f"skill {fn.__name__} must take (ctx: SkillContext, request: <pydantic model>)")
            input_model, output_model = hints.get(params[1]), hints.get("return")
            for what, model in (("input", input_model), ("return", output_model)):
                if not (inspect.isclass(model) and issubclass(model, BaseModel)):
                    raise TypeError(f"skill {fn.__name__}: the {what} type must be a pydantic model")
            skill_id = id or fn.__name__
            if not _SKILL_ID.match(skill_id):
                raise ValueError(f"skill id {skill_id!r} must match {_SKILL_ID.pattern}")
            if skill_id in self.skills:
                raise ValueError(f"agent {self.name!r} already has a skill {skill_id!r}")
            doc = inspect.getdoc(fn) or ""
            self.skills[skill_id] = Skill(
                id=skill_id,
                name=name or skill_id.replace("_", " ").capitalize(),
                description=description or doc.split("\n\n")[0] or skill_id,
                input_model=input_model,  # type: ignore[arg-type]
                output_model=output_model,  # type: ignore[arg-type]
                fn=fn,  # type: ignore[arg-type]
                tags=tags or [],
                examples=examples or [],
                asks=asks if asks is not None else "ask" in fn.__code__.co_names,
            )
            return fn

        return register

    @property
    def default_skill(self) -> Skill:
        """The skill used when a message names none: the first one declared."""
        if not self.skills:
            raise SkillNotFound(f"agent {self.name!r} has no skills")
        return next(iter(self.skills.values()))

    def get_skill(self, skill_id: str | None) -> Skill:
        if skill_id is None:
            return self.default_skill
        try:
            return self.skills[skill_id]
        except KeyError:
            known = ", ".join(self.skills) or "none"
            raise SkillNotFound(f"agent {self.name!r} has no skill {skill_id!r} (it has: {known})") from None

    async def call(
        self, skill_id: str | None, arguments: Any, *, ctx: SkillContext | None = None
    ) -> tuple[BaseModel, Usage]:
        """Validate arguments, run the skill, validate its result. Returns the result and what it cost."""
        skill = self.get_skill(skill_id)
        request = skill.parse_input(arguments)
        ctx = ctx or SkillContext(self.brain)
        # An enclosing scope that ends no later (a task runtime's time limit) already bounds the skill.
        if ctx.deadline is not None and ctx.deadline < anyio.current_effective_deadline():
            with anyio.move_on_after(max(0.0, ctx.deadline - anyio.current_time())) as scope:
                result = await skill.fn(ctx, request)
            if scope.cancelled_caught:
                raise DeadlineExceeded(f"skill {skill.id!r} ran past its deadline")
        else:
            result = await skill.fn(ctx, request)
        if not isinstance(result, skill.output_model):
            try:
                result = skill.output_model.model_validate(result)
            except ValidationError as exc:
                raise InvalidModelOutput(
                    f"skill {skill.id!r} returned invalid {skill.output_model.__name__}: {exc.errors()[0]['msg']}"
                ) from None
        return result, ctx.usage

    def card(
        self,
        url: str,
        *,
        streaming: bool = True,
        security_schemes: dict[str, Any] | None = None,
        security_requirements: list[dict[str, Any]] | None = None,
        extended_card: bool = False,
    ) -> AgentCard:
        """The A2A Agent Card for this agent served at ``url``.

        ``security_schemes`` / ``security_requirements`` (A2A 1.0 wire form) say how callers authenticate;
        ``extended_card`` announces that authenticated callers may ask for ``GetExtendedAgentCard``.
        """
        return AgentCard(
            name=self.name,
            description=self.description,
            version=self.version,
            supported_interfaces=[AgentInterface(url=url)],
            provider=self.provider,
            capabilities=AgentCapabilities(streaming=streaming, extended_agent_card=extended_card),
            security_schemes=security_schemes or {},
            security_requirements=security_requirements or [],
            skills=[s.card() for s in self.skills.values()],
        )
