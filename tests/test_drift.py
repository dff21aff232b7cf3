"""Drift: parts of managed accounts removed by hand are found, reported once, and repaired.

Two accounts are vended into an OU where every part exists (OU, Control Tower, a baseline
StackSet, Workload Security, billing); then a stack instance of one and the connector of the
other are deleted behind the engine's back, as someone in a console would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from temporalio.client import Client, ScheduleActionStartWorkflow

from activities.workload_security import WorkloadSecurityClient
from common import drift
from common.account_contract import account_workflow_id
from common.settings import WorkloadSecuritySettings
from tests.conftest import Api, EmbeddedStack, Sandbox, idle, vend_cli
from tests.waiting import eventually, wait_until

Body = Callable[..., dict[str, Any]]
OU = "Experiments/Full"
STACK_SET = "vend-audit-role"


def _until(ready: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    return eventually(ready, bool, what, timeout)


def _managed(api: Api, new_body: Body) -> str:
    created = api.create("alice", new_body(organizational_unit=OU, environment="dev"))
    assert created.status_code == 201, created.text
    done = api.wait_for(created.json()["id"], {"completed"}, timeout=180)
    account_id = str(done["account_id"])
    _until(lambda: _account(api, account_id).get("status") == "active", "managed")
    return account_id


def _account(api: Api, account_id: str) -> dict[str, Any]:
    resp = api.call("GET", f"/v1/accounts/{account_id}", "carol")
    return dict(resp.json()) if resp.status_code == 200 else {}


def _check(api: Api, account_ids: list[str], **extra: Any) -> dict[str, Any]:
    body = {"account_ids": account_ids, **extra}
    started = api.call("POST", "/v1/drift-checks", "carol", json=body)
    assert started.status_code == 201, started.text
    check_id = started.json()["id"]

    def finished() -> dict[str, Any] | None:
        view = api.call("GET", f"/v1/drift-checks/{check_id}", "carol").json()
        return view if view["status"] != "running" else None

    view: dict[str, Any] = _until(finished, "the drift check's end", timeout=120)
    assert view["status"] == "completed", view
    return view


def _drift_of(api: Api, account_id: str, checked_after: str | None) -> list[dict[str, Any]]:
    """The account's drift once the check's report has reached its record."""

    def reported() -> dict[str, Any] | None:
        account = _account(api, account_id)
        last = account.get("last_checked_at")
        return account if last and (checked_after is None or last > checked_after) else None

    return list(_until(reported, f"{account_id}'s drift report")["drift"])


def _notes(stack: EmbeddedStack, account_id: str) -> list[dict[str, Any]]:
    items = httpx.get(stack.config.webhook_url).json()["items"]
    return [
        i
        for i in items
        if i["event"] == "drift_detected" and i["request_id"].endswith(f":{account_id}")
    ]


def _listed(api: Api, ids: set[str], drifted: bool) -> None:
    def shown() -> bool:
        params = {"drifted": str(drifted).lower(), "organizational_unit": OU, "limit": 100}
        page = api.call("GET", "/v1/accounts", "carol", params=params).json()
        return ids <= {a["account_id"] for a in page["items"]}

    _until(shown, f"{ids} listed with drifted={drifted}", timeout=30)


def _repair(api: Api, account_id: str) -> dict[str, Any]:
    body = {"justification": "put back what was deleted by hand"}
    resp = api.call("POST", f"/v1/accounts/{account_id}/repair", "alice", json=body)
    assert resp.status_code == 201, resp.text
    return api.wait_for(resp.json()["id"], {"completed"}, timeout=180)


def _cli(api: Api, *args: str) -> Any:
    return vend_cli(api, "carol", "accounts", *args)


def _ran(done: dict[str, Any]) -> list[str]:
    return [s["name"] for s in done["steps"] if s["status"] == "succeeded"]


def test_deleted_stack_instance_and_connector_are_found_reported_once_and_repaired(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    first, second = _managed(api, new_body), _managed(api, new_body)
    ids = [first, second]
    clean = _check(api, ids)
    assert clean["result"]["checked"] == 2 and clean["result"]["drifted"] == 0, clean
    assert _drift_of(api, first, None) == [] and _drift_of(api, second, None) == []
    before = _account(api, first)["last_checked_at"]

    # By hand: the first account's baseline instance, the second's connector.
    cfn = sandbox.client("cloudformation")
    cfn.delete_stack_instances(
        StackSetName=STACK_SET, Accounts=[first], Regions=["us-east-1"], RetainStacks=False
    )
    _until(lambda: not sandbox.stack_instances(STACK_SET, first), "the instance deleted")
    ws = WorkloadSecurityClient(
        WorkloadSecuritySettings(
            base_url=f"{stack.config.ws_url}/api", api_key=stack.secrets["ws_api_key"]
        )
    )
    connector = _account(api, second)["workload_security"]["connector_id"]
    ws.request("DELETE", f"awsconnectors/{connector}")

    found = _check(api, ids)
    assert found["result"]["drifted"] == 2, found["result"]
    assert found["result"]["by_kind"] == {"stack_instance": 1, "workload_security_connector": 1}
    drift_1 = _drift_of(api, first, before)
    drift_2 = _drift_of(api, second, before)
    assert [(d["what"], d["expected"], d["found"]) for d in drift_1] == [
        (f"stack_instance:{STACK_SET}/us-east-1", "CURRENT", "missing")
    ]
    assert [(d["what"], d["found"]) for d in drift_2] == [
        ("workload_security_connector", "missing")
    ]
    _listed(api, set(ids), drifted=True)
    _until(lambda: len(_notes(stack, first)) == 1 and len(_notes(stack, second)) == 1, "notes")
    assert f"stack_instance:{STACK_SET}/us-east-1" in _notes(stack, first)[0]["error"]

    # Found again the next day (asked from the command line): the same drift, since the same
    # time, not told twice.
    after_first = _account(api, first)["last_checked_at"]
    checked_cli = _cli(api, "check-drift", "--account", first, "--account", second)
    assert checked_cli.exit_code == 0, checked_cli.output
    assert "checked 2, drifted 2 (stack_instance 1, workload_security_connector 1)" in (
        checked_cli.output
    )
    again = _drift_of(api, first, after_first)
    shown = _cli(api, "show", first)
    assert f"stack_instance:{STACK_SET}/us-east-1: expected CURRENT, found missing" in shown.output
    assert again == drift_1
    # Each account's workflow has nothing pending: a second notification, were one sent,
    # would be in the sink by now.
    for account in (first, second):
        wait_until(lambda a=account: idle(stack, account_workflow_id(a)), f"{account} at rest")
    assert len(_notes(stack, first)) == 1 and len(_notes(stack, second)) == 1

    # Repair runs only the steps that put the drifted part back.
    repaired_1, repaired_2 = _repair(api, first), _repair(api, second)
    assert _ran(repaired_1) == ["apply_baselines"], repaired_1["steps"]
    assert _ran(repaired_2) == ["enroll_workload_security"], repaired_2["steps"]
    assert [i["Status"] for i in sandbox.stack_instances(STACK_SET, first)] == ["CURRENT"]
    search = {
        "searchCriteria": [{"fieldName": "accountId", "stringValue": second, "stringTest": "equal"}]
    }
    assert len(ws.request("POST", "awsconnectors/search", json=search)["awsConnectors"]) == 1

    # A completed repair has the account looked at again at once: the drift is gone.
    _until(
        lambda: _account(api, first)["drift"] == [] and _account(api, second)["drift"] == [],
        "the look after the repairs",
    )
    checked = _account(api, first)["last_checked_at"]
    clean_again = _check(api, ids)
    assert clean_again["result"]["drifted"] == 0, clean_again
    assert _drift_of(api, first, checked) == [] and _drift_of(api, second, checked) == []
    _listed(api, set(ids), drifted=False)
    nothing = api.call("POST", f"/v1/accounts/{first}/repair", "alice", json={"justification": "x"})
    assert nothing.status_code == 409, nothing.text


def test_a_baseline_resource_changed_by_hand_is_found_by_detection_and_replaced(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    """DetectStackSetDrift, not just the instance's status: the stack instance is still there and
    CURRENT, but someone widened its role's trust policy in the console. An update with the same
    template would leave that in place, so the repair replaces the instance."""
    account = _managed(api, new_body)
    iam = sandbox.member_client(account, "iam")
    trust = iam.get_role(RoleName="VendSecurityAudit")["Role"]["AssumeRolePolicyDocument"]
    widened = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
        ],
    }
    iam.update_assume_role_policy(RoleName="VendSecurityAudit", PolicyDocument=json.dumps(widened))

    # Without a detection the instance says nothing: CURRENT, drift not checked.
    unseen = _check(api, [account])
    assert unseen["result"]["drifted"] == 0 and unseen["result"]["detections"] == [], unseen
    found = _check(api, [account], detect_stack_set_drift=True)
    detections = {d["stack_set"]: d["status"] for d in found["result"]["detections"]}
    assert detections[STACK_SET] == "SUCCEEDED", found["result"]
    assert found["result"]["by_kind"] == {"stack_instance": 1}, found["result"]
    drift_found = _account(api, account)["drift"]
    assert [(d["what"], d["found"]) for d in drift_found] == [
        (f"stack_instance:{STACK_SET}/us-east-1", "DRIFTED")
    ]

    repaired = _repair(api, account)
    assert _ran(repaired) == ["apply_baselines"], repaired["steps"]
    restored = iam.get_role(RoleName="VendSecurityAudit")["Role"]["AssumeRolePolicyDocument"]
    assert restored == trust and restored != widened
    (instance,) = sandbox.stack_instances(STACK_SET, account)
    assert (instance["Status"], instance["DriftStatus"]) == ("CURRENT", "NOT_CHECKED")
    _until(lambda: _account(api, account)["drift"] == [], "the look after the repair")
    clean = _cli(api, "check-drift", "--account", account, "--detect")
    assert clean.exit_code == 0, clean.output
    assert "checked 1, drifted 0" in clean.output, clean.output
    assert f"DetectStackSetDrift {STACK_SET}: SUCCEEDED" in clean.output, clean.output


def test_a_connector_role_deployed_by_a_baseline_is_not_drifted_after_enrollment(
    api: Api, new_body: Body
) -> None:
    """Infrastructure deploys Workload Security's role by a StackSet and enrolls the account: the
    engine connects with that role as deployed (the landing zone states the tenant's external
    id), so the check finds nothing; had the engine rewritten the role's trust, the instance
    would be DRIFTED from the day it was vended."""
    created = api.create("alice", new_body(organizational_unit="Infrastructure", environment="dev"))
    assert created.status_code == 201, created.text
    assert api.act("bob", created.json()["id"], "approve", {}).status_code == 200
    done = api.wait_for(created.json()["id"], {"completed"}, timeout=180)
    account_id = str(done["account_id"])
    _until(lambda: _account(api, account_id).get("status") == "active", "managed")
    checked = _check(api, [account_id], detect_stack_set_drift=True)
    assert checked["result"]["checked"] == 1 and checked["result"]["drifted"] == 0, checked


async def test_drift_checks_are_for_operators_and_the_schedule_exists(
    api: Api, stack: EmbeddedStack
) -> None:
    refused = api.call("POST", "/v1/drift-checks", "alice", json={})
    assert refused.status_code == 403
    bad = api.call("POST", "/v1/drift-checks", "carol", json={"account_ids": ["nope"]})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert api.call("GET", "/v1/drift-checks/not-an-id", "carol").status_code == 404
    client = await Client.connect(stack.config.temporal_address)
    described = await client.get_schedule_handle(drift.SCHEDULE_ID).describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == drift.WORKFLOW
    assert not described.schedule.state.paused  # on by default, daily
    assert described.schedule.spec.intervals[0].every == timedelta(days=1)
