"""Request → approval → account created and placed, as users drive it through the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.conftest import Api, Sandbox

Body = Callable[..., dict[str, Any]]


def test_prod_request_needs_two_approvals_then_lands_in_its_ou(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body(organizational_unit="Workloads/Prod", environment="prod", tags={"app": "shop"})
    created = api.create("alice", body)
    assert created.status_code == 201, created.text
    req = created.json()
    assert created.headers["Location"] == f"/v1/account-requests/{req['id']}"
    assert req["status"] == "pending_approval"
    assert (req["approvals_required"], req["approvals_remaining"]) == (2, 2)
    assert [s["name"] for s in req["steps"]] == [
        "create_account",
        "move_to_ou",
        "enroll_control_tower",
        "apply_baselines",
        "assign_access",
        "create_budget",
        "set_alternate_contacts",
        "set_account_alias",
        "enable_regions",
        "delete_default_vpcs",
        "enroll_workload_security",
        "register_billing",
    ]

    first = api.act("bob", req["id"], "approve", {"comment": "looks right"})
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "pending_approval"
    assert first.json()["approvals_remaining"] == 1
    assert sandbox.accounts_with_email(body["account_email"]) == []  # nothing before quorum

    second = api.act("dave", req["id"], "approve", {})
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "provisioning"

    done = api.wait_for(req["id"], {"completed"}, user="alice")
    accounts = sandbox.accounts_with_email(body["account_email"])
    assert len(accounts) == 1
    assert done["account_id"] == accounts[0]["Id"]
    assert sandbox.ou_path_of(done["account_id"]) == "Workloads/Prod"
    tags = sandbox.tags_of(done["account_id"])
    assert tags["app"] == "shop"
    assert tags["vending:request-id"] == req["id"]
    assert tags["vending:environment"] == "prod"
    steps = {s["name"]: s for s in done["steps"]}
    assert steps["create_account"]["status"] == "succeeded"
    assert steps["move_to_ou"]["status"] == "succeeded"
    assert steps["create_account"]["attempts"] == 1
    assert steps["enroll_control_tower"]["status"] == "succeeded"
    assert steps["apply_baselines"]["status"] == "succeeded"
    assert steps["enroll_workload_security"]["status"] == "succeeded"
    assert steps["register_billing"]["status"] == "succeeded"
    assert done["workload_security_connector_id"] is not None
    assert done["billing_registration_id"].startswith("reg_")
    assert [a["by"] for a in done["approvals"]] == ["bob", "dave"]

    events = api.call("GET", f"/v1/account-requests/{req['id']}/events", "alice").json()["items"]
    actions = [(e["actor"], e["action"], e["outcome"]) for e in events]
    assert ("bob", "approve", "approved") in actions
    assert ("dave", "approve", "approved") in actions
    assert actions[-1] == ("system", "complete", "completed")


def test_sandbox_ou_is_auto_approved(api: Api, sandbox: Sandbox, new_body: Body) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    req = api.create("alice", body).json()
    assert req["status"] == "provisioning"
    assert req["approvals_required"] == 0
    done = api.wait_for(req["id"], {"completed"})
    assert sandbox.ou_path_of(done["account_id"]) == "Sandbox"
    events = api.call("GET", f"/v1/account-requests/{req['id']}/events", "alice").json()["items"]
    assert any(e["outcome"] == "auto-approved" for e in events)


def test_rejection_ends_the_request_and_frees_the_name(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body()
    req = api.create("alice", body).json()
    no_reason = api.act("bob", req["id"], "reject", {})
    assert no_reason.status_code == 422
    rejected = api.act("bob", req["id"], "reject", {"reason": "use the shared account"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["approvals"][0]["decision"] == "rejected"
    late = api.act("dave", req["id"], "approve", {})
    assert late.status_code == 409
    assert late.headers["content-type"] == "application/problem+json"
    assert sandbox.accounts_with_email(body["account_email"]) == []
    # The claim on the name ended with the request: the same name can be asked for again.
    again = api.create("alice", body)
    assert again.status_code == 201, again.text


def test_unanswered_request_expires(api: Api, sandbox: Sandbox, new_body: Body) -> None:
    body = new_body(organizational_unit="Experiments/ShortLived", environment="dev")
    req = api.create("alice", body).json()
    assert req["approval_expires_at"] is not None
    expired = api.wait_for(req["id"], {"expired"}, timeout=30)
    assert expired["status"] == "expired"
    assert api.act("bob", req["id"], "approve", {}).status_code == 409
    assert sandbox.accounts_with_email(body["account_email"]) == []


def test_nobody_approves_their_own_request(api: Api, new_body: Body) -> None:
    req = api.create("erin", new_body()).json()  # erin is requester and approver
    own = api.act("erin", req["id"], "approve", {})
    assert own.status_code == 403
    assert "made" in own.json()["detail"]
    own_reject = api.act("erin", req["id"], "reject", {"reason": "x"})
    assert own_reject.status_code == 403
    assert api.act("bob", req["id"], "approve", {}).status_code == 200
    assert api.act("bob", req["id"], "approve", {}).status_code == 409  # counts once


def test_requesters_see_only_their_own_requests(api: Api, new_body: Body) -> None:
    mine = api.create("alice", new_body()).json()
    theirs = api.create("mallory", new_body()).json()
    assert api.get("mallory", mine["id"]).status_code == 404
    assert (
        api.call("GET", f"/v1/account-requests/{mine['id']}/events", "mallory").status_code == 404
    )
    assert api.act("mallory", mine["id"], "cancel", {"reason": "x"}).status_code == 404
    listed = api.wait_listed("mallory", {theirs["id"]})
    ids = {item["id"] for item in listed["items"]}
    assert theirs["id"] in ids and mine["id"] not in ids
    assert all(item["requested_by"] == "mallory" for item in listed["items"])
    assert api.get("bob", mine["id"]).status_code == 200  # approvers see all
    assert api.get("carol", mine["id"]).status_code == 200  # operators see all


def test_list_is_paginated_newest_first_and_filters_by_status(api: Api, new_body: Body) -> None:
    ids = [api.create("mallory", new_body()).json()["id"] for _ in range(3)]
    api.wait_listed("mallory", set(ids))
    page = api.call("GET", "/v1/account-requests", "mallory", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = api.call(
        "GET", "/v1/account-requests", "mallory", params={"limit": 2, "cursor": page["next_cursor"]}
    ).json()
    seen = [i["id"] for i in page["items"] + rest["items"]]
    assert seen[:3] == list(reversed(ids))
    assert len(seen) == len(set(seen))
    api.act("bob", ids[0], "reject", {"reason": "no"})
    # Visibility is eventually consistent: the rejection shows in the filtered list a moment later.
    rejected = api.wait_listed("bob", {ids[0]}, {"status": "rejected"})
    assert all(i["status"] == "rejected" for i in rejected["items"])
    bad = api.call("GET", "/v1/account-requests", "bob", params={"status": "nope"})
    assert bad.status_code == 422
    for cursor in ("%%%", "bm90LWEtdG9rZW4="):  # not base64; base64 but not Temporal's token
        resp = api.call("GET", "/v1/account-requests", "bob", params={"cursor": cursor})
        assert resp.status_code == 422, resp.text


def test_duplicate_name_or_email_is_a_conflict(api: Api, new_body: Body) -> None:
    body = new_body()
    assert api.create("alice", body).status_code == 201
    same_name = api.create("mallory", new_body(account_name=body["account_name"]))
    assert same_name.status_code == 409
    assert "account_name" in same_name.json()["detail"]
    same_email = api.create("mallory", new_body(account_email=body["account_email"].upper()))
    assert same_email.status_code == 409
    assert "account_email" in same_email.json()["detail"]


def test_existing_account_in_organizations_is_a_conflict(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    done = api.wait_for(api.create("alice", body).json()["id"], {"completed"})
    assert done["account_id"]
    # The request is closed, so only AWS Organizations knows the name and email are taken.
    name = api.create("alice", new_body(account_name=body["account_name"]))
    assert name.status_code == 409 and "already" in name.json()["detail"]
    email = api.create("alice", new_body(account_email=body["account_email"]))
    assert email.status_code == 409 and "already uses this email" in email.json()["detail"]
    # Another team may ask too: the answer does not tell them whose account it is.
    other = api.create("mallory", new_body(account_email=body["account_email"]))
    assert other.status_code == 409
    for refused in (name, email, other):
        assert done["account_id"] not in refused.text
        assert not re.search(r"\b\d{12}\b", refused.json()["detail"])


def test_idempotency_key_replays_the_first_answer(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body()
    key = {"Idempotency-Key": "k-" + body["account_name"]}
    first = api.create("alice", body, headers=key)
    again = api.create("alice", body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other_body = api.create("alice", new_body(), headers=key)
    assert other_body.status_code == 422
    assert "Idempotency-Key" in other_body.json()["detail"]
    # After the request has closed the key still answers the same request.
    api.act("bob", first.json()["id"], "reject", {"reason": "closing"})
    api.wait_for(first.json()["id"], {"rejected"})
    late = api.create("alice", body, headers=key)
    assert late.status_code == 201 and late.json()["id"] == first.json()["id"]
    # Another user's identical key is another request.
    mallory = api.create("mallory", new_body(), headers=key)
    assert mallory.status_code == 201 and mallory.json()["id"] != first.json()["id"]


def test_requester_cancels_before_the_account_exists(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body()
    req = api.create("alice", body).json()
    assert api.act("alice", req["id"], "cancel", {}).status_code == 422  # reason required
    cancelled = api.act("alice", req["id"], "cancel", {"reason": "not needed any more"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert api.act("alice", req["id"], "cancel", {"reason": "again"}).status_code == 409
    assert api.act("bob", req["id"], "approve", {}).status_code == 409
    assert sandbox.accounts_with_email(body["account_email"]) == []


def test_only_the_requester_or_an_operator_may_cancel(api: Api, new_body: Body) -> None:
    req = api.create("alice", new_body()).json()
    assert api.act("bob", req["id"], "cancel", {"reason": "x"}).status_code == 403
    by_operator = api.act("carol", req["id"], "cancel", {"reason": "duplicate of another"})
    assert by_operator.status_code == 200
    events = api.call("GET", f"/v1/account-requests/{req['id']}/events", "alice").json()["items"]
    assert ("carol", "cancel", "duplicate of another") in [
        (e["actor"], e["action"], e["detail"]) for e in events
    ]
