"""What the orchestrator presents when it calls agents: its service token(s) and the CA it trusts.

Credentials come from this host's configuration only (``orchestrator serve --agent-token`` /
``$SCALEOUT_AGENT_TOKEN`` for every agent, ``--agent-credentials FILE`` per agent URL prefix, ``--ca-file``),
never from registry records: a record says where an agent is, not what to send it. A prefix matches by scheme,
host, port and whole path segments, so ``https://a.example`` never matches ``https://a.example.evil.com`` and
``http://h:80/agents`` never matches ``http://h:80/agents-evil``; the longest matching prefix wins, then the
default token. Tokens never appear in a ``repr``, a log line or an error message.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["AgentCredentials", "AGENT_TOKEN_ENV"]

AGENT_TOKEN_ENV = "SCALEOUT_AGENT_TOKEN"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _key(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path) of an http(s) URL (``mcp+`` prefix dropped), or None when it is not one."""
    try:
        parts = urlsplit(url.removeprefix("mcp+"))
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/")


class AgentCredentials:
    """Bearer tokens for agent calls (one default, and/or per URL prefix) and the CA file agents' TLS is checked
    against (the system's trust store when unset)."""

    def __init__(
        self, token: str | None = None, tokens: Mapping[str, str] | None = None, *, ca_file: str | None = None
    ) -> None:
        self.token = token.strip() if token and token.strip() else None
        self._prefixes: list[tuple[tuple[str, str, int, str], str]] = []
        for prefix, value in (tokens or {}).items():
            key = _key(prefix)
            if key is None:
                raise ValueError(f"agent credential prefix {prefix[:200]!r} is not an http(s) URL with a host")
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"the token for agent prefix {prefix[:200]!r} must be a non-empty string")
            self._prefixes.append((key, value.strip()))
        self._prefixes.sort(key=lambda item: len(item[0][3]), reverse=True)  # longest path first
        self.ca_file = ca_file
        self._ssl: ssl.SSLContext | None = None

    @classmethod
    def from_config(
        cls, token: str | None = None, file: str | Path | None = None, *, ca_file: str | None = None
    ) -> AgentCredentials:
        """Credentials from the ``serve`` flags: ``token`` (else ``$SCALEOUT_AGENT_TOKEN``) for every agent, and
        ``file`` (JSON ``{"<agent URL prefix>": "<token>"}``) per prefix. Raises ValueError on a bad file."""
        tokens: dict[str, str] = {}
        if file is not None:
            try:
                document = json.loads(Path(file).expanduser().read_text())
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read the agent credentials file {file}: {type(exc).__name__}") from None
            if not isinstance(document, dict):
                raise ValueError(f'{file} must hold a JSON object {{"<agent URL prefix>": "<token>"}}')
            tokens = document
        return cls(token or os.environ.get(AGENT_TOKEN_ENV), tokens, ca_file=ca_file)

    def token_for(self, url: str) -> str | None:
        """The token to send to the agent at ``url``: the longest configured prefix it lies under, else the
        default token, else None."""
        key = _key(url)
        if key is None:
            return None
        for (scheme, host, port, path), token in self._prefixes:
            if (scheme, host, port) == key[:3] and (not path or key[3] == path or key[3].startswith(path + "/")):
                return token
        return self.token

    def verify(self) -> ssl.SSLContext | bool:
        """What HTTP clients verify agents' certificates with: a context trusting ``ca_file``, else True."""
        if self.ca_file is None:
            return True
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.ca_file)
        return self._ssl

    def __repr__(self) -> str:  # never the tokens themselves
        return (
            f"AgentCredentials(default={'set' if self.token else 'none'}, prefixes={len(self._prefixes)}, "
            f"ca_file={self.ca_file!r})"
        )
