"""401 for a missing or bad token, 403 for a role that may not act."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt

from common.auth import mint_dev_token
from common.models import Role
from common.settings import AuthSettings
from sandbox.stack import EmbeddedStack
from tests.conftest import Api

Body = Callable[..., dict[str, Any]]


def test_health_needs_no_token(api: Api) -> None:
    assert api.call("GET", "/healthz", None).json() == {"status": "ok"}
    assert api.call("GET", "/readyz", None).json() == {"status": "ready"}


def test_missing_token_is_401(api: Api) -> None:
    resp = api.call("GET", "/v1/account-requests", None)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert resp.headers["content-type"] == "application/problem+json"


def test_bad_tokens_are_401(api: Api, stack: EmbeddedStack) -> None:
    auth = AuthSettings(dev_secret_file=stack.config.data_dir / "dev-secret")
    expired = mint_dev_token(auth, "alice", [Role.requester], ttl_seconds=-120)
    forged = jwt.encode(
        {
            "sub": "alice",
            "roles": ["admin"],
            "iss": auth.issuer,
            "aud": auth.audience,
            "exp": int(time.time()) + 60,
        },
        "not-the-secret-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    wrong_aud = jwt.encode(
        {
            "sub": "alice",
            "roles": ["admin"],
            "iss": auth.issuer,
            "aud": "someone-else",
            "exp": int(time.time()) + 60,
        },
        (stack.config.data_dir / "dev-secret").read_text().strip(),
        algorithm="HS256",
    )
    for token in (expired, forged, wrong_aud, "garbage"):
        resp = api.http.get("/v1/account-requests", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, token


def test_roles_are_enforced(api: Api, new_body: Body) -> None:
    assert api.create("bob", new_body()).status_code == 403  # approvers do not request
    assert api.create("carol", new_body()).status_code == 403
    req = api.create("alice", new_body()).json()
    assert api.act("alice", req["id"], "approve", {}).status_code == 403
    assert api.act("carol", req["id"], "approve", {}).status_code == 403
    assert api.act("alice", req["id"], "reject", {"reason": "x"}).status_code == 403
    assert api.act("frank", req["id"], "approve", {}).status_code == 200  # admin may


def test_tokens_never_appear_in_responses(api: Api, new_body: Body) -> None:
    req = api.create("alice", new_body())
    assert api.tokens["alice"] not in req.text
    assert api.tokens["alice"] not in api.get("alice", req.json()["id"]).text
