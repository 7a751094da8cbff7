"""How the executor reaches an agent: one small seam, three transports with the same behaviour.

- ``local``: an in-process agent through ``agents.client.LocalAgentClient`` (A2A task semantics, no network);
- ``a2a``: A2A JSON-RPC over HTTP through ``agents.client.HttpAgentClient`` (one shared httpx pool);
- ``mcp``: a tool on an MCP server (``mcp+http://host/mcp`` or ``mcp+stdio:command args``).

Registry records come from the network, so nothing in one is trusted: a stdio command starts only when this
host's ``StdioAllowlist`` names it exactly, and every HTTP connection (A2A and MCP) goes through the
``protocol.egress`` policy, which resolves and checks the address before connecting.

Each A2A call sends the attempt id as the message's ``messageId`` and ``contextId``; cancelling an attempt finds
the agent's task by that context id and sends ``CancelTask``, so a cancelled or timed-out attempt stops on the
agent too; ``adopt`` finds it the same way and waits for its outcome (a replica taking over a run does this
instead of sending the message again; agents also answer a repeated ``messageId`` with the task it started).

Calls carry the orchestrator's own bearer token for that agent (``AgentCredentials``, from configuration, never
from a registry record) and nothing else: an ``Authorization`` header from anywhere else is removed. An agent that
answers 401 or 403 fails the attempt with an ``AgentCallError`` naming the status (the agent was reached; it
refused the caller).

A task that waits for input (``TASK_STATE_INPUT_REQUIRED``: its skill asked a question) raises ``InputRequired``
carrying the question; ``answer`` sends the answer on that task and ``wait_moved`` waits until the agent's task
has moved on (answered, cancelled, timed out), so the executor can wait without a deadline running.

An agent that refuses the input itself (JSON-RPC InvalidParams -32602, which agents answer for invalid arguments
and unknown skills; -32005, a part type the skill does not take; an A2A task REJECTED; an MCP -32602, or an MCP
tool result with isError marked ``scaleout/invalid_arguments``) raises
``AgentRejectedInput``: the caller's mistake, which the executor neither retries nor counts against the agent.

Inputs follow the skill's input modes from the agent's card (fetched once per agent, kept ``CARD_TTL_S``; so
is a card that could not be read, to avoid a failing fetch before every call): a text-only skill gets text
(``agents.client.input_part``); one that takes neither text nor JSON rejects the input before any call. An
agent that answers with a Message instead of a Task succeeds with that message's output.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Generator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import httpx

from agents.agent import Agent
from agents.client import (
    MESSAGE_REPLY_KEY,
    AgentClient,
    HttpAgentClient,
    LocalAgentClient,
    accepted_input_modes,
    skill_message,
)
from agents.client_v03 import client_for_interfaces
from agents.tasks import USAGE_METADATA_KEY
from agents.usage import Usage
from orchestrator.credentials import AgentCredentials
from orchestrator.http import http_client
from protocol.a2a import (
    PROTOCOL_VERSION,
    TERMINAL_STATES,
    VERSION_HEADER,
    AgentCard,
    InputRequest,
    ListTasksRequest,
    Message,
    Part,
    Task,
    TaskState,
    input_request_of,
)
from protocol.egress import EgressPolicy, guard_transport
from protocol.jsonrpc import A2AError, ContentTypeNotSupportedError, InvalidParamsError
from registry.models import AgentRecord
from registry.stdio import STDIO_SCHEME, StdioAllowlist, StdioNotAllowed

__all__ = [
    "CallResult",
    "AgentCallError",
    "AgentUnreachable",
    "AgentRejectedInput",
    "Transport",
    "Adopting",
    "Transports",
    "InputRequired",
    "ANSWERED_BY_KEY",
    "CARD_TTL_S",
    "call_result",
]

CARD_TTL_S = 300.0
"""How long the card an agent's input modes are read from is kept before it is fetched again."""

ANSWERED_BY_KEY = "scaleout.answeredBy"
"""``Message.metadata`` key of an answer sent through the orchestrator: who answered (a principal's owner)."""


@dataclass
class CallResult:
    """What one successful call returned: the JSON output, its usage, the agent's task id."""

    output: Any
    usage: Usage
    remote_task_id: str | None = None


class AgentCallError(RuntimeError):
    """The agent answered but the call failed (task failed, rejected, invalid reply)."""


