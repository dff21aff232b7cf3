"""What protects the API itself: a cap on request bodies, and rates per principal.

The body cap is an ASGI middleware, so it acts before anything parses or authenticates: an
unauthenticated multi-GB POST is refused after 64 KiB, not after it has filled a replica's
memory. The rates are token buckets per principal, kept in each API process (N replicas allow
N times the rate; the quota on open requests is cluster-wide, counted in Temporal's visibility).
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_JSON, TYPE_BASE, Problem

WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class BodySizeLimit:
    """413 problem+json for a body over ``max_bytes``, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        # Read at most max_bytes + 1 before the app sees anything, then hand it over whole.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        problem = {
            "type": TYPE_BASE + "too-large",
            "title": "Content too large",
            "status": 413,
            "detail": f"the request body exceeds {self.max_bytes} bytes",
        }
        payload = json.dumps(problem).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets per (principal, kind): ``per_minute`` sustained, a minute's worth at once
    at most. Idle buckets are forgotten past ``max_keys`` (oldest first), so the table cannot
    grow without bound."""

    def __init__(self, limits: dict[str, int], max_keys: int = 100_000) -> None:
        self._limits = limits
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()
        self._max_keys = max_keys

    def take(self, principal: str, kind: str, *, now: float | None = None) -> None:
        """Spend one token, or raise 429 with the seconds until the next one."""
        per_minute = self._limits[kind]
        if per_minute <= 0:
            return  # 0: no limit
        now = time.monotonic() if now is None else now
        key = (principal, kind)
        bucket = self._buckets.pop(key, None) or _Bucket(tokens=float(per_minute), at=now)
        rate = per_minute / 60.0
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        self._buckets[key] = bucket
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1.0:
            wait = math.ceil((1.0 - bucket.tokens) / rate)
            raise Problem(
                429,
                "Too many requests",
                f"at most {per_minute} {kind} calls a minute per caller; retry in {wait} s",
                kind="rate-limited",
                headers={"Retry-After": str(wait)},
            )
        bucket.tokens -= 1.0
