"""CreateAccount and MoveAccount failures: transient ones retry inside the step, final ones park
the request for an operator with AWS's reason, and nothing is ever created twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from common.temporal_client import workflow_id
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, Sandbox, kill_worker_when
from tests.waiting import wait_until

Body = Callable[..., dict[str, Any]]


def _auto(new_body: Body) -> dict[str, Any]:
    """A request for the auto-approved Sandbox OU: it starts provisioning at once."""
    return new_body(organizational_unit="Sandbox", environment="sandbox")


def _step(req: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in req["steps"] if s["name"] == name)


@pytest.mark.parametrize(
    "reason",
    ["ACCOUNT_LIMIT_EXCEEDED", "INVALID_EMAIL", "FAILED_BUSINESS_VALIDATION", "INVALID_ADDRESS"],
)
def test_final_failure_reasons_park_the_request(
    api: Api, sandbox: Sandbox, new_body: Body, reason: str
) -> None:
    body = _auto(new_body)
    sandbox.fail_creation(body["account_email"], reason)
    req = api.create("alice", body).json()
    parked = api.wait_for(req["id"], {"waiting_for_operator"})
    step = _step(parked, "create_account")
    assert step["status"] == "failed"
    assert step["error"]["type"] == reason
    assert reason in step["error"]["message"]
    assert step["attempts"] == 1  # final: not retried blindly
    assert parked["account_id"] is None
    assert sandbox.accounts_with_email(body["account_email"]) == []
    listed = api.wait_listed("carol", {req["id"]}, {"status": "waiting_for_operator"})
    assert all(i["status"] == "waiting_for_operator" for i in listed["items"])


def test_email_taken_after_submission_is_not_adopted(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body()  # SDLC: waits for one approval
    req = api.create("alice", body).json()
    # Someone else creates an account with that email before the approval arrives.
    sandbox.org.create_account(Email=body["account_email"], AccountName="someone-else")
    wait_until(
        lambda: bool(sandbox.accounts_with_email(body["account_email"])),
        "the other account created",
        timeout=10,
    )
    api.act("bob", req["id"], "approve", {})
    parked = api.wait_for(req["id"], {"waiting_for_operator"})
    error = _step(parked, "create_account")["error"]
    assert error["type"] == "EMAIL_ALREADY_EXISTS"
    # The requester learns the email is taken, not which account holds it (nor the address).
    (other,) = sandbox.accounts_with_email(body["account_email"])
    assert "already in use" in error["message"]
    assert other["Id"] not in error["message"] and body["account_email"] not in error["message"]
    assert len(sandbox.accounts_with_email(body["account_email"])) == 1  # only theirs


def test_retryable_failure_reason_retries_inside_the_step(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = _auto(new_body)
    sandbox.fail_creation(body["account_email"], "INTERNAL_FAILURE", times=1)
    req = api.create("alice", body).json()
    done = api.wait_for(req["id"], {"completed"})
    assert _step(done, "create_account")["attempts"] == 2
    assert len(sandbox.accounts_with_email(body["account_email"])) == 1
    states = [c["State"] for c in sandbox.creations_for(body["account_name"])]
    assert sorted(states) == ["FAILED", "SUCCEEDED"]


def test_throttling_never_reaches_the_operator(api: Api, sandbox: Sandbox, new_body: Body) -> None:
    body = _auto(new_body)
    sandbox.fault(
        service="organizations",
        action="CreateAccount",
        error="TooManyRequestsException",
        match=body["account_email"],
        times=3,
    )
    sandbox.fault(
        service="organizations", action="MoveAccount", error="ServiceException", status=500, times=2
    )
    req = api.create("alice", body).json()
    done = api.wait_for(req["id"], {"completed", "waiting_for_operator"})
    assert done["status"] == "completed", done
    assert len(sandbox.accounts_with_email(body["account_email"])) == 1
    assert sandbox.ou_path_of(done["account_id"]) == "Sandbox"


def test_operator_retries_a_failed_step_to_completion(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = _auto(new_body)
    sandbox.fail_creation(body["account_email"], "ACCOUNT_LIMIT_EXCEEDED", times=1)
    req = api.create("alice", body).json()
    api.wait_for(req["id"], {"waiting_for_operator"})
    assert api.act("alice", req["id"], "retry", {"step": "create_account"}).status_code == 403
    wrong = api.act("carol", req["id"], "retry", {"step": "move_to_ou"})
    assert wrong.status_code == 409 and "create_account" in wrong.json()["detail"]
    retried = api.act(
        "carol", req["id"], "retry", {"step": "create_account", "reason": "quota raised"}
    )
    assert retried.status_code == 202, retried.text
    done = api.wait_for(req["id"], {"completed"})
    assert _step(done, "create_account")["attempts"] == 2
    assert _step(done, "create_account")["error"] is None
    assert len(sandbox.accounts_with_email(body["account_email"])) == 1
    events = api.call("GET", f"/v1/account-requests/{req['id']}/events", "carol").json()["items"]
    assert ("carol", "retry") in [(e["actor"], e["action"]) for e in events]


def test_move_failure_parks_and_retry_does_not_create_again(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = _auto(new_body)
    sandbox.fault(
        service="organizations", action="MoveAccount", error="AccessDeniedException", times=1
    )
    req = api.create("alice", body).json()
    parked = api.wait_for(req["id"], {"waiting_for_operator"})
    assert _step(parked, "create_account")["status"] == "succeeded"
    assert _step(parked, "move_to_ou")["error"]["type"] == "AccessDeniedException"
    creates = sandbox.calls("CreateAccount")
    assert api.act("carol", req["id"], "retry", {"step": "move_to_ou"}).status_code == 202
    done = api.wait_for(req["id"], {"completed"})
    assert sandbox.calls("CreateAccount") == creates
    assert sandbox.ou_path_of(done["account_id"]) == "Sandbox"


def test_parked_request_without_account_can_be_cancelled(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = _auto(new_body)
    sandbox.fail_creation(body["account_email"], "INVALID_EMAIL")
    req = api.create("alice", body).json()
    api.wait_for(req["id"], {"waiting_for_operator"})
    cancelled = api.act("carol", req["id"], "cancel", {"reason": "wrong email"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert api.act("carol", req["id"], "retry", {"step": "create_account"}).status_code == 409


def test_worker_killed_mid_poll_resumes_without_a_second_account(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    body = _auto(new_body)
    sandbox.fault(
        service="organizations", action="CreateAccount", hold=True, match=body["account_email"]
    )
    creates_before = sandbox.calls("CreateAccount")
    req = api.create("alice", body).json()

    def creating() -> bool:
        return bool(sandbox.creations_for(body["account_name"]))

    # SIGKILL (no chance to clean up) while it polls DescribeCreateAccountStatus.
    kill_worker_when(stack, creating, "a held CreateAccount", workflow_id(req["id"]))
    assert sandbox.creations_for(body["account_name"])[0]["State"] == "IN_PROGRESS"
    assert sandbox.release() == 1

    done = api.wait_for(req["id"], {"completed"}, timeout=90)
    assert len(sandbox.accounts_with_email(body["account_email"])) == 1
    assert len(sandbox.creations_for(body["account_name"])) == 1
    assert sandbox.calls("CreateAccount") == creates_before + 1
    assert _step(done, "create_account")["attempts"] == 2
    assert sandbox.ou_path_of(done["account_id"]) == "Sandbox"
