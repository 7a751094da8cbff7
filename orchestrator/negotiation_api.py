"""``POST /negotiations`` (scope ``runs:submit``): start a negotiation as a run of kind "negotiation".

Body: a ``NegotiationSpec`` (protocol, parties by registry agent id, issues, limits) -> 202 ``{"id", "status":
"running", "url", "events"}`` once the run is stored; follow it with ``GET /runs/{id}`` and ``/runs/{id}/events``.
Refusals: 400 ``InvalidRequest`` (the spec), 400 ``InvalidParty`` (a party not registered, unhealthy or lacking a
skill), 429 ``TooManyRuns``, 503 ``DatabaseUnavailable``.
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orchestrator.api import error_response, refusal
from orchestrator.limits import LimitExceeded
from orchestrator.negotiation.launch import PartyError, start_negotiation
from orchestrator.negotiation.spec import NegotiationSpec
from orchestrator.runs import StoreUnavailable
from orchestrator.service import Orchestrator
from protocol.access import request_principal
from protocol.boundary import NO_BODY, request_json
from protocol.validation import describe_validation_error

__all__ = ["NegotiationsEndpoint", "NEGOTIATIONS_PATH"]

NEGOTIATIONS_PATH = "/negotiations"


class NegotiationsEndpoint:
    """The ``POST /negotiations`` handler of one orchestrator."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orch = orchestrator

    async def handle(self, request: Request) -> Response:
        """Start the negotiation the body describes; 202 with the run's id once it is stored."""
        payload = request_json(request)
        if payload is NO_BODY or not isinstance(payload, dict):
            return error_response(
                400,
                "InvalidRequest",
                'send a JSON object: {"protocol": "alternating", "parties": [{"agent_id": ..., "role": "buyer"}, '
                '...], "issues": [...]}',
            )
        try:
            spec = NegotiationSpec.model_validate(payload)
        except ValidationError as exc:
            return error_response(400, "InvalidRequest", f"invalid negotiation: {describe_validation_error(exc)}")
        try:
            run_id = await start_negotiation(self.orch, spec, owner=request_principal(request).owner)
        except PartyError as exc:
            return error_response(400, "InvalidParty", str(exc))
        except LimitExceeded as exc:
            return error_response(exc.status, "TooManyRuns" if exc.status == 429 else "LimitExceeded", str(exc))
        except StoreUnavailable as exc:
            return refusal(exc)
        return JSONResponse(
            {"id": run_id, "status": "running", "url": f"/runs/{run_id}", "events": f"/runs/{run_id}/events"},
            status_code=202,
        )