class AgentUnreachable(AgentCallError):
    """The agent could not be reached or the connection broke mid-call (e.g. its process died)."""


class InputRequired(Exception):
    """The agent's task waits for input: ``question`` is what it asks (None: it asked without an ``InputRequest``).

    ``status_at`` is the task's status timestamp, so a waiter can tell when the task has moved on."""

    def __init__(self, task: Task) -> None:
        self.task_id = task.id
        self.question: InputRequest | None = input_request_of(task)
        self.status_at = task.status.timestamp
        text = task.status.message.text() if task.status.message else ""
        self.text = text
        super().__init__(f"agent task {task.id} waits for input: {text[:200]}")


class AgentRejectedInput(AgentCallError):
    """The agent refused the request as the caller made it (invalid input, unknown skill, unaccepted part type):
    sending it again would fail the same way, and the agent did nothing wrong."""


# JSON-RPC errors that say the request itself was wrong: InvalidParams, ContentTypeNotSupported.
_CALLER_ERRORS = (InvalidParamsError, ContentTypeNotSupportedError)
_MCP_INVALID_PARAMS = -32602


_REFUSALS = {401: "Unauthorized", 403: "Forbidden"}
_WAITING = frozenset({TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED})  # the task waits on us: not ours to adopt
_CHALLENGE_FIELD = re.compile(r'(error_description|error|scope)="([^"]{0,300})"')


def refusal_reason(url: str, status: int, challenge: str | None) -> str:
    """What an agent's 401/403 means, from its ``WWW-Authenticate`` challenge (never echoing a credential)."""
    fields = dict(_CHALLENGE_FIELD.findall(challenge or ""))
    detail = fields.get("error_description") or fields.get("error") or ""
    if fields.get("scope"):
        detail = f"{detail}; it needs the scope {fields['scope']!r}".lstrip("; ")
    hint = (
        " (configure this orchestrator's token for it: --agent-token or --agent-credentials)"
        if status == 401
        else " (the orchestrator's token lacks a scope the agent needs)"
    )
    what = f"HTTP {status} {_REFUSALS.get(status, '')}" + (f": {detail}" if detail else "")
    return f"the agent at {url} refused the call: {what}{hint}"


class AgentAuth(httpx.Auth):
    """Puts the orchestrator's token for each agent on its requests (and removes any other ``Authorization``);
    a 401 or 403 answer raises ``AgentCallError`` naming the status."""

    def __init__(self, credentials: AgentCredentials) -> None:
        self.credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.credentials.token_for(str(request.url))
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        else:
            request.headers.pop("Authorization", None)  # e.g. the process's own $SCALEOUT_TOKEN: not for agents
        response = yield request
        if response.status_code in _REFUSALS:
            url = str(request.url.copy_with(query=None, fragment=None))
            raise AgentCallError(refusal_reason(url, response.status_code, response.headers.get("www-authenticate")))


class Transport(Protocol):
    """Call a skill of an agent; cancel what an attempt started there."""

    async def call(self, agent: AgentRecord, skill: str, arguments: Any, *, attempt_id: str) -> CallResult: ...

    async def cancel(self, agent: AgentRecord, attempt_id: str) -> None: ...


class Adopting(Transport, Protocol):
    """A transport that can also finish an attempt another process started (optional: ``Transports`` is one)."""

    async def adopt(self, agent: AgentRecord, attempt_id: str) -> CallResult | None: ...


