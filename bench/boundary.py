"""What the HTTP boundary costs per request, measured in-process so the machine's noise hardly matters.

Run: ``.venv/bin/python bench/boundary.py [--requests 20000] [--rounds 5]``. Drives one ASGI app with the same
A2A SendMessage body four ways, interleaved round by round: the bare app (baseline), behind the boundary without
access control, behind it with a bearer token checked on every request (cached verification), and the first
verification of a fresh token (the signature check itself). Prints microseconds per request and the boundary's
cost beside the HTTP round trip it sits in (pass ``--round-trip-us`` from ``bench/dispatch.py``'s orchestrated row).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import anyio

from protocol.access import AccessPolicy, Rule
from protocol.auth import KeySet, SigningKey, TokenVerifier
from protocol.boundary import Boundary, BoundaryPolicy

BODY = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {
            "message": {
                "messageId": "m1",
                "role": "ROLE_USER",
                "parts": [{"data": {"text": "x"}}],
                "metadata": {"skill": "echo"},
            },
            "configuration": {"historyLength": 0},
        },
    }
).encode()
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
    (b"a2a-version", b"1.0"),
    (b"accept", b"*/*"),
    (b"user-agent", b"python-httpx/0.28"),
]


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The app behind the boundary: reads its body, as every real handler does."""
    await receive()


async def per_request_us(target: Any, headers: list[tuple[bytes, bytes]], n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Any) -> None:
        return None

    start = time.perf_counter()
    for _ in range(n):
        await target({"type": "http", "method": "POST", "path": "/", "headers": headers}, receive, send)
    return (time.perf_counter() - start) / n * 1e6


async def main(args: argparse.Namespace) -> None:
    key = SigningKey.generate()
    keys = KeySet({key.kid: key.key.public_key()})
    verifier = TokenVerifier(keys, audience="scaleout")
    token = key.token("orchestrator", ["agents:call"], issuer="scaleout", audience="scaleout", ttl_s=3600)
    rules = [Rule.of("POST", "/", "agents:call"), Rule.of("GET", "/.well-known/agent-card.json", "public")]
    guarded = Boundary(app, BoundaryPolicy())
    with_auth = Boundary(app, BoundaryPolicy(), access=AccessPolicy(rules, verifier))
    authed = [*HEADERS, (b"authorization", f"Bearer {token}".encode())]
    kinds = {"bare": (app, HEADERS), "boundary": (guarded, HEADERS), "boundary + token": (with_auth, authed)}
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    for target, headers in kinds.values():  # warm up
        await per_request_us(target, headers, 1000)
    for _ in range(args.rounds):
        for kind, (target, headers) in kinds.items():
            samples[kind].append(await per_request_us(target, headers, args.requests))
    fresh = []
    for i in range(200):  # a new token each time: the signature is really checked
        new = key.token(f"u{i}", ["agents:call"], issuer="scaleout", audience="scaleout", ttl_s=3600)
        start = time.perf_counter()
        verifier.verify(new)
        fresh.append((time.perf_counter() - start) * 1e6)
    bare = statistics.median(samples["bare"])
    print(f"{'':34}{'us/request':>11}  (medians of {args.rounds} rounds of {args.requests})")
    for kind, values in samples.items():
        med = statistics.median(values)
        extra = f"  -> +{med - bare:5.1f} us over the bare app" if kind != "bare" else ""
        print(f"{kind:34}{med:11.2f}{extra}")
    print(f"{'first check of a new token':34}{statistics.median(fresh):11.2f}  (EdDSA signature; then cached)")
    if args.round_trip_us:
        cost = statistics.median(samples["boundary + token"]) - bare
        print(f"boundary + token = {cost / args.round_trip_us:.2%} of a {args.round_trip_us:.0f} us orchestrated task")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-trip-us", type=float, default=0.0, help="an orchestrated task's median, for scale")
    anyio.run(main, parser.parse_args())
