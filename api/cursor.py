"""Opaque, signed list cursors.

A cursor wraps Temporal's visibility page token. Temporal answers a forged or truncated token with
an internal error that its client retries for seconds, so the API signs the tokens it hands out
and refuses any cursor it did not sign, before Temporal sees it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


class InvalidCursor(ValueError):
    pass


def encode(token: bytes, key: bytes) -> str:
    mac = hmac.new(key, token, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + token).decode().rstrip("=")


def decode(cursor: str, key: bytes) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as err:
        raise InvalidCursor("cursor is not valid") from err
    mac, token = raw[:16], raw[16:]
    if len(mac) < 16 or not hmac.compare_digest(
        mac, hmac.new(key, token, hashlib.sha256).digest()[:16]
    ):
        raise InvalidCursor("cursor is not valid (or was issued by another deployment)")
    return token
