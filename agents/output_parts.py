"""A skill result as A2A parts, by the media types the caller accepts (its ``acceptedOutputModes``).

A skill result is a JSON object. It goes out as a data part (``application/json``) when the caller accepts JSON or
said nothing, and as a text part (``text/plain``: the single string field, else the object as JSON text) when the
caller accepts text; a caller that accepts both gets both, data first. A caller that accepts neither gets
``ContentTypeNotSupportedError`` (-32005) naming the modes, before anything runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from protocol.a2a import Part
from protocol.jsonrpc import ContentTypeNotSupportedError

__all__ = ["OUTPUT_MODES", "accepted_output_modes", "output_parts", "result_text"]

OUTPUT_MODES = ("application/json", "text/plain")  # what a skill result can be sent as
_MAX_MODES = 32  # modes named in an error message
_JSON = frozenset({"application/json", "application/*", "*/*"})
_TEXT = frozenset({"text/plain", "text/*", "*/*"})


def _bare(mode: str) -> str:
    return mode.split(";")[0].strip().lower()


def accepted_output_modes(accepted: Sequence[str] | None) -> tuple[str, ...]:
    """The modes of ``OUTPUT_MODES`` a caller's ``acceptedOutputModes`` allows (all of JSON's when it names none).

    Raises ``ContentTypeNotSupportedError`` when it names modes but none that a skill result can be sent as.
    """
    if not accepted:
        return ("application/json",)
    bare = {_bare(mode) for mode in accepted}
    modes = tuple(mode for mode, allowed in zip(OUTPUT_MODES, (_JSON, _TEXT), strict=True) if bare & allowed)
    if not modes:
        named = ", ".join(repr(mode[:100]) for mode in list(accepted)[:_MAX_MODES])
        raise ContentTypeNotSupportedError(
            f"acceptedOutputModes [{named}] has no mode this agent's skills answer in; they answer in "
            f"{' or '.join(OUTPUT_MODES)}: add one of them (or omit acceptedOutputModes)",
            {"acceptedOutputModes": list(accepted)[:_MAX_MODES], "outputModes": list(OUTPUT_MODES)},
        )
    return modes


def result_text(result: Any) -> str:
    """A result as plain text: the value of its only field when that is a string, else the result as JSON text."""
    if isinstance(result, dict) and len(result) == 1:
        (value,) = result.values()
        if isinstance(value, str):
            return value
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False)


def output_parts(result: Any, accepted: Sequence[str] | None = None) -> list[Part]:
    """The parts that carry ``result`` to a caller accepting ``accepted`` (see ``accepted_output_modes``)."""
    modes = accepted_output_modes(accepted)
    parts = []
    if "application/json" in modes:
        parts.append(Part.from_data(result))
    if "text/plain" in modes:
        parts.append(Part.from_text(result_text(result)))
    return parts
