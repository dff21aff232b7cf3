"""The API protects itself: bodies are capped before parsing, callers are rate-limited, and a
requester's open requests are capped. Each runs on an API process of its own, with low limits."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx

Body = Callable[..., dict[str, Any]]


def _auth(tokens: dict[str, str], user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[user]}"}


def test_a_large_body_is_refused_before_parsing_or_authentication(
    limited: Callable[[dict[str, str]], httpx.Client],
) -> None:
    api = limited({})
    big = b'{"account_name": "' + b"x" * 200_000 + b'"}'
    declared = api.post("/v1/account-requests", content=big)  # no token at all
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"
    assert declared.json()["status"] == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(20):
            yield b" " * 10_000

    streamed = api.post("/v1/account-requests", content=chunks())
    assert streamed.status_code == 413
    small = api.post("/v1/account-requests", content=b"{}")
    assert small.status_code == 401  # under the cap, the request goes on to authentication


def test_the_body_cap_holds_for_a_raw_slow_sender(
    limited: Callable[[dict[str, str]], httpx.Client],
) -> None:
    """A client that claims a huge body and sends it slowly gets its answer at once."""
    api = limited({})
    host, port = str(api.base_url.host), api.base_url.port or 80
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(
            b"POST /v1/account-requests HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000000000\r\n\r\n{"
        )
        assert s.recv(200).startswith(b"HTTP/1.1 413")


def test_each_caller_has_a_rate_and_hears_when_to_retry(
    limited: Callable[[dict[str, str]], httpx.Client], tokens: dict[str, str]
) -> None:
    api = limited({"VEND_LIMITS__REQUESTS_PER_MINUTE": "5"})
    answers = [api.get("/v1/account-requests", headers=_auth(tokens, "bob")) for _ in range(7)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    refused = answers[5]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["Retry-After"]) >= 1
    # Another caller has a bucket of its own.
    assert api.get("/v1/account-requests", headers=_auth(tokens, "carol")).status_code == 200


def test_creates_have_a_stricter_rate_and_open_requests_a_quota(
    limited: Callable[[dict[str, str]], httpx.Client], tokens: dict[str, str], new_body: Body
) -> None:
    api = limited(
        {"VEND_LIMITS__CREATES_PER_MINUTE": "2", "VEND_LIMITS__OPEN_REQUESTS_PER_REQUESTER": "0"}
    )
    made = [api.post("/v1/account-requests", json=new_body(), headers=_auth(tokens, "frank"))]
    made.append(api.post("/v1/account-requests", json=new_body(), headers=_auth(tokens, "frank")))
    assert [m.status_code for m in made] == [201, 201]
    third = api.post("/v1/account-requests", json=new_body(), headers=_auth(tokens, "frank"))
    assert third.status_code == 429 and "Retry-After" in third.headers

    quota = limited({"VEND_LIMITS__OPEN_REQUESTS_PER_REQUESTER": "2"})
    # frank's two requests above wait for approval: both open, so a third is over the quota.
    over = quota.post("/v1/account-requests", json=new_body(), headers=_auth(tokens, "frank"))
    for _ in range(50):  # visibility may lag the two starts by a moment
        if over.status_code == 429:
            break
        over = quota.post("/v1/account-requests", json=new_body(), headers=_auth(tokens, "frank"))
    assert over.status_code == 429
    assert over.json()["type"].endswith("too-many-open-requests")
