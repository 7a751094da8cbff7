"""Clients for A2A agents with one interface: over HTTP (httpx) or in-process (same semantics, no network).

``HttpAgentClient`` sends a bearer token (``token=``, else ``$SCALEOUT_TOKEN`` or the token file: see
``protocol.auth.client_token``) and verifies HTTPS servers against the system CAs or ``ca_file``. An agent that
refuses the caller (HTTP 401 or 403) raises ``AgentAccessError``.

An agent may answer ``SendMessage`` with a Message instead of a Task (the spec allows it; many a2a-sdk samples
do): ``send_message`` then returns a completed task built from that message (``task_of_reply``). Inputs follow the
skill's input modes when the caller passes them (``skill_message(..., accepts=...)``, see ``input_part``).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from typing import Any, Protocol, Self

import httpx
from pydantic import BaseModel

from agents.a2a_v03_binding import V03JsonRpcBinding
from agents.agent import Agent
from agents.client_bindings import (
    BINDINGS,
    JSONRPC,
    Binding,
    BindingFactory,
    binding_key,
    pick_interface,
    register_binding,
)
from agents.tasks import SKILL_METADATA_KEY, USAGE_METADATA_KEY, TaskRuntime
from protocol.a2a import (
    AGENT_CARD_PATH,
    PROTOCOL_VERSION,
    VERSION_HEADER,
    AgentCard,
    Artifact,
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Part,
    SendMessageConfiguration,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
    TaskStatus,
)
from protocol.a2a_v03_card import card_from_v03
from protocol.auth import bearer_headers, tls_verify
from protocol.jsonrpc import (
    A2AError,
    ContentTypeNotSupportedError,
    InvalidAgentResponseError,
    UnsupportedOperationError,
)

__all__ = [
    "AgentAccessError",
    "AgentClient",
    "HttpAgentClient",
    "InputModeError",
    "LocalAgentClient",
    "MESSAGE_REPLY_KEY",
    "accepted_input_modes",
    "answer_message",
    "input_part",
    "skill_message",
    "task_of_reply",
    "tls_verify",
]

MESSAGE_REPLY_KEY = "scaleout.messageReply"
"""``Task.metadata`` key set (to True) on a task ``task_of_reply`` built from a Message reply: the agent holds no
such task, so ``get_task``/``cancel_task`` on its id fail."""

_MAX_INPUT_MODES = 100  # a card's mode lists come from the network: bounded


class AgentAccessError(A2AError):
    """The agent refused the caller: ``http_status`` 401 (no valid bearer token) or 403 (a scope is missing)."""

    code = -32600
    reason = "UNAUTHENTICATED"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}", {"httpStatus": status})
        self.http_status = status
        if status == 403:
            self.reason = "PERMISSION_DENIED"


class InputModeError(ContentTypeNotSupportedError):
    """The arguments cannot be sent in any media type the skill accepts without losing data."""


def accepted_input_modes(card: AgentCard, skill: str | None) -> list[str]:
    """The media types ``skill`` of ``card`` accepts: its own ``inputModes``, else the card's defaults."""
    declared = next((s.input_modes for s in card.skills if s.id == skill), None) if skill else None
    return list((declared or card.default_input_modes)[:_MAX_INPUT_MODES])


def _base_type(mode: str) -> str:
    return mode.split(";", 1)[0].strip().lower()


def _takes_json(modes: list[str]) -> bool:
    return any(m in ("application/json", "application/*", "*/*") or m.endswith("+json") for m in modes)


def _takes_text(modes: list[str]) -> bool:
    return any(m in ("text/plain", "text/*", "*/*") for m in modes)


