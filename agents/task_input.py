"""What a message hands a skill: its input (the first data part, else the text) and whether its parts' media
types are ones the agent takes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from protocol.a2a import Message, Part
from protocol.jsonrpc import ContentTypeNotSupportedError, InvalidParamsError

__all__ = ["check_media", "message_arguments"]


def _media_type(part: Part) -> str:
    if part.media_type:
        return part.media_type.split(";")[0].strip().lower()
    if part.text is not None:
        return "text/plain"
    if part.data is not None:
        return "application/json"
    return "application/octet-stream"


def check_media(message: Message, modes: Sequence[str]) -> None:
    """Every part's media type must be one the agent takes (``*/*`` and ``type/*`` wildcards count)."""
    accepted = {m.lower() for m in modes}
    for part in message.parts:
        media = _media_type(part)
        kind = media.split("/")[0]
        if part.text is not None and kind == "text":
            media = "text/plain"  # any text is read as text
        if media in accepted or "*/*" in accepted or f"{kind}/*" in accepted:
            continue
        raise ContentTypeNotSupportedError(
            f"this agent does not take {media!r} parts; it takes {sorted(accepted)}",
            {"mediaType": media},
        )


def message_arguments(message: Message) -> Any:
    """A message's skill input: its first data part, else its text parts joined."""
    for part in message.parts:
        if part.data is not None:
            return part.data
    text = message.text()
    if text:
        return text
    if any(p.url is not None or p.raw is not None for p in message.parts):
        raise ContentTypeNotSupportedError("skills take a data part (JSON) or text parts, not files or URLs")
    raise InvalidParamsError("the message has no data or text part to use as skill input")
