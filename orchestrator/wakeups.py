"""Waking whoever waits on a run: this replica's own commits, and PostgreSQL ``LISTEN/NOTIFY`` from the others.

Readers never trust a wake-up for data: a wake-up only says "look at the database again". Every wait is also
bounded (``poll_s``), so a lost notification (a listener reconnecting) costs at most one poll interval.
Channels: ``scaleout_events`` (payload: a run id with new events), ``scaleout_runs`` (a run was queued or
released: replicas with room claim), ``scaleout_cancel`` (a run id whose cancellation was requested).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import anyio
import sqlalchemy as sa

__all__ = ["Wakeups", "listen", "CHANNELS"]

_log = logging.getLogger(__name__)
CHANNELS = ("scaleout_events", "scaleout_runs", "scaleout_cancel")


class Wakeups:
    """Per-key events: ``arm`` before reading the database, ``wait`` after finding nothing new, ``wake`` on news."""

    def __init__(self) -> None:
        self._events: dict[str, anyio.Event] = {}

    def arm(self, key: str) -> anyio.Event:
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = anyio.Event()
        return event

    def wake(self, key: str) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        events, self._events = self._events, {}
        for event in events.values():
            event.set()


async def listen(
    url: str, on_notify: Callable[[str, str], None], stop: threading.Event, *, application_name: str = ""
) -> None:
    """LISTEN on the scaleout channels of the PostgreSQL database at ``url`` (a SQLAlchemy URL) and call
    ``on_notify(channel, payload)`` in the caller's event loop, until ``stop`` is set (``application_name`` names
    the connection in ``pg_stat_activity``). Reconnects with backoff;
    after a reconnect it reports ``("*", "")`` (notifications may have been missed)."""
    import psycopg

    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    def tell(channel: str, payload: str) -> bool:
        try:
            anyio.from_thread.run_sync(on_notify, channel, payload)
            return True
        except RuntimeError:  # the event loop is gone: the orchestrator stopped
            stop.set()
            return False

    def loop() -> None:
        delay, connected_before = 0.1, False
        while not stop.is_set():
            try:
                with psycopg.connect(
                    conninfo, autocommit=True, connect_timeout=5, application_name=application_name[:63]
                ) as conn:
                    for channel in CHANNELS:
                        conn.execute(f"LISTEN {channel}")
                    if connected_before:
                        tell("*", "")
                    connected_before, delay = True, 0.1
                    while not stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            if not tell(note.channel, note.payload):
                                return
            except psycopg.Error as exc:
                _log.debug("listener: %s; reconnecting in %.1f s", exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, 2.0)
                connected_before = True

    await anyio.to_thread.run_sync(loop, abandon_on_cancel=True)