def input_part(arguments: Any, accepts: Sequence[str] | None = None) -> Part:
    """The part that carries ``arguments`` in a media type the skill ``accepts`` (None or empty: any).

    A dict/model goes as a JSON data part, or, to a skill that takes text but not JSON, as text: its single
    string field, else the whole value rendered as JSON text. A string goes as text, or as a JSON string to a
    JSON-only skill. Raises ``InputModeError`` when the skill takes neither text nor JSON."""
    if isinstance(arguments, BaseModel):
        arguments = arguments.model_dump(mode="json")
    modes = [_base_type(m) for m in (accepts or [])]
    if not modes:
        return Part.from_text(arguments) if isinstance(arguments, str) else Part.from_data(arguments)
    takes_json, takes_text = _takes_json(modes), _takes_text(modes)
    if isinstance(arguments, str):
        if takes_text or takes_json:
            return Part.from_text(arguments) if takes_text else Part.from_data(arguments)
    elif takes_json:
        return Part.from_data(arguments)
    elif takes_text:
        if isinstance(arguments, dict) and len(arguments) == 1:
            (only,) = arguments.values()
            if isinstance(only, str):
                return Part.from_text(only)
        return Part.from_text(json.dumps(arguments, ensure_ascii=False, separators=(",", ":")))
    raise InputModeError(
        f"the skill accepts only {', '.join(modes[:10])}; its input can be sent as application/json or "
        "text/plain only: call a skill that accepts one of them"
    )


def task_of_reply(reply: Task | Message) -> Task:
    """The task a SendMessage reply stands for: ``reply`` itself, or, for a Message reply (an agent that answers
    at once without a task), a completed task whose one artifact holds the message's parts, whose status
    message is the message, and whose metadata holds the message's usage and ``MESSAGE_REPLY_KEY``."""
    if isinstance(reply, Task):
        return reply
    metadata: dict[str, Any] = {MESSAGE_REPLY_KEY: True}
    usage = (reply.metadata or {}).get(USAGE_METADATA_KEY)
    if isinstance(usage, dict):
        metadata[USAGE_METADATA_KEY] = usage
    return Task(
        id=reply.task_id or reply.message_id,
        context_id=reply.context_id or reply.message_id,
        status=TaskStatus(state=TaskState.COMPLETED, message=reply),
        artifacts=[Artifact(artifact_id=reply.message_id, parts=reply.parts, metadata=reply.metadata)],
        metadata=metadata,
    )


def skill_message(
    skill: str | None,
    arguments: Any,
    *,
    context_id: str | None = None,
    message_id: str | None = None,
    accepts: Sequence[str] | None = None,
) -> Message:
    """A user message that asks for ``skill`` with ``arguments`` (a dict/model as a data part, or text).

    ``message_id`` (default: a fresh one) makes a resend the same request: the agent answers it with the task
    the first send created instead of running the skill again. ``accepts``: the skill's input modes
    (``accepted_input_modes``); the arguments are sent in one of them (``input_part``)."""
    part = input_part(arguments, accepts)
    metadata = {SKILL_METADATA_KEY: skill} if skill else None
    fixed = {"message_id": message_id} if message_id is not None else {}
    return Message.user(part, metadata=metadata, context_id=context_id, **fixed)


def answer_message(task_id: str, answer: Any, *, context_id: str | None = None) -> Message:
    """The message that answers the question of task ``task_id`` (waiting in input-required): ``answer`` as a
    data part (a dict or model), or as text."""
    if isinstance(answer, BaseModel):
        answer = answer.model_dump(mode="json")
    part = Part.from_text(answer) if isinstance(answer, str) else Part.from_data(answer)
    return Message.user(part, task_id=task_id, context_id=context_id)


class AgentClient(Protocol):
    """What the orchestrator needs from an agent, whatever the transport."""

    url: str  # where the agent is reached: its A2A endpoint, or local://NAME in-process

    async def get_card(self) -> AgentCard: ...

    async def send_message(
        self, message: Message, *, return_immediately: bool = False, history_length: int | None = None
    ) -> Task: ...

    def stream_message(self, message: Message) -> AsyncIterator[StreamResponse]: ...

    async def get_task(self, task_id: str, history_length: int | None = None) -> Task: ...

    async def list_tasks(self, request: ListTasksRequest | None = None) -> ListTasksResponse: ...

    async def cancel_task(self, task_id: str) -> Task: ...

    def subscribe(self, task_id: str) -> AsyncIterator[StreamResponse]: ...

    async def aclose(self) -> None: ...


