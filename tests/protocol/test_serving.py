"""Servers close connections whose request head never completes (slowloris), and keep answering others."""

from __future__ import annotations

import socket
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from agents.testing import serve_in_thread
from protocol.serving import ServerLimits


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, TimeoutError, OSError):
        return True


def test_half_sent_requests_are_closed_after_the_header_deadline() -> None:
    app = Starlette(routes=[Route("/", lambda _: PlainTextResponse("ok"))])
    with serve_in_thread(app, limits=ServerLimits(header_timeout_s=1.0)) as url:
        port = int(url.rsplit(":", 1)[1])
        stalled = []
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
            stalled.append(sock)
        assert httpx.get(url + "/", timeout=5).text == "ok"  # others are served meanwhile
        started = time.monotonic()
        for sock in stalled:
            sock.settimeout(max(0.1, 6 - (time.monotonic() - started)))
            assert _closed(sock), "a half-sent request stayed open past the header deadline"
            sock.close()
        assert time.monotonic() - started < 6
        assert httpx.get(url + "/", timeout=5).text == "ok"


def test_a_body_that_stops_arriving_is_cut_off() -> None:
    async def read(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = Starlette(routes=[Route("/", read, methods=["POST"])])
    limits = ServerLimits(header_timeout_s=30.0, body_timeout_s=1.0)
    with serve_in_thread(app, limits=limits) as url:
        port = int(url.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port), timeout=6)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789")
        started = time.monotonic()
        assert _closed(sock), "a request whose body stopped arriving stayed open"
        assert time.monotonic() - started < 6
        sock.close()
        assert httpx.post(url + "/", content=b"x" * 100, timeout=5).text == "100"


def test_busy_keep_alive_connections_are_not_cut() -> None:
    async def port(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.client.port if request.client else 0))

    app = Starlette(routes=[Route("/", port)])
    with serve_in_thread(app, limits=ServerLimits(header_timeout_s=1.0)) as url, httpx.Client(timeout=5) as client:
        ports = set()
        deadline = time.monotonic() + 2.5  # well past the header deadline, one request after another
        while time.monotonic() < deadline:
            ports.add(client.get(url + "/").text)
        assert len(ports) == 1, "the server closed a keep-alive connection that kept sending requests"
