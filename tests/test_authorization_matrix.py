"""Every route, for every kind of caller, gets exactly the status the contract says.

Callers: nobody (no token), the request's requester (alice), another requester (mallory), an
approver (bob), an operator (carol), an admin (frank). State-changing calls each get a fresh
request, so one success cannot hide the next check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api

Body = Callable[..., dict[str, Any]]
CALLERS = ("nobody", "alice", "mallory", "bob", "carol", "frank")

# route -> expected status per caller, in CALLERS order
MATRIX: dict[str, tuple[int, ...]] = {
    "GET /healthz": (200, 200, 200, 200, 200, 200),
    "GET /readyz": (200, 200, 200, 200, 200, 200),
    "GET /v1": (200, 200, 200, 200, 200, 200),  # links and how to sign in: nothing private
    "GET /v1/landing-zone/health": (401, 403, 403, 403, 200, 200),  # operators run the doctor
    "POST /v1/account-requests": (401, 201, 201, 403, 403, 201),
    "GET /v1/account-requests": (401, 200, 200, 200, 200, 200),
    "GET /v1/account-requests/{id}": (401, 200, 404, 200, 200, 200),
    "GET /v1/account-requests/{id}/events": (401, 200, 404, 200, 200, 200),
    "POST /v1/account-requests/{id}/approve": (401, 403, 403, 200, 403, 200),
    "POST /v1/account-requests/{id}/reject": (401, 403, 403, 200, 403, 200),
    "POST /v1/account-requests/{id}/cancel": (401, 200, 404, 403, 200, 200),
    # not parked: an operator is allowed to ask, and is told why not (409)
    "POST /v1/account-requests/{id}/retry": (401, 403, 403, 403, 409, 409),
    "POST /v1/account-requests/{id}/skip": (401, 403, 403, 403, 409, 409),
    # Fleet operations: approvers see rollouts (they approve them), operators run them.
    "GET /v1/rollouts": (401, 403, 403, 200, 200, 200),
    "GET /v1/accounts": (401, 200, 200, 200, 200, 200),
    # (a request body is no drift-check body: the operators' 422 says they got past the role)
    "POST /v1/drift-checks": (401, 403, 403, 403, 422, 422),
    "POST /v1/rollouts": (401, 403, 403, 403, 422, 422),
}

BODIES: dict[str, dict[str, Any]] = {
    "approve": {"comment": "ok"},
    "reject": {"reason": "no"},
    "cancel": {"reason": "not needed"},
    "retry": {"step": "create_account"},
    "skip": {"step": "register_billing", "reason": "manual"},
}


@pytest.mark.parametrize("route", list(MATRIX))
def test_route_by_caller(api: Api, new_body: Body, route: str) -> None:
    method, path = route.split(" ", 1)
    got = []
    for caller in CALLERS:
        user = None if caller == "nobody" else caller
        kwargs: dict[str, Any] = {}
        if "{id}" in path:
            request_id = api.create("alice", new_body()).json()["id"]  # fresh for each caller
            url = path.replace("{id}", request_id)
            kwargs["json"] = BODIES.get(path.rsplit("/", 1)[-1])
        else:
            url = path
            if method == "POST":
                kwargs["json"] = new_body()
        got.append(api.call(method, url, user, **kwargs).status_code)
    assert tuple(got) == MATRIX[route], dict(zip(CALLERS, got, strict=True))