_HEADERS = {VERSION_HEADER: PROTOCOL_VERSION}  # sent on every call, also through a shared httpx client
register_binding(JSONRPC, V03JsonRpcBinding.protocol_version, V03JsonRpcBinding)  # A2A 0.3 agents too


def _task_of(response: SendMessageResponse) -> Task:
    if response.task is not None:
        return response.task
    if response.message is None:
        raise InvalidAgentResponseError("the agent answered SendMessage with neither a task nor a message")
    return task_of_reply(response.message)


class HttpAgentClient:
    """A2A client over httpx. ``url`` is the agent's endpoint (its card's interface URL).

    ``binding``: the protocol binding the calls go over (``agents.client_bindings``): a card's
    ``protocolBinding`` name (``"JSONRPC"``, the default, or ``"HTTP+JSON"``) or a ``BindingFactory``;
    ``from_card_url``/``for_card`` pick the first interface of the card this client speaks.
    ``token``: the bearer token sent with every call (default ``protocol.auth.client_token()``: the
    ``SCALEOUT_TOKEN`` variable or the token file; none when neither is set; ``""``: none, whatever the
    environment holds). ``ca_file`` / ``verify``: how an ``https://`` agent's certificate is checked
    (``tls_verify``); both are ignored when ``http`` is given, whose own settings apply.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        http: httpx.AsyncClient | None = None,
        token: str | None = None,
        ca_file: str | None = None,
        verify: ssl.SSLContext | bool | None = None,
        binding: str | BindingFactory = JSONRPC,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self._own = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, verify=tls_verify(ca_file, verify))
        headers = {**_HEADERS, **(bearer_headers(token) if token != "" else {})}  # read once; never logged
        self.binding: Binding = _factory(binding)(self._http, url, headers)  # the interface URL as declared

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    @classmethod
    def for_card(cls, card: AgentCard, *, binding: str | None = None, **kwargs: Any) -> HttpAgentClient:
        """A client on the first of ``card``'s interfaces this client speaks (only ``binding`` ones, if named)."""
        interface = pick_interface(card, binding)
        if interface is None:
            offered = ", ".join(f"{i.protocol_binding} {i.protocol_version}" for i in card.supported_interfaces[:8])
            raise UnsupportedOperationError(
                f"agent {card.name!r} offers {offered}; this client speaks "
                + ", ".join(f"{b} {v}" for b, v in BINDINGS)
                + (f" (asked for {binding})" if binding else "")
            )
        factory = BINDINGS[binding_key(interface.protocol_binding, interface.protocol_version)]
        return cls(interface.url, binding=factory, **kwargs)

    @classmethod
    async def from_card_url(cls, card_url: str, *, binding: str | None = None, **kwargs: Any) -> HttpAgentClient:
        """Fetch the card at ``card_url`` and connect to its first interface this client speaks (``for_card``)."""
        verify = tls_verify(kwargs.get("ca_file"), kwargs.get("verify"))
        async with httpx.AsyncClient(timeout=kwargs.get("timeout", 60.0), verify=verify) as http:
            response = await http.get(card_url)
            response.raise_for_status()
        return cls.for_card(AgentCard.model_validate(card_from_v03(response.json())), binding=binding, **kwargs)

    async def _call(self, method: str, params: BaseModel) -> Any:
        return await self.binding.call(method, params)

    def _stream(self, method: str, params: BaseModel) -> AsyncIterator[StreamResponse]:
        return self.binding.stream(method, params)

    async def get_card(self) -> AgentCard:
        base = self.url.rstrip("/")
        response = await self._http.get(base + AGENT_CARD_PATH)
        response.raise_for_status()
        return AgentCard.model_validate(card_from_v03(response.json()))  # a 0.3 card reads as 1.0

    async def send_message(
        self, message: Message, *, return_immediately: bool = False, history_length: int | None = None
    ) -> Task:
        """SendMessage; ``history_length=0`` asks for the task without its message history (a smaller reply).
        A Message reply comes back as a completed task (``task_of_reply``)."""
        config = SendMessageConfiguration(return_immediately=return_immediately, history_length=history_length)
        result = await self._call("SendMessage", SendMessageRequest(message=message, configuration=config))
        return _task_of(SendMessageResponse.model_validate(result))

    def stream_message(self, message: Message) -> AsyncIterator[StreamResponse]:
        return self._stream("SendStreamingMessage", SendMessageRequest(message=message))

    async def get_task(self, task_id: str, history_length: int | None = None) -> Task:
        return Task.model_validate(
            await self._call("GetTask", GetTaskRequest(id=task_id, history_length=history_length))
        )

    async def list_tasks(self, request: ListTasksRequest | None = None) -> ListTasksResponse:
        return ListTasksResponse.model_validate(await self._call("ListTasks", request or ListTasksRequest()))

    async def cancel_task(self, task_id: str) -> Task:
        return Task.model_validate(await self._call("CancelTask", CancelTaskRequest(id=task_id)))

    def subscribe(self, task_id: str) -> AsyncIterator[StreamResponse]:
        return self._stream("SubscribeToTask", SubscribeToTaskRequest(id=task_id))

    async def answer(self, task_id: str, answer: Any, *, return_immediately: bool = False) -> Task:
        """Answer the question of a task waiting for input; returns the task (input-required again, with the
        error, when the answer did not fit)."""
        return await self.send_message(answer_message(task_id, answer), return_immediately=return_immediately)


