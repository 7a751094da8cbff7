"""A2A 0.3 JSON-RPC methods: their names, params and results, converted to and from the 1.0 calls.

``request_from_v03`` / ``result_to_v03`` serve a 0.3 caller with the 1.0 handlers (``agents.a2a_v03_server``);
``request_to_v03`` / ``result_from_v03`` call a 0.3 agent from the 1.0 model (``agents.a2a_v03_binding``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError

from protocol.a2a import (
    CancelTaskRequest,
    GetTaskRequest,
    SendMessageConfiguration,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    WireModel,
)
from protocol.a2a_v03 import (
    MessageV03,
    TaskV03,
    event_from_v03,
    event_to_v03,
    kind_of_v03,
    message_from_v03,
    message_to_v03,
    task_from_v03,
    task_to_v03,
)
from protocol.jsonrpc import InvalidParamsError
from protocol.validation import describe_validation_error

__all__ = [
    "V03_METHODS",
    "V03_STREAMING_METHODS",
    "SendConfigurationV03",
    "MessageSendParamsV03",
    "TaskQueryParamsV03",
    "TaskIdParamsV03",
    "request_from_v03",
    "request_to_v03",
    "result_to_v03",
    "result_from_v03",
]

V03_METHODS: dict[str, str] = {
    "message/send": "SendMessage",
    "message/stream": "SendStreamingMessage",
    "tasks/get": "GetTask",
    "tasks/cancel": "CancelTask",
    "tasks/resubscribe": "SubscribeToTask",
    "tasks/pushNotificationConfig/set": "CreateTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/get": "GetTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/list": "ListTaskPushNotificationConfigs",
    "tasks/pushNotificationConfig/delete": "DeleteTaskPushNotificationConfig",
    "agent/getAuthenticatedExtendedCard": "GetExtendedAgentCard",
}
"""Each 0.3 JSON-RPC method and the 1.0 method that does the same."""
_METHODS_TO_V03 = {v10: v03 for v03, v10 in V03_METHODS.items()}
V03_STREAMING_METHODS = frozenset({"message/stream", "tasks/resubscribe"})


class SendConfigurationV03(WireModel):
    """0.3 ``MessageSendConfiguration``: ``blocking`` (default true) where 1.0 has ``returnImmediately``."""

    accepted_output_modes: list[str] | None = None
    history_length: int | None = Field(default=None, ge=0)
    blocking: bool | None = None
    push_notification_config: dict[str, Any] | None = None


class MessageSendParamsV03(WireModel):
    """Params of ``message/send`` and ``message/stream``."""

    message: MessageV03
    configuration: SendConfigurationV03 | None = None
    metadata: dict[str, Any] | None = None


class TaskQueryParamsV03(WireModel):
    """Params of ``tasks/get``."""

    id: str = Field(min_length=1, max_length=200)
    history_length: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] | None = None


class TaskIdParamsV03(WireModel):
    """Params of ``tasks/cancel`` and ``tasks/resubscribe``."""

    id: str = Field(min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None


def _params(model: type[BaseModel], method: str, params: Any) -> Any:
    try:
        return model.model_validate(params or {})
    except ValidationError as exc:
        raise InvalidParamsError(f"invalid params for {method}: {describe_validation_error(exc)}") from None


def _send_from_v03(method: str, params: Any) -> dict[str, Any]:
    request = _params(MessageSendParamsV03, method, params)
    try:
        message = message_from_v03(request.message)
    except ValueError as exc:  # a part that is none of the three kinds it says
        raise InvalidParamsError(f"invalid params for {method}: {exc}") from None
    config = request.configuration
    configuration = None
    if config is not None:
        configuration = SendMessageConfiguration(
            accepted_output_modes=config.accepted_output_modes,
            history_length=config.history_length,
            return_immediately=config.blocking is False,
            task_push_notification_config=config.push_notification_config,
        )
    return SendMessageRequest(message=message, configuration=configuration, metadata=request.metadata).wire()


def request_from_v03(method: str, params: Any) -> tuple[str, Any]:
    """A 0.3 call (method, params) as the 1.0 call that does the same; ``InvalidParamsError`` names what was wrong.

    ``method`` must be in ``V03_METHODS``. Push-notification params pass unchanged (the 1.0 handler refuses them)."""
    v10 = V03_METHODS[method]
    if v10 in ("SendMessage", "SendStreamingMessage"):
        return v10, _send_from_v03(method, params)
    if v10 == "GetTask":
        query = _params(TaskQueryParamsV03, method, params)
        return v10, GetTaskRequest(id=query.id, history_length=query.history_length).wire()
    if v10 == "CancelTask":
        ids = _params(TaskIdParamsV03, method, params)
        return v10, CancelTaskRequest(id=ids.id, metadata=ids.metadata).wire()
    if v10 == "SubscribeToTask":
        return v10, SubscribeToTaskRequest(id=_params(TaskIdParamsV03, method, params).id).wire()
    return v10, params


def request_to_v03(method: str, params: BaseModel) -> tuple[str, dict[str, Any]]:
    """A 1.0 call (method, request model) as the 0.3 call; ``ValueError`` for a method 0.3 does not have."""
    v03 = _METHODS_TO_V03.get(method)
    if v03 is None:
        raise ValueError(f"A2A 0.3 has no method {method}")
    if isinstance(params, SendMessageRequest):
        config = params.configuration
        send: dict[str, Any] = {"message": message_to_v03(params.message).wire()}
        if config is not None:
            send["configuration"] = SendConfigurationV03(
                accepted_output_modes=config.accepted_output_modes,
                history_length=config.history_length,
                blocking=not config.return_immediately,
                push_notification_config=config.task_push_notification_config,
            ).wire()
        if params.metadata is not None:
            send["metadata"] = params.metadata
        return v03, send
    if isinstance(params, GetTaskRequest):
        return v03, TaskQueryParamsV03(id=params.id, history_length=params.history_length).wire()
    if isinstance(params, CancelTaskRequest | SubscribeToTaskRequest):
        return v03, TaskIdParamsV03(id=params.id, metadata=getattr(params, "metadata", None)).wire()
    return v03, params.model_dump(mode="json", by_alias=True, exclude_none=True)


def result_to_v03(method: str, result: Any) -> Any:
    """The 1.0 result of the 1.0 method that serves 0.3 ``method``, as that method's 0.3 result (a task or a
    message, with its ``kind``). Extended cards are converted by the caller (``protocol.a2a_v03_card``)."""
    v10 = V03_METHODS.get(method)
    if v10 == "SendMessage":
        reply = SendMessageResponse.model_validate(result)
        if reply.message is not None:
            return message_to_v03(reply.message).wire()
        if reply.task is None:
            raise ValueError("SendMessage answered neither a task nor a message")
        return task_to_v03(reply.task).wire()
    if v10 in ("GetTask", "CancelTask"):
        return task_to_v03(Task.model_validate(result)).wire()
    if v10 in ("SendStreamingMessage", "SubscribeToTask"):
        return event_to_v03(StreamResponse.model_validate(result))
    return result


def result_from_v03(method: str, result: Any) -> Any:
    """A 0.3 peer's result for the 1.0 ``method`` as the 1.0 result (JSON-ready): SendMessage's becomes
    ``{"task": ...}`` or ``{"message": ...}``, tasks get 1.0 states and parts."""
    if not isinstance(result, dict):
        raise ValueError(f"the A2A 0.3 agent answered {method} with {type(result).__name__}, not a JSON object")
    if method == "SendMessage":
        if kind_of_v03(result) == "message":
            return {"message": message_from_v03(MessageV03.model_validate(result)).wire()}
        return {"task": task_from_v03(TaskV03.model_validate(result)).wire()}
    if method in ("GetTask", "CancelTask"):
        return task_from_v03(TaskV03.model_validate(result)).wire()
    if method in ("SendStreamingMessage", "SubscribeToTask"):
        return event_from_v03(result).wire()
    return result