class Transports:
    """Routes each call to the transport an agent record names; use inside ``async with``."""

    def __init__(
        self,
        local_agents: list[Agent] | None = None,
        *,
        http_timeout_s: float = 600.0,
        local_history: int = 1_000,
        stdio_allowlist: StdioAllowlist | None = None,
        egress: EgressPolicy | None = None,
        credentials: AgentCredentials | None = None,
    ) -> None:
        """``stdio_allowlist`` (default: this host's file, re-read when it changes) names the commands an
        ``mcp+stdio:`` target may start; ``egress`` (default ``EgressPolicy()``) the addresses calls may reach;
        ``credentials`` the bearer tokens calls carry and the CA agents' certificates are checked against."""
        self._local_agents = {a.name: a for a in local_agents or []}
        self.local_history = local_history  # finished tasks an in-process agent keeps (the orchestrator has its own)
        self._local: dict[str, LocalAgentClient] = {}
        self._remote: dict[str, HttpAgentClient] = {}  # one client per agent URL, all on one keep-alive pool
        self._cards: dict[str, tuple[float, AgentCard | None]] = {}  # url -> (fetched at, card; None: unreadable)
        self._stack = AsyncExitStack()
        self.egress = egress or EgressPolicy()
        self.stdio_allowlist = stdio_allowlist if stdio_allowlist is not None else StdioAllowlist.load()
        self._allowlist_stamp = _stamp(self.stdio_allowlist)
        self.credentials = credentials if credentials is not None else AgentCredentials()
        self._http = http_client(
            timeout_s=http_timeout_s,
            headers={VERSION_HEADER: PROTOCOL_VERSION},
            egress=self.egress,
            verify=self.credentials.verify(),
            auth=AgentAuth(self.credentials),
        )

    async def __aenter__(self) -> Transports:
        # Local runtimes own task groups, so they start here, in the task that will also close them.
        await self._stack.__aenter__()
        self._stack.push_async_callback(self._http.aclose)
        for name, agent in self._local_agents.items():
            client = LocalAgentClient(agent)
            client.runtime.max_tasks = self.local_history
            self._local[name] = await self._stack.enter_async_context(client)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stack.aclose()

    async def _client(self, agent: AgentRecord) -> AgentClient:
        if agent.transport == "local" or agent.url.startswith("local://"):
            name = agent.url.removeprefix("local://") or agent.name
            local = self._local.get(name)
            if local is None:
                raise AgentUnreachable(f"no in-process agent {name!r}; pass it in local_agents")
            return local
        remote = self._remote.get(agent.url)
        if remote is None:
            if len(self._remote) >= 10_000:  # bounded: agents come and go
                self._remote.clear()
            # an agent whose card declares only A2A 0.3 gets the 0.3 binding (agents/client_v03.py)
            remote = self._remote[agent.url] = client_for_interfaces(agent.url, agent.interfaces, http=self._http)
        return remote

    async def call(self, agent: AgentRecord, skill: str, arguments: Any, *, attempt_id: str) -> CallResult:
        """Run ``skill`` on ``agent`` with ``arguments``; raise AgentCallError/AgentUnreachable on failure."""
        if agent.transport == "mcp":
            return await _call_mcp(agent, skill, arguments, self._allowlist(), self.egress, self.credentials)
        client = await self._client(agent)
        try:
            accepts = None if isinstance(arguments, str) else await self._input_modes(client, skill)
            # history_length=0: the reply need not echo our own message back
            message = skill_message(skill, arguments, context_id=attempt_id, message_id=attempt_id, accepts=accepts)
            task = await client.send_message(message, history_length=0)
        except _CALLER_ERRORS as exc:
            raise AgentRejectedInput(f"{type(exc).__name__}: {exc}") from None
        except A2AError as exc:
            raise AgentCallError(f"{type(exc).__name__}: {exc}") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise AgentUnreachable(f"{type(exc).__name__} talking to {agent.url}: {exc or 'connection lost'}") from None
        except ValueError as exc:  # a reply that is not JSON, or not an A2A task
            raise AgentCallError(f"invalid reply from {agent.url}: {str(exc)[:200]}") from None
        return _result(task)

    async def _input_modes(self, client: AgentClient, skill: str) -> list[str] | None:
        """The media types ``skill`` accepts per the agent's card (cached), or None when the card cannot be read
        (the arguments then go as before: a dict as data)."""
        now = time.monotonic()
        cached = self._cards.get(client.url)
        if cached is not None and now - cached[0] < CARD_TTL_S:
            card = cached[1]
        else:
            card = None
            try:
                with anyio.fail_after(10.0):
                    card = await client.get_card()
            except (A2AError, httpx.HTTPError, AgentCallError, ValueError, TimeoutError):
                pass  # kept as unreadable for CARD_TTL_S too: no failing fetch before every call
            if len(self._cards) >= 10_000:  # bounded: agents come and go
                self._cards.clear()
            self._cards[client.url] = (now, card)
        return accepted_input_modes(card, skill) if card is not None else None

    async def cancel(self, agent: AgentRecord, attempt_id: str) -> None:
        """Cancel the agent's non-terminal tasks started by ``attempt_id`` (best effort, bounded)."""
        if agent.transport == "mcp":
            return  # MCP calls end when their session closes
        with anyio.move_on_after(5.0):
            try:
                client = await self._client(agent)
                listing = await client.list_tasks(ListTasksRequest(context_id=attempt_id))
                for task in listing.tasks:
                    if task.status.state not in TERMINAL_STATES:
                        await client.cancel_task(task.id)
            except (A2AError, httpx.HTTPError, AgentCallError):
                pass  # the agent is gone or the task already ended: nothing left to cancel

    async def adopt(self, agent: AgentRecord, attempt_id: str) -> CallResult | None:
        """The outcome of the task ``attempt_id`` started on ``agent`` (waiting for it to end), or None when the
        agent holds no such task (the message never arrived, or the agent restarted) or cannot be asked (MCP,
        in-process agents, which died with the process that called them)."""
        if agent.transport in ("mcp", "local") or agent.url.startswith("local://"):
            return None
        client = await self._client(agent)
        try:
            request = ListTasksRequest(context_id=attempt_id, include_artifacts=True, history_length=0)
            listing = await client.list_tasks(request)
            if not listing.tasks:
                return None
            task, delay = listing.tasks[0], 0.05
            while task.status.state not in TERMINAL_STATES and task.status.state not in _WAITING:
                await anyio.sleep(delay)
                delay = min(delay * 2, 1.0)
                task = await client.get_task(task.id, history_length=0)
        except A2AError as exc:
            raise AgentCallError(f"{type(exc).__name__}: {exc}") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise AgentUnreachable(f"{type(exc).__name__} talking to {agent.url}: {exc or 'connection lost'}") from None
        return _result(task)

    async def answer(self, agent: AgentRecord, agent_task_id: str, answer: Any, *, by: str | None = None) -> None:
        """Send ``answer`` to the agent's task waiting for input (it goes on at once; nothing waits here)."""
        if agent.transport == "mcp":
            raise AgentCallError("MCP tools cannot wait for input; nothing to answer")
        client = await self._client(agent)
        part = Part.from_text(answer) if isinstance(answer, str) else Part.from_data(answer)
        message = Message.user(part, task_id=agent_task_id, metadata={ANSWERED_BY_KEY: by} if by else None)
        try:
            await client.send_message(message, return_immediately=True, history_length=0)
        except A2AError as exc:
            raise AgentCallError(f"{type(exc).__name__}: {exc}") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise AgentUnreachable(f"{type(exc).__name__} talking to {agent.url}: {exc or 'connection lost'}") from None

    async def wait_moved(
        self, agent: AgentRecord, agent_task_id: str, since: str, wake: anyio.Event | None = None
    ) -> Task:
        """The agent's task once its status is no longer the one stamped ``since`` and it has settled again
        (ended, or waits for input anew), with its last message; polled with backoff up to 1 s, at once when
        ``wake`` is set (an answer sent from this process)."""
        client = await self._client(agent)
        delay = 0.05
        try:
            while True:
                task = await client.get_task(agent_task_id, history_length=1)
                state = task.status.state
                if task.status.timestamp != since and (state in TERMINAL_STATES or state in _WAITING):
                    return task
                with anyio.move_on_after(delay):
                    if wake is not None:
                        await wake.wait()
                        wake = None  # woken once; then back to polling
                    else:
                        await anyio.sleep(delay)
                delay = min(delay * 2, 1.0)
        except A2AError as exc:
            raise AgentCallError(f"{type(exc).__name__}: {exc}") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise AgentUnreachable(f"{type(exc).__name__} talking to {agent.url}: {exc or 'connection lost'}") from None

    def _allowlist(self) -> StdioAllowlist:
        """The stdio allowlist, re-read when its file changed (``registry add-stdio`` appends to it)."""
        current = self.stdio_allowlist
        stamp = _stamp(current)
        if current.path is not None and stamp != self._allowlist_stamp:
            self.stdio_allowlist = StdioAllowlist.load(current.path)
            self._allowlist_stamp = stamp
        return self.stdio_allowlist


