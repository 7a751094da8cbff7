"""Host names and bind addresses: which stay on this machine."""

from __future__ import annotations

import ipaddress

__all__ = ["loopback_host"]


def loopback_host(host: str) -> bool:
    """True for a bind address or host name that stays on this machine (127.0.0.0/8, ::1, localhost)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
