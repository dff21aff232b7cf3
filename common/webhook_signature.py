"""The webhook signature, for the engine that signs and for receivers that check (the sandbox's
sink checks with this very code; docs/operations.md shows it for other receivers)."""

from __future__ import annotations

import hashlib
import hmac
import time

REPLAY_WINDOW_SECONDS = 300


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def verify(
    secret: bytes, timestamp: str, signature: str, body: bytes, *, now: float | None = None
) -> bool:
    """What a receiver does: the signature over ``timestamp.body``, and the timestamp within
    five minutes of its own clock (either way), so a captured delivery replays for that long
    at most; receivers that also keep ``X-Vend-Delivery`` ids for the window refuse it at once."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > REPLAY_WINDOW_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)