def _stamp(allowlist: StdioAllowlist) -> tuple[int, int] | None:
    try:
        info = os.stat(allowlist.path) if allowlist.path is not None else None
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size) if info is not None else None


def call_result(task: Task) -> CallResult:
    """What an agent's settled task means for the caller: its output, else ``AgentCallError`` (or
    ``AgentRejectedInput``), or ``InputRequired`` when it waits for input."""
    return _result(task)


def _result(task: Task) -> CallResult:
    """The output of a completed task: the first data part of its artifacts, else the first text part."""
    usage = Usage.model_validate((task.metadata or {}).get(USAGE_METADATA_KEY) or {})
    state = task.status.state
    if state == TaskState.INPUT_REQUIRED:
        raise InputRequired(task)
    if state != TaskState.COMPLETED:
        why = task.status.message.text() if task.status.message else ""
        error = AgentRejectedInput if state == TaskState.REJECTED else AgentCallError
        raise error(f"agent task {task.id} ended {state.value.removeprefix('TASK_STATE_')}: {why}")
    remote_id = None if (task.metadata or {}).get(MESSAGE_REPLY_KEY) else task.id  # a Message reply: no task
    parts = [part for artifact in task.artifacts or [] for part in artifact.parts]
    for part in parts:
        if part.data is not None:
            return CallResult(part.data, usage, remote_id)
    for part in parts:
        if part.text is not None:
            return CallResult({"text": part.text}, usage, remote_id)
    raise AgentCallError(f"agent task {task.id} completed without an output artifact")