def _factory(binding: str | BindingFactory) -> BindingFactory:
    if not isinstance(binding, str):
        return binding
    factory = BINDINGS.get(binding_key(binding, PROTOCOL_VERSION))
    if factory is None:
        known = ", ".join(sorted({b for b, _ in BINDINGS}))
        raise ValueError(f"unknown A2A binding {binding!r}; use one of {known}")
    return factory


class LocalAgentClient:
    """The same interface as ``HttpAgentClient``, calling an in-process agent directly (no network)."""

    def __init__(self, agent: Agent, *, url: str = "local://", runtime: TaskRuntime | None = None) -> None:
        self.agent = agent
        self.url = url + agent.name
        self.runtime = runtime or TaskRuntime(agent)
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Self:
        await self._stack.enter_async_context(self.runtime.running())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._stack.aclose()

    async def get_card(self) -> AgentCard:
        return self.agent.card(self.url)

    async def send_message(
        self, message: Message, *, return_immediately: bool = False, history_length: int | None = None
    ) -> Task:
        """SendMessage; ``history_length=0`` leaves the message history out of the returned task."""
        config = SendMessageConfiguration(return_immediately=return_immediately, history_length=history_length)
        return task_of_reply(await self.runtime.send(SendMessageRequest(message=message, configuration=config)))

    def stream_message(self, message: Message) -> AsyncIterator[StreamResponse]:
        return self.runtime.stream(SendMessageRequest(message=message))

    async def get_task(self, task_id: str, history_length: int | None = None) -> Task:
        return self.runtime.get(task_id, history_length)

    async def list_tasks(self, request: ListTasksRequest | None = None) -> ListTasksResponse:
        return self.runtime.list(request or ListTasksRequest())

    async def cancel_task(self, task_id: str) -> Task:
        return await self.runtime.cancel(task_id)

    def subscribe(self, task_id: str) -> AsyncIterator[StreamResponse]:
        return self.runtime.subscribe(task_id)

    async def answer(self, task_id: str, answer: Any, *, return_immediately: bool = False) -> Task:
        """Answer the question of a task waiting for input (see ``HttpAgentClient.answer``)."""
        return await self.send_message(answer_message(task_id, answer), return_immediately=return_immediately)


_ = A2AError  # re-exported error base for client users: ``from agents.client import A2AError``
