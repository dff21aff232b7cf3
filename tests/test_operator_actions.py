"""Operators: a step that failed for good is listed, inspected and retried or skipped with one
command each (``vend requests …``), and every action lands in the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typer.testing import CliRunner

from cli.main import app
from tests.conftest import Api, HttpEmulator, Sandbox, parked_request
from tests.waiting import eventually

Body = Callable[..., dict[str, Any]]
runner = CliRunner()


def _vend(api: Api, user: str, *args: str) -> Any:
    env = {"VEND_API_URL": str(api.http.base_url), "VEND_TOKEN": api.tokens[user]}
    return runner.invoke(app, ["requests", *args], env=env)


def _step(req: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in req["steps"] if s["name"] == name)


def test_operator_lists_inspects_and_retries_from_the_cli(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    req = parked_request(api, sandbox, body)

    listed = _vend(api, "carol", "list", "--status", "waiting_for_operator", "--limit", "100")
    assert listed.exit_code == 0, listed.output
    assert req["id"] in listed.output

    shown = _vend(api, "carol", "show", req["id"])
    assert shown.exit_code == 0, shown.output
    assert "ACCOUNT_LIMIT_EXCEEDED" in shown.output and "step:create_account" in shown.output

    denied = _vend(api, "alice", "retry", req["id"], "--step", "create_account")
    assert denied.exit_code == 1 and "403" in denied.output

    retried = _vend(
        api, "carol", "retry", req["id"], "--step", "create_account", "--reason", "quota raised"
    )
    assert retried.exit_code == 0, retried.output
    done = api.wait_for(req["id"], {"completed"})
    assert len(sandbox.accounts_with_email(body["account_email"])) == 1
    events = api.call("GET", f"/v1/account-requests/{done['id']}/events", "carol").json()["items"]
    assert ("carol", "retry", "step create_account: quota raised") in [
        (e["actor"], e["action"], e["detail"]) for e in events
    ]


def test_billing_can_be_skipped_with_a_reason_other_steps_cannot(
    api: Api, sandbox: Sandbox, sunnypay: HttpEmulator, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    sunnypay.fault(
        service="sunnypay",
        action="POST /v1/registrations",
        error="invalid",
        status=422,
        message="plan not offered",
        times=1,
    )
    req = api.create("alice", body).json()
    parked = api.wait_for(req["id"], {"waiting_for_operator"})
    assert _step(parked, "register_billing")["error"]["type"] == "BillingRequestInvalid"

    no_reason = api.act("carol", req["id"], "skip", {"step": "register_billing"})
    assert no_reason.status_code == 422
    assert (
        api.act("alice", req["id"], "skip", {"step": "register_billing", "reason": "x"}).status_code
        == 403
    )
    wrong = api.act("carol", req["id"], "skip", {"step": "create_account", "reason": "x"})
    assert wrong.status_code == 409

    skipped = _vend(
        api,
        "carol",
        "skip",
        req["id"],
        "--step",
        "register_billing",
        "--reason",
        "customer billed manually this month",
    )
    assert skipped.exit_code == 0, skipped.output
    done = api.wait_for(req["id"], {"completed"})
    step = _step(done, "register_billing")
    assert step["status"] == "skipped"
    assert "carol" in step["detail"] and "billed manually" in step["detail"]
    assert done["billing_registration_id"] is None


def test_a_step_not_marked_skippable_cannot_be_skipped(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    sandbox.fault(
        service="organizations", action="MoveAccount", error="AccessDeniedException", times=1
    )
    req = api.create("alice", body).json()
    api.wait_for(req["id"], {"waiting_for_operator"})
    resp = api.act("carol", req["id"], "skip", {"step": "move_to_ou", "reason": "x"})
    assert resp.status_code == 409
    assert "may not be skipped" in resp.json()["detail"]
    assert api.act("carol", req["id"], "retry", {"step": "move_to_ou"}).status_code == 202
    api.wait_for(req["id"], {"completed"})


def test_cancel_undoes_what_was_done_in_reverse_order(
    api: Api,
    sandbox: Sandbox,
    workload_security: HttpEmulator,
    sunnypay: HttpEmulator,
    new_body: Body,
) -> None:
    body = new_body(organizational_unit="Experiments/Full", environment="dev")
    sunnypay.fault(
        service="sunnypay",
        action="POST /v1/registrations",
        error="invalid",
        status=422,
        message="plan not offered",
    )
    req = api.create("alice", body).json()
    parked = api.wait_for(req["id"], {"waiting_for_operator"})
    account = parked["account_id"]
    assert _step(parked, "register_billing")["status"] == "failed"
    assert [c for c in workload_security.state()["connectors"] if c["accountId"] == account]
    assert sandbox.stack_instances("vend-audit-role", account)

    assert api.act("bob", req["id"], "cancel", {"reason": "x"}).status_code == 403
    cancelled = api.act("alice", req["id"], "cancel", {"reason": "project stopped"})
    assert cancelled.status_code == 200, cancelled.text
    done = api.wait_for(req["id"], {"cancelled"})
    done = eventually(
        lambda: api.get("alice", req["id"]).json(),
        lambda state: len(state["compensations"]) >= 3,
        "three compensations recorded",
    )
    steps = [(c["step"], c["status"]) for c in done["compensations"]]
    assert steps == [
        ("enroll_workload_security", "undone"),
        ("apply_baselines", "undone"),
        ("create_account", "undone"),
    ], done["compensations"]
    assert [c for c in workload_security.state()["connectors"] if c["accountId"] == account] == []
    assert sandbox.member_client(account, "ssm").list_associations()["Associations"] == []
    assert sandbox.stack_instances("vend-audit-role", account) == []
    assert sandbox.ou_path_of(account) == "Suspended"
    status = sandbox.org.describe_account(AccountId=account)["Account"]["State"]
    assert status in ("SUSPENDED", "PENDING_CLOSURE")
    assert sandbox.tags_of(account)["vending:status"] == "cancelled"
    events = api.call("GET", f"/v1/account-requests/{req['id']}/events", "alice").json()["items"]
    assert ("alice", "cancel", "project stopped") in [
        (e["actor"], e["action"], e["detail"]) for e in events
    ]
    assert [e["action"] for e in events if e["action"].startswith("undo:")] == [
        "undo:enroll_workload_security",
        "undo:apply_baselines",
        "undo:create_account",
    ]


def test_retry_with_another_email_when_aws_says_it_is_taken(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    sandbox.fail_creation(body["account_email"], "EMAIL_ALREADY_EXISTS")
    req = api.create("alice", body).json()
    parked = api.wait_for(req["id"], {"waiting_for_operator"})
    assert _step(parked, "create_account")["error"]["type"] == "EMAIL_ALREADY_EXISTS"

    other = new_body()["account_email"]
    live = api.create("erin", new_body(account_email=other.replace("@", "-live@")))
    assert live.status_code == 201
    taken = api.act(
        "carol",
        req["id"],
        "retry",
        {"step": "create_account", "account_email": live.json()["request"]["account_email"]},
    )
    assert taken.status_code == 409, taken.text  # another live request holds that email
    foreign = api.act(
        "carol", req["id"], "retry", {"step": "create_account", "account_email": "x@gmail.com"}
    )
    assert foreign.status_code == 422
    assert foreign.json()["errors"][0]["loc"] == ["body", "account_email"]

    retried = _vend(
        api, "carol", "retry", req["id"], "--step", "create_account", "--account-email", other
    )
    assert retried.exit_code == 0, retried.output
    done = api.wait_for(req["id"], {"completed"})
    assert done["request"]["account_email"] == other
    assert len(sandbox.accounts_with_email(other)) == 1
    assert sandbox.accounts_with_email(body["account_email"]) == []
    # The old email is free again for another request (its claim was released).
    again = api.create("alice", new_body(account_email=body["account_email"]))
    assert again.status_code == 201, again.text
    api.act("alice", again.json()["id"], "cancel", {"reason": "test done"})
    api.act("erin", live.json()["id"], "cancel", {"reason": "test done"})


def test_retry_into_another_ou_when_the_move_fails(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body(organizational_unit="Experiments/Ungoverned", environment="dev")
    sandbox.fault(
        service="organizations",
        action="MoveAccount",
        error="AccessDeniedException",
        message="explicit deny in a service control policy",
        times=1,
    )
    req = api.create("alice", body).json()
    parked = api.wait_for(req["id"], {"waiting_for_operator"})
    assert _step(parked, "move_to_ou")["error"]["type"] == "AccessDeniedException"

    def retry(ou: str) -> Any:
        return api.act(
            "carol", req["id"], "retry", {"step": "move_to_ou", "organizational_unit": ou}
        )

    assert retry("Nowhere/At/All").status_code == 422
    needs_more = retry("Workloads/SDLC")  # it needs an approval this request never had
    assert needs_more.status_code == 409
    assert "approvals" in needs_more.json()["detail"]
    email_on_move = api.act(
        "carol", req["id"], "retry", {"step": "move_to_ou", "account_email": "a@example.com"}
    )
    assert email_on_move.status_code == 409

    assert retry("Experiments/Auto").status_code == 202
    done = api.wait_for(req["id"], {"completed"})
    assert done["request"]["organizational_unit"] == "Experiments/Auto"
    assert sandbox.ou_path_of(done["account_id"]) == "Experiments/Auto"
    # Auto-enrolled, as that OU's policy (not the old one's) says.
    assert sandbox.control_tower()["enrolled_accounts"][done["account_id"]] == "SUCCEEDED"
    listed = api.wait_listed("carol", {req["id"]}, {"status": "completed"})
    assert listed


def test_the_list_says_what_matters_for_each_status(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    """A finished request shows its account, not the last step it ran; a parked one its
    failed step."""
    done = api.create("alice", new_body(organizational_unit="Sandbox", environment="sandbox"))
    finished = api.wait_for(done.json()["id"], {"completed"})
    parked = parked_request(
        api, sandbox, new_body(organizational_unit="Sandbox", environment="sandbox")
    )

    for status, request_id, expected in (
        ("completed", finished["id"], f"account {finished['account_id']}"),
        ("waiting_for_operator", parked["id"], "failed at create_account"),
    ):
        listed = eventually(  # visibility is eventually consistent
            lambda status=status: (
                _vend(  # type: ignore[misc]
                    api, "carol", "list", "--status", status, "--limit", "100"
                ).output
            ),
            lambda output, rid=request_id, want=expected: any(  # type: ignore[misc]
                rid in ln and want in ln for ln in output.splitlines()
            ),
            f"the CLI lists {request_id} as {status}",
            timeout=30,
        )
        line = next(ln for ln in listed.splitlines() if request_id in ln)
        assert line.endswith(expected), line
        assert "register_billing" not in line