async def _call_mcp(
    agent: AgentRecord,
    skill: str,
    arguments: Any,
    allowlist: StdioAllowlist,
    egress: EgressPolicy,
    credentials: AgentCredentials,
) -> CallResult:
    try:
        from agents.mcp_client import McpToolClient, McpToolError
        from agents.mcp_server import INVALID_ARGUMENTS_META_KEY
    except ImportError:  # pragma: no cover - the MCP client ships with agents
        raise AgentUnreachable("agents.mcp_client is not available; MCP tools cannot be called") from None
    url = endpoint = agent.url
    refused: list[tuple[int, str | None]] = []
    async with AsyncExitStack() as stack:
        try:
            if url.startswith(STDIO_SCHEME):
                command = allowlist.check(url)  # a command from a registry record runs only when this host allows it
                tools = McpToolClient.stdio(command[0], command[1:])
            else:
                endpoint = url.removeprefix("mcp+")
                if not endpoint.startswith(("http://", "https://")):
                    raise ValueError(f"MCP URL must start with mcp+http:// or mcp+https://, got {url[:200]!r}")
                http = await stack.enter_async_context(_mcp_http(endpoint, egress, credentials, refused))
                from mcp.client.streamable_http import streamable_http_client

                transport: Any = streamable_http_client(endpoint, http_client=http)
                tools = McpToolClient(transport)  # the SDK client takes a transport as well as a URL
        except (StdioNotAllowed, ValueError) as exc:
            raise AgentCallError(str(exc)) from None
        try:
            async with tools:
                output = await tools.call_tool(
                    skill, arguments if isinstance(arguments, dict) else {"input": arguments}
                )
        except Exception as exc:  # connection failures surface as OSError, httpx errors or exception groups
            if refused:
                raise AgentCallError(refusal_reason(endpoint, *refused[0])) from None
            while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]  # type: ignore[assignment]
            if isinstance(exc, McpToolError):  # the server answered (possibly from inside the session's group)
                # an unknown tool (-32602), or arguments the tool refused (an isError result marked as such)
                if exc.code == _MCP_INVALID_PARAMS or INVALID_ARGUMENTS_META_KEY in tools.last_meta:
                    raise AgentRejectedInput(str(exc)) from None
                raise AgentCallError(str(exc)) from None
            raise AgentUnreachable(f"MCP server {url} unreachable: {type(exc).__name__}: {exc}") from None
    usage = Usage.model_validate(tools.last_meta.get("scaleout/usage") or {})
    return CallResult(output, usage, None)


def _mcp_http(
    endpoint: str, egress: EgressPolicy, credentials: AgentCredentials, refused: list[tuple[int, str | None]]
) -> Any:
    """The MCP SDK's HTTP client (``httpx2``) for one call: egress-guarded, verifying TLS with the configured CA,
    carrying the orchestrator's token for ``endpoint``, noting any 401/403 in ``refused``."""
    import httpx2  # type: ignore[import-not-found]

    async def note_refusal(response: Any) -> None:
        if response.status_code in _REFUSALS and not refused:
            refused.append((response.status_code, response.headers.get("www-authenticate")))

    token = credentials.token_for(endpoint)
    transport = guard_transport(httpx2.AsyncHTTPTransport(verify=credentials.verify()), egress)
    return httpx2.AsyncClient(
        transport=transport,
        timeout=60.0,
        follow_redirects=False,
        headers={"Authorization": f"Bearer {token}"} if token else None,
        event_hooks={"response": [note_refusal]},
    )
