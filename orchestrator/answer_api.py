"""``POST /runs/{id}/tasks/{task}/input`` (scope ``runs:submit``): answer the question a task waits on.

Body ``{"input": <JSON>}`` -> 202 ``{"run_id", "task_id", "accepted": true, "by"}`` once the agent has the answer;
the run's events then show ``task.answered`` (who, what, when). Refusals: 400 ``InvalidRequest`` (the body),
404 ``RunNotFound``, 409 ``NotWaiting`` (the task asks nothing now), 422 ``InvalidAnswer`` (the answer fails the
question's schema; the task keeps waiting), 502 ``AgentCallFailed`` (the agent could not be given the answer),
503 ``DatabaseUnavailable``.

``POST /runs/{id}/tasks/{task}/approval`` (scope ``runs:submit``): approve or reject the output a task holds.
Body ``{"approve": bool, "comment": str}`` -> 200 ``{"run_id", "task_id", "approved", "by", "at"}``; the run's events
show ``task.approved`` / ``task.rejected``. Refusals: 400 ``InvalidRequest``, 403 ``NotAnApprover`` (the caller is
not among the gate's ``by`` and lacks ``admin``), 404 ``RunNotFound``, 409 ``NotAwaitingApproval``, 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orchestrator.answers import InvalidAnswer, NotWaiting
from orchestrator.api import caller_owner, error_response, jsonable, refusal
from orchestrator.approvals import MAX_COMMENT, NotAnApprover, NotAwaitingApproval
from orchestrator.reads import RunNotFound
from orchestrator.runs import StoreUnavailable
from orchestrator.service import Orchestrator
from orchestrator.transports import AgentCallError
from protocol.access import request_principal
from protocol.boundary import NO_BODY, request_json

__all__ = ["answer_endpoint", "approval_endpoint"]


def answer_endpoint(orch: Orchestrator) -> Callable[[Request], Awaitable[Response]]:
    """The ``POST /runs/{run_id}/tasks/{task_id}/input`` handler of ``orch``."""

    async def answer(request: Request) -> Response:
        payload = request_json(request)
        if payload is NO_BODY or not isinstance(payload, dict) or "input" not in payload:
            return error_response(400, "InvalidRequest", 'send a JSON object {"input": <the answer>}')
        principal = request_principal(request)
        run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
        try:
            result = await orch.answer(
                run_id, task_id, payload["input"], by=principal.owner, owner=caller_owner(principal)
            )
        except RunNotFound as exc:
            return error_response(404, "RunNotFound", str(exc))
        except NotWaiting as exc:
            return error_response(409, "NotWaiting", str(exc))
        except InvalidAnswer as exc:
            return error_response(422, "InvalidAnswer", str(exc))
        except AgentCallError as exc:
            return error_response(502, "AgentCallFailed", f"the agent could not be given the answer: {exc}"[:1000])
        except StoreUnavailable as exc:
            return refusal(exc)
        return JSONResponse(jsonable(result), status_code=202)

    return answer


def approval_endpoint(orch: Orchestrator) -> Callable[[Request], Awaitable[Response]]:
    """The ``POST /runs/{run_id}/tasks/{task_id}/approval`` handler of ``orch``."""

    async def approval(request: Request) -> Response:
        payload = request_json(request)
        if (
            payload is NO_BODY
            or not isinstance(payload, dict)
            or not isinstance(payload.get("approve"), bool)
            or not isinstance(payload.get("comment", ""), str)
            or len(payload.get("comment", "")) > MAX_COMMENT
            or set(payload) - {"approve", "comment"}
        ):
            why = f'send a JSON object {{"approve": true|false, "comment": "why (at most {MAX_COMMENT} characters)"}}'
            return error_response(400, "InvalidRequest", why)
        principal = request_principal(request)
        run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
        try:
            result = await orch.approve(
                run_id,
                task_id,
                payload["approve"],
                payload.get("comment", ""),
                principal=principal,
                owner=caller_owner(principal),
            )
        except RunNotFound as exc:
            return error_response(404, "RunNotFound", str(exc))
        except NotAnApprover as exc:
            return error_response(403, "NotAnApprover", str(exc))
        except NotAwaitingApproval as exc:
            return error_response(409, "NotAwaitingApproval", str(exc))
        except StoreUnavailable as exc:
            return refusal(exc)
        return JSONResponse(jsonable(result), status_code=200)

    return approval
