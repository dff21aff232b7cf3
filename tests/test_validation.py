"""Bad input gets RFC 9457 problem details with field locations, and nothing is started."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, Sandbox

Body = Callable[..., dict[str, Any]]


def _locs(problem: dict[str, Any]) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in problem["errors"]]


@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        ("account_name", "ab", "body.account_name"),
        ("account_name", "A" * 10, "body.account_name"),
        ("account_name", "x" * 51, "body.account_name"),
        ("account_name", "shop_prod", "body.account_name"),
        ("account_email", "not-an-email", "body.account_email"),
        ("account_email", "someone@elsewhere.com", "body.account_email"),
        ("organizational_unit", "Nowhere", "body.organizational_unit"),
        ("organizational_unit", "Security", "body.organizational_unit"),
        ("organizational_unit", "Workloads/Prod", "body.environment"),  # dev in a prod OU
        ("environment", "production", "body.environment"),
        ("owner_email", "nobody", "body.owner_email"),
        ("cost_center", "", "body.cost_center"),
        ("cost_center", "   ", "body.cost_center"),
        ("justification", "", "body.justification"),
        ("justification", "j" * 2001, "body.justification"),
        ("tags", {f"k{i}": "v" for i in range(51)}, "body.tags"),
        ("tags", {"k" * 129: "v"}, "body.tags"),
        ("tags", {"ok": "v" * 257}, "body.tags"),
        ("tags", {"aws:createdBy": "me"}, "body.tags"),
        ("tags", {"vending:request-id": "spoof"}, "body.tags"),
        ("tags", {"bad": "no\u0000nul"}, "body.tags"),
        ("workload_security", {"enabled": "maybe"}, "body.workload_security.enabled"),
        ("billing", {"customer_id": ""}, "body.billing.customer_id"),
        ("billing", None, "body.billing"),
    ],
)
def test_each_rule_answers_422_with_the_field(
    api: Api, new_body: Body, field: str, value: Any, loc: str
) -> None:
    body = new_body(**{field: value})
    resp = api.create("alice", body)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert problem["status"] == 422
    assert loc in _locs(problem), problem


def test_missing_and_unknown_fields(api: Api, new_body: Body) -> None:
    body = new_body()
    del body["justification"]
    body["surprise"] = 1
    problem = api.create("alice", body).json()
    assert "body.justification" in _locs(problem)
    assert "body.surprise" in _locs(problem)


def test_malformed_json_is_422_not_500(api: Api) -> None:
    resp = api.call(
        "POST",
        "/v1/account-requests",
        "alice",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"


def test_valid_edge_values_are_accepted(api: Api, new_body: Body) -> None:
    body = new_body(
        account_name="abc",
        justification="j" * 2000,
        tags={f"k{i}": "v" * 256 for i in range(50)},
        account_email="Edge.Case+1@Sub.Example.com",
    )
    resp = api.create("alice", body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["request"]["account_email"] == "edge.case+1@sub.example.com"
    api.act("alice", resp.json()["id"], "cancel", {"reason": "cleanup"})


def test_invalid_request_ids_and_unknown_routes(api: Api) -> None:
    assert api.get("carol", "not-a-uuid").status_code == 404
    assert api.get("carol", "00000000-0000-0000-0000-000000000000").status_code == 404
    missing = api.call("GET", "/v1/nope", "carol")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_retry_needs_a_known_step_and_a_parked_request(api: Api, new_body: Body) -> None:
    req = api.create("alice", new_body()).json()
    unknown = api.act("carol", req["id"], "retry", {"step": "make_coffee"})
    assert unknown.status_code == 422
    not_parked = api.act("carol", req["id"], "retry", {"step": "create_account"})
    assert not_parked.status_code == 409
    assert api.act("alice", req["id"], "retry", {"step": "create_account"}).status_code == 403


def test_nothing_reaches_aws_for_invalid_input(api: Api, sandbox: Sandbox, new_body: Body) -> None:
    before = sandbox.calls("ListAccounts")
    api.create("alice", new_body(organizational_unit="Nowhere"))
    assert sandbox.calls("ListAccounts") == before
