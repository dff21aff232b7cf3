from __future__ import annotations

import pytest

from api.cursor import InvalidCursor, decode, encode


def test_round_trip_and_tampering() -> None:
    key = b"k" * 32
    cursor = encode(b"\x00temporal-page-token\xff", key)
    assert decode(cursor, key) == b"\x00temporal-page-token\xff"
    with pytest.raises(InvalidCursor):
        decode(cursor, b"another-deployment-key-000000000")
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    with pytest.raises(InvalidCursor):
        decode(flipped, key)
    for junk in ("", "%%%", "abc"):
        with pytest.raises(InvalidCursor):
            decode(junk, key)
