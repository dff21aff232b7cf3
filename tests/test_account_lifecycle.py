"""The inventory and the decommission: a vended account becomes a managed account, and a
decommission takes back what the vend gave it and closes it, in the close quota's order."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.stack_set_batches import BATCHER_ID
from common.temporal_client import workflow_id
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, HttpEmulator, Sandbox, kill_worker_when, resumed, vend_cli
from tests.waiting import eventually, wait_until
from workflows.coordinator import COORDINATOR_ID

Body = Callable[..., dict[str, Any]]


def _account(api: Api, account_id: str, user: str = "alice") -> dict[str, Any]:
    resp = api.call("GET", f"/v1/accounts/{account_id}", user)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _wait_account(
    api: Api, account_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    found = eventually(
        lambda: _account_or_none(api, account_id),
        lambda found: found is not None and found["status"] in statuses,
        f"account {account_id} {statuses}",
        timeout,
    )
    assert found is not None
    return found


def _account_or_none(api: Api, account_id: str) -> dict[str, Any] | None:
    resp = api.call("GET", f"/v1/accounts/{account_id}", "carol")
    return dict(resp.json()) if resp.status_code == 200 else None


def _as_planned(done: dict[str, Any]) -> None:
    """The request did what its plan said: the same steps ran, the same were skipped."""
    planned = [(s["name"], s["runs"], s["reason"]) for s in done["plan"]["steps"]]
    ran = [
        (s["name"], s["status"] != "skipped", s["detail"] if s["status"] == "skipped" else None)
        for s in done["steps"]
    ]
    assert planned == ran, (planned, ran)


def _vend(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    created = api.create("alice", body)
    assert created.status_code == 201, created.text
    return api.wait_for(created.json()["id"], {"completed"}, timeout=120)


def _managed(api: Api, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Vend ``body`` (an OU that needs no approval) and wait until the inventory has it."""
    vend = _vend(api, body)
    _wait_account(api, vend["account_id"], {"active"})
    return vend, str(vend["account_id"])


def _decommission(api: Api, account_id: str, name: str, user: str = "alice") -> dict[str, Any]:
    body = {"kind": "decommission", "justification": "project ended", "confirm_account_name": name}
    resp = api.call("POST", f"/v1/accounts/{account_id}/changes", user, json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_a_vended_account_is_managed_and_a_decommission_closes_it_leaving_nothing_behind(
    api: Api,
    sandbox: Sandbox,
    new_body: Body,
    workload_security: HttpEmulator,
    sunnypay: HttpEmulator,
) -> None:
    body = new_body(organizational_unit="Experiments/Full", environment="dev")
    vend = _vend(api, body)
    account_id = vend["account_id"]

    account = _wait_account(api, account_id, {"active"})
    assert account["account_name"] == body["account_name"]
    assert account["organizational_unit"] == "Experiments/Full"
    assert account["requests"] == [vend["id"]]
    assert account["workload_security"]["connector_id"] == vend["workload_security_connector_id"]
    assert account["billing"]["registration_id"] == vend["billing_registration_id"]
    assert [b["stack_set"] for b in account["baselines"]] == ["vend-audit-role"]
    # Listed, filtered, and hidden from another requester.
    eventually(
        lambda: api.call(
            "GET", "/v1/accounts", "alice", params={"organizational_unit": "Experiments/Full"}
        ).json(),
        lambda page: account_id in {a["account_id"] for a in page["items"]},
        "the managed account listed in its OU",
        timeout=15,
    )
    mallory = api.call("GET", "/v1/accounts", "mallory", params={"limit": 100}).json()
    assert account_id not in {a["account_id"] for a in mallory["items"]}
    assert api.call("GET", f"/v1/accounts/{account_id}", "mallory").status_code == 404

    # The typed confirmation must be the account's name.
    wrong = api.call(
        "POST",
        f"/v1/accounts/{account_id}/changes",
        "alice",
        json={"kind": "decommission", "justification": "x", "confirm_account_name": "nope"},
    )
    assert wrong.status_code == 422 and "confirm_account_name" in wrong.text

    change = _decommission(api, account_id, body["account_name"])
    assert change["kind"] == "decommission" and change["account_id"] == account_id
    assert change["status"] == "pending_approval"  # closing is never automatic
    assert [s["name"] for s in change["steps"]] == [
        "quarantine",
        "end_billing",
        "remove_access",
        "delete_budget",
        "remove_workload_security",
        "remove_baselines",
        "unmanage_control_tower",
        "close_account",
    ]
    assert api.act("bob", change["id"], "approve", {}).status_code == 200
    done = api.wait_for(change["id"], {"completed"}, timeout=120)
    by_name = {s["name"]: s for s in done["steps"]}
    assert by_name["close_account"]["status"] == "succeeded"
    assert by_name["unmanage_control_tower"]["status"] == "skipped"

    # The sandbox shows it closed, parked, with nothing left.
    described = sandbox.org.describe_account(AccountId=account_id)["Account"]
    assert described["State"] == "SUSPENDED"
    assert "Status" not in described  # retired, as on AWS: the engine read State throughout
    assert sandbox.ou_path_of(account_id) == "Suspended"
    assert sandbox.stack_instances("vend-audit-role", account_id) == []
    connectors = workload_security.state().get("connectors", [])
    assert not [c for c in connectors if str(c.get("accountId")) == account_id]
    registrations = sunnypay.state()["registrations"]
    mine = [r for r in registrations if r["aws_account_id"] == account_id]
    assert mine and all(r["deleted"] for r in mine), mine

    closed = _wait_account(api, account_id, {"closed"})
    assert closed["requests"] == [change["id"], vend["id"]]
    assert closed["organizational_unit"] == "Suspended"
    assert closed["workload_security"] is None and closed["baselines"] == []
    trail = api.call("GET", f"/v1/accounts/{account_id}/events", "alice").json()["items"]
    assert {e["request_id"] for e in trail} >= {vend["id"], change["id"]}
    assert any(e["action"] == "step:close_account" for e in trail)
    # A closed account takes no more changes.
    again = api.call(
        "POST",
        f"/v1/accounts/{account_id}/changes",
        "alice",
        json={
            "kind": "decommission",
            "justification": "again",
            "confirm_account_name": body["account_name"],
        },
    )
    assert again.status_code == 409


def test_a_decommission_cancelled_before_closing_puts_the_account_back(
    api: Api, sandbox: Sandbox, new_body: Body, sunnypay: HttpEmulator
) -> None:
    body = new_body(organizational_unit="Experiments/Full", environment="dev")
    vend, account_id = _managed(api, body)
    # Removing the baselines fails for good: the request parks before close_account.
    sandbox.fault(
        service="cloudformation",
        action="DeleteStackInstances",
        error="AccessDeniedException",
        status=403,
        message="not allowed",
        match=account_id,
    )
    change = _decommission(api, account_id, body["account_name"])
    api.act("bob", change["id"], "approve", {})
    parked = api.wait_for(change["id"], {"waiting_for_operator"}, timeout=120)
    failed = next(s for s in parked["steps"] if s["status"] == "failed")
    assert failed["name"] == "remove_baselines"
    assert sandbox.ou_path_of(account_id) == "Suspended"  # quarantined meanwhile
    sandbox.clear_faults()

    cancelled = api.act("alice", change["id"], "cancel", {"reason": "keep it"})
    assert cancelled.status_code == 200, cancelled.text
    final = api.wait_for(change["id"], {"cancelled"}, timeout=120)
    final = eventually(
        lambda: api.get("alice", change["id"]).json(),
        lambda state: len(state["compensations"]) >= 4,
        "four compensations recorded",
    )
    undone = [(c["step"], c["status"]) for c in final["compensations"]]
    assert undone == [  # newest first: the failed step may have half-done its work
        ("remove_baselines", "undone"),
        ("remove_workload_security", "undone"),
        ("end_billing", "undone"),
        ("quarantine", "undone"),
    ], undone
    assert sandbox.ou_path_of(account_id) == "Experiments/Full"
    assert sandbox.org.describe_account(AccountId=account_id)["Account"]["State"] == "ACTIVE"
    account = _wait_account(api, account_id, {"active"})
    assert account["current_change"] is None
    registration = account["billing"]["registration_id"]
    assert registration and registration != vend["billing_registration_id"]
    active = [
        r
        for r in sunnypay.state()["registrations"]
        if r["aws_account_id"] == account_id and not r["deleted"]
    ]
    assert [r["registration_id"] for r in active] == [registration]


def test_an_account_factory_account_is_unmanaged_before_it_is_closed(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body(organizational_unit="Experiments/Factory", environment="dev")
    _, account_id = _managed(api, body)
    sc = sandbox.client("servicecatalog")

    def products() -> list[dict[str, Any]]:
        found = sc.search_provisioned_products(
            Filters={"SearchQuery": [f"physicalId:{account_id}"]}
        )["ProvisionedProducts"]
        return [p for p in found if p["PhysicalId"] == account_id]

    assert [p["Status"] for p in products()] == ["AVAILABLE"]

    # Service Catalog refuses the termination: the request parks with its reason, and a cancel
    # finds the account still managed and puts it home.
    sandbox.fault(
        service="servicecatalog",
        action="TerminateProvisionedProduct",
        failure_reason="Stack DELETE_FAILED: a resource is protected",
        times=1,
    )
    change = _decommission(api, account_id, body["account_name"])
    api.act("bob", change["id"], "approve", {})
    parked = api.wait_for(change["id"], {"waiting_for_operator"}, timeout=120)
    failed = next(s for s in parked["steps"] if s["status"] == "failed")
    assert failed["name"] == "unmanage_control_tower"
    assert "a resource is protected" in failed["error"]["message"]
    assert api.act("alice", change["id"], "cancel", {"reason": "keep it"}).status_code == 200
    final = api.wait_for(change["id"], {"cancelled"}, timeout=120)
    final = eventually(
        lambda: api.get("alice", change["id"]).json(),
        lambda state: len(state["compensations"]) >= 5,
        "five compensations recorded",
    )
    assert final["compensations"][0]["step"] == "unmanage_control_tower"
    assert all(c["status"] == "undone" for c in final["compensations"]), final["compensations"]
    assert sandbox.ou_path_of(account_id) == "Experiments/Factory"
    assert sandbox.control_tower()["enrolled_accounts"][account_id] == "SUCCEEDED"
    _wait_account(api, account_id, {"active"})

    # Decommissioned for real: terminated (one product, one termination), back in quarantine
    # from the Root where Control Tower leaves it, then closed.
    change = _decommission(api, account_id, body["account_name"])
    api.act("bob", change["id"], "approve", {})
    done = api.wait_for(change["id"], {"completed"}, timeout=120)
    unmanage = next(s for s in done["steps"] if s["name"] == "unmanage_control_tower")
    assert unmanage["status"] == "succeeded" and "unmanaged by record" in unmanage["detail"]
    _as_planned(done)
    assert products() == []
    assert account_id not in sandbox.control_tower()["enrolled_accounts"]
    assert sandbox.ou_path_of(account_id) == "Suspended"
    assert sandbox.org.describe_account(AccountId=account_id)["Account"]["State"] == "SUSPENDED"


def test_cancel_is_refused_once_close_account_has_started(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    _, account_id = _managed(api, body)
    sandbox.fault(
        service="organizations",
        action="CloseAccount",
        error="AccessDeniedException",
        status=403,
        message="not allowed",
        match=account_id,
    )
    change = _decommission(api, account_id, body["account_name"])
    api.act("bob", change["id"], "approve", {})
    parked = api.wait_for(change["id"], {"waiting_for_operator"}, timeout=120)
    assert next(s for s in parked["steps"] if s["status"] == "failed")["name"] == "close_account"
    refused = api.act("alice", change["id"], "cancel", {"reason": "changed my mind"})
    assert refused.status_code == 409 and "close_account has started" in refused.text
    sandbox.clear_faults()
    assert api.act("carol", change["id"], "retry", {"step": "close_account"}).status_code == 202
    api.wait_for(change["id"], {"completed"}, timeout=120)
    assert sandbox.org.describe_account(AccountId=account_id)["Account"]["State"] == "SUSPENDED"


@pytest.mark.timeout(600)
def test_past_the_close_quota_decommissions_wait_in_order_and_none_fails(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    """The sandbox allows 2 closures per window: 6 decommissions all finish, the later ones
    queued with a position that only ever moves forward (first come, first served). The queue's
    rules (the window, AWS refusing anyway, the order) are specified in
    tests/workflows/test_close_quota.py; this is the same through every real part."""
    bodies = [new_body(organizational_unit="Sandbox", environment="sandbox") for _ in range(6)]
    created = [api.create("alice", b).json()["id"] for b in bodies]
    vends = [api.wait_for(rid, {"completed"}, timeout=240) for rid in created]
    sandbox.configure(close_quota=2)
    try:
        changes = []
        for body, vend in zip(bodies, vends, strict=True):
            _wait_account(api, vend["account_id"], {"active"})
            change = _decommission(api, vend["account_id"], body["account_name"])
            assert api.act("bob", change["id"], "approve", {}).status_code == 200
            changes.append(change["id"])
        positions: dict[str, list[int]] = {rid: [] for rid in changes}
        closed_at: dict[str, str] = {}

        def observed_all_closed() -> bool:
            for rid in changes:
                if rid in closed_at:
                    continue
                state = api.get("carol", rid).json()
                assert state["status"] not in ("waiting_for_operator", "cancelled"), state
                step = next(s for s in state["steps"] if s["name"] == "close_account")
                if step["queue_position"]:
                    positions[rid].append(step["queue_position"])
                if state["status"] == "completed":
                    closed_at[rid] = step["finished_at"]
            return len(closed_at) == len(changes)

        wait_until(observed_all_closed, "every decommission closed its account", timeout=480)
        waited = [p for p in positions.values() if p]
        assert len(waited) >= 3, "the ones past the quota should show their place in line"
        for seen in waited:  # nobody is overtaken: a place in line only moves forward
            assert seen == sorted(seen, reverse=True), seen
    finally:
        sandbox.configure(close_quota=None)


def _delete_operations(sandbox: Sandbox, account_id: str) -> int:
    """DeleteStackInstances operations that reached this account (other tests' requests may be
    deleting instances of the same StackSet meanwhile)."""
    cfn = sandbox.client("cloudformation")
    ops = cfn.list_stack_set_operations(StackSetName="vend-audit-role")["Summaries"]
    return sum(
        1
        for op in ops
        if op["Action"] == "DELETE"
        and any(
            r["Account"] == account_id
            for r in cfn.list_stack_set_operation_results(
                StackSetName="vend-audit-role", OperationId=op["OperationId"]
            )["Summaries"]
        )
    )


def _step_of(api: Api, request_id: str, name: str) -> dict[str, Any]:
    state = api.get("carol", request_id).json()
    return dict(next(s for s in state["steps"] if s["name"] == name))


def test_a_worker_killed_mid_remove_baselines_and_mid_close_account_leaves_one_of_each(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    body = new_body(organizational_unit="Experiments/Full", environment="dev")
    _, account_id = _managed(api, body)
    sandbox.fault(
        service="cloudformation", action="DeleteStackInstances", hold=True, match=account_id
    )
    before = {a: sandbox.calls(a) for a in ("CloseAccount", "MoveAccount")}
    deletes = _delete_operations(sandbox, account_id)
    change = _decommission(api, account_id, body["account_name"])
    api.act("bob", change["id"], "approve", {})

    def deleting() -> bool:
        held = sandbox.state()["held"]["cloudformation"] >= 1
        return held and _step_of(api, change["id"], "remove_baselines")["status"] == "running"

    flow = workflow_id(change["id"])
    killed = kill_worker_when(stack, deleting, "a held DeleteStackInstances", flow)
    resumed(stack, killed, "remove_baselines")  # while AWS still deletes
    sandbox.clear_faults()
    assert sandbox.release() >= 1
    sandbox.configure(close_account_seconds=6)  # long enough to kill the worker inside it
    try:

        def closing() -> bool:
            status = sandbox.org.describe_account(AccountId=account_id)["Account"]["State"]
            return status == "PENDING_CLOSURE"

        kill_worker_when(stack, closing, "PENDING_CLOSURE", flow)
        done = api.wait_for(change["id"], {"completed"}, timeout=120)
    finally:
        sandbox.configure(close_account_seconds=1)
    assert sandbox.org.describe_account(AccountId=account_id)["Account"]["State"] == "SUSPENDED"
    assert sandbox.calls("CloseAccount") - before["CloseAccount"] == 1
    assert sandbox.calls("MoveAccount") - before["MoveAccount"] == 1  # the quarantine, once
    # One deletion: the resumed attempt waited for it (AWS refuses a second one while it runs).
    assert _delete_operations(sandbox, account_id) - deletes == 1
    assert sandbox.stack_instances("vend-audit-role", account_id) == []
    assert next(s for s in done["steps"] if s["name"] == "close_account")["attempts"] >= 1


def _create_operations(sandbox: Sandbox, stack_set: str, account_id: str) -> int:
    cfn = sandbox.client("cloudformation")
    ops = cfn.list_stack_set_operations(StackSetName=stack_set)["Summaries"]
    creates = [op for op in ops if op["Action"] == "CREATE"]
    mine = 0
    for op in creates:
        results = cfn.list_stack_set_operation_results(
            StackSetName=stack_set, OperationId=op["OperationId"]
        )["Summaries"]
        mine += any(r["Account"] == account_id for r in results)
    return mine


def test_a_worker_killed_mid_an_ou_move_moves_enrolls_and_deploys_once(
    api: Api,
    sandbox: Sandbox,
    stack: EmbeddedStack,
    new_body: Body,
    workload_security: HttpEmulator,
) -> None:
    """SDLC to Infrastructure: move, re-enroll through the new OU, deploy its extra baseline,
    protect. The worker dies while Control Tower re-enrolls and again while the baseline
    deploys; each AWS operation still happens once."""
    body = new_body(organizational_unit="Workloads/SDLC", environment="dev")
    body["workload_security"] = {"enabled": False}  # Infrastructure's StackSet makes the role
    created = api.create("alice", body).json()
    api.act("bob", created["id"], "approve", {})
    account_id = api.wait_for(created["id"], {"completed"}, timeout=120)["account_id"]
    _wait_account(api, account_id, {"active"})
    moves = sandbox.calls("MoveAccount")
    resets_before = len(_resets_of(sandbox, account_id))
    sandbox.fault(
        service="controltower", action="ResetEnabledBaseline", hold=True, match=account_id
    )
    sandbox.fault(
        service="cloudformation", action="CreateStackInstances", hold=True, match=account_id
    )
    change = api.call(
        "POST",
        f"/v1/accounts/{account_id}/changes",
        "alice",
        json={
            "kind": "update",
            "justification": "infra",
            "organizational_unit": "Infrastructure",
            "workload_security": {"enabled": True},  # Infrastructure requires it
        },
    )
    assert change.status_code == 201, change.text
    change_id = change.json()["id"]
    api.act("bob", change_id, "approve", {})

    def held(service: str, step: str) -> Callable[[], bool]:
        def ready() -> bool:
            if sandbox.state()["held"][service] < 1:
                return False
            return _step_of(api, change_id, step)["status"] == "running"

        return ready

    flow = workflow_id(change_id)
    killed = kill_worker_when(
        stack, held("controltower", "enroll_control_tower"), "a held reset", flow, COORDINATOR_ID
    )
    resumed(stack, killed, "enroll_control_tower")  # while AWS still works
    assert sandbox.release() >= 1
    killed = kill_worker_when(
        stack, held("cloudformation", "apply_baselines"), "a held deployment", flow, BATCHER_ID
    )
    resumed(stack, killed, "apply_baselines")
    sandbox.clear_faults()
    assert sandbox.release() >= 1
    done = api.wait_for(change_id, {"completed"}, timeout=120)
    _as_planned(done)

    assert sandbox.calls("MoveAccount") - moves == 1
    assert sandbox.ou_path_of(account_id) == "Infrastructure"
    assert len(_resets_of(sandbox, account_id)) - resets_before == 1
    assert sandbox.control_tower()["enrolled_accounts"][account_id] == "SUCCEEDED"
    assert _create_operations(sandbox, "vend-workload-security-role", account_id) == 1
    for stack_set in ("vend-audit-role", "vend-workload-security-role"):
        instances = sandbox.stack_instances(stack_set, account_id)
        assert [i["Status"] for i in instances] == ["CURRENT"], (stack_set, instances)
    connectors = workload_security.state().get("connectors", [])
    assert len([c for c in connectors if str(c.get("accountId")) == account_id]) == 1
    account = _wait_account(api, account_id, {"active"})
    assert account["organizational_unit"] == "Infrastructure"


def _resets_of(sandbox: Sandbox, account_id: str) -> list[dict[str, Any]]:
    return [
        op
        for op in sandbox.control_tower()["operations"]
        if op["type"] == "RESET_ENABLED_BASELINE" and account_id in op["accounts"]
    ]


def _account_made_outside_the_engine(sandbox: Sandbox, new_body: Body) -> tuple[str, str, str]:
    name = new_body()["account_name"]
    return sandbox.new_account(name), name, f"aws+{name}@example.com"


def _adopt(api: Api, new_body: Body, account_id: str, name: str, email: str) -> Any:
    body = new_body(organizational_unit="Experiments/Full", environment="dev")
    body.update(account_id=account_id, account_name=name, account_email=email)
    return api.call("POST", "/v1/accounts/adopt", "carol", json=body)


def test_an_account_made_outside_the_engine_is_adopted_and_ends_as_a_vended_one(
    api: Api, sandbox: Sandbox, new_body: Body, workload_security: HttpEmulator
) -> None:
    account_id, name, email = _account_made_outside_the_engine(sandbox, new_body)
    # Requesters may not adopt; a mistyped name is refused with the field.
    body = new_body(organizational_unit="Experiments/Full", environment="dev")
    body.update(account_id=account_id, account_name=name, account_email=email)
    assert api.call("POST", "/v1/accounts/adopt", "alice", json=body).status_code == 403
    wrong = _adopt(api, new_body, account_id, "someone-else", email)
    assert wrong.status_code == 422 and "account_name" in wrong.text, wrong.text

    resp = _adopt(api, new_body, account_id, name, email)
    assert resp.status_code == 201, resp.text
    adopted = resp.json()
    assert adopted["kind"] == "adopt" and adopted["account_id"] == account_id
    assert [s["name"] for s in adopted["steps"]][:2] == ["verify_access", "move_to_ou"]
    # From the Root into an OU that needs none: adopting is still never automatic.
    assert adopted["status"] == "pending_approval" and adopted["approvals_remaining"] == 1
    assert api.act("bob", adopted["id"], "approve", {}).status_code == 200
    done = api.wait_for(adopted["id"], {"completed"}, timeout=120)
    _as_planned(done)
    ran = {s["name"]: s["status"] for s in done["steps"] if s["status"] != "skipped"}
    assert ran == {  # Experiments/Full applies no account settings
        "verify_access": "succeeded",
        "move_to_ou": "succeeded",
        "enroll_control_tower": "succeeded",
        "apply_baselines": "succeeded",
        "enroll_workload_security": "succeeded",
        "register_billing": "succeeded",
    }
    assert sandbox.ou_path_of(account_id) == "Experiments/Full"
    assert sandbox.stack_instances("vend-audit-role", account_id)
    connectors = workload_security.state()["connectors"]
    assert [c for c in connectors if str(c["accountId"]) == account_id]
    account = _wait_account(api, account_id, {"active"})
    assert account["requests"] == [adopted["id"]]
    assert account["billing"]["status"] == "active"
    # Nothing was created, and the account cannot be adopted twice.
    assert not [c for c in sandbox.state()["creations"] if c["AccountName"] == name][1:]
    again = _adopt(api, new_body, account_id, name, email)
    assert again.status_code == 409, again.text


def test_adopting_an_account_without_its_execution_role_parks_with_what_to_create(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    account_id, name, email = _account_made_outside_the_engine(sandbox, new_body)
    iam = sandbox.member_client(account_id, "iam")  # these credentials outlive the role
    role = "OrganizationAccountAccessRole"
    for policy in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
    document = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    iam.delete_role(RoleName=role)

    resp = _adopt(api, new_body, account_id, name, email)
    assert resp.status_code == 201, resp.text
    assert api.act("bob", resp.json()["id"], "approve", {}).status_code == 200
    parked = api.wait_for(resp.json()["id"], {"waiting_for_operator"}, timeout=60)
    failed = next(s for s in parked["steps"] if s["status"] == "failed")
    assert failed["name"] == "verify_access"
    assert failed["error"]["type"] == "ExecutionRoleMissing"
    assert role in failed["error"]["message"]
    assert sandbox.ou_path_of(account_id) == ""  # nothing was touched: still at the root

    iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=document if isinstance(document, str) else json.dumps(document),
    )
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    retried = api.act("carol", resp.json()["id"], "retry", {"step": "verify_access"})
    assert retried.status_code == 202, retried.text
    api.wait_for(resp.json()["id"], {"completed"}, timeout=120)


def _change(api: Api, account_id: str, body: dict[str, Any], user: str = "alice") -> Any:
    return api.call("POST", f"/v1/accounts/{account_id}/changes", user, json=body)


def test_vend_move_to_prod_rename_then_decommission_the_whole_life(
    api: Api, sandbox: Sandbox, new_body: Body, workload_security: HttpEmulator
) -> None:
    # Unprotected in SDLC (optional there); Prod requires protection, so the move adds it.
    body = new_body(
        organizational_unit="Workloads/SDLC",
        environment="dev",
        workload_security={"enabled": False, "policy": None},
    )
    created = api.create("alice", body).json()
    api.act("bob", created["id"], "approve", {})
    vend = api.wait_for(created["id"], {"completed"}, timeout=120)
    account_id = vend["account_id"]
    _wait_account(api, account_id, {"active"})

    # Into Prod: the environment must fit, and nothing-changes is refused.
    misfit = _change(
        api,
        account_id,
        {"kind": "update", "justification": "go live", "organizational_unit": "Workloads/Prod"},
    )
    assert misfit.status_code == 422 and "environment" in misfit.text, misfit.text
    same = _change(
        api, account_id, {"kind": "update", "justification": "x", "cost_center": "CC-1234"}
    )
    assert same.status_code == 422 and "changes nothing" in same.text
    move = _change(
        api,
        account_id,
        {
            "kind": "update",
            "justification": "go live",
            "organizational_unit": "Workloads/Prod",
            "environment": "prod",
            "workload_security": {"enabled": True, "policy": None},
        },
    )
    assert move.status_code == 201, move.text
    moved = move.json()
    assert moved["kind"] == "update" and moved["approvals_required"] == 2  # Prod's, the stricter
    assert api.act("bob", moved["id"], "approve", {}).status_code == 200
    assert api.act("dave", moved["id"], "approve", {}).status_code == 200
    done = api.wait_for(moved["id"], {"completed"}, timeout=180)
    _as_planned(vend)
    _as_planned(done)
    baselines = next(p for p in done["plan"]["steps"] if p["name"] == "apply_baselines")
    assert {
        "action": "create",
        "kind": "stack instance",
        "name": ("vend-workload-security-role in us-east-1"),
    } in baselines["resources"]
    ran = {s["name"]: s["status"] for s in done["steps"]}
    assert ran == {
        "move_to_ou": "succeeded",
        "rename_account": "skipped",
        "enroll_control_tower": "succeeded",
        "apply_baselines": "succeeded",
        "enroll_workload_security": "succeeded",  # Prod requires it
        "remove_workload_security": "skipped",
        "register_billing": "skipped",
        "retag": "succeeded",  # the environment tag
    }, ran
    connectors = workload_security.state()["connectors"]
    assert [c for c in connectors if str(c["accountId"]) == account_id]
    assert sandbox.ou_path_of(account_id) == "Workloads/Prod"
    assert sandbox.control_tower()["enrolled_accounts"][account_id] == "SUCCEEDED"
    assert sandbox.stack_instances("vend-workload-security-role", account_id)
    assert sandbox.tags_of(account_id)["vending:environment"] == "prod"
    account = _wait_account(api, account_id, {"active"})
    assert account["organizational_unit"] == "Workloads/Prod"
    assert account["environment"] == "prod"
    assert {b["stack_set"] for b in account["baselines"]} == {
        "vend-audit-role",
        "vend-workload-security-role",
    }

    # Rename: one step, PutAccountName; Organizations shows the new name.
    new_name = body["account_name"] + "-prod"
    rename = _change(
        api, account_id, {"kind": "update", "justification": "naming", "account_name": new_name}
    )
    assert rename.status_code == 201, rename.text
    api.act("bob", rename.json()["id"], "approve", {})
    api.act("dave", rename.json()["id"], "approve", {})
    renamed = api.wait_for(rename.json()["id"], {"completed"}, timeout=120)
    _as_planned(renamed)
    assert [s["name"] for s in renamed["steps"] if s["status"] == "succeeded"] == ["rename_account"]
    assert sandbox.org.describe_account(AccountId=account_id)["Account"]["Name"] == new_name
    assert _wait_account(api, account_id, {"active"})["account_name"] == new_name

    # And the end of its life.
    preview = api.call(
        "POST",
        f"/v1/accounts/{account_id}/changes/preview",
        "alice",
        json={"kind": "decommission", "justification": "end", "confirm_account_name": new_name},
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["approvals_required"] == 2
    assert _account(api, account_id)["requests"][0] == rename.json()["id"]  # nothing written
    change = _decommission(api, account_id, new_name)
    for approver in ("bob", "dave"):
        api.act(approver, change["id"], "approve", {})
    closed_request = api.wait_for(change["id"], {"completed"}, timeout=180)
    _as_planned(closed_request)
    assert [s["name"] for s in preview.json()["steps"] if s["runs"]] == [
        s["name"] for s in closed_request["plan"]["steps"] if s["runs"]
    ]
    assert sandbox.org.describe_account(AccountId=account_id)["Account"]["State"] == "SUSPENDED"
    assert sandbox.ou_path_of(account_id) == "Suspended"
    for stack_set in ("vend-audit-role", "vend-workload-security-role"):
        assert sandbox.stack_instances(stack_set, account_id) == []
    assert not [
        c for c in workload_security.state()["connectors"] if str(c["accountId"]) == account_id
    ]
    closed = _wait_account(api, account_id, {"closed"})
    assert closed["requests"] == [change["id"], rename.json()["id"], moved["id"], vend["id"]]


def test_a_second_change_waits_for_the_first(api: Api, sandbox: Sandbox, new_body: Body) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    _, account_id = _managed(api, body)
    # The first change parks (its retag is refused), holding the account's turn.
    sandbox.fault(
        service="organizations",
        action="TagResource",
        error="AccessDeniedException",
        status=400,
        message="not now",
        match=account_id,
    )
    first = _change(
        api, account_id, {"kind": "update", "justification": "a", "cost_center": "CC-2"}
    ).json()
    api.wait_for(first["id"], {"waiting_for_operator"}, timeout=60)
    second = _change(
        api, account_id, {"kind": "update", "justification": "b", "tags": {"team": "data"}}
    ).json()
    wait_until(
        lambda: _account(api, account_id)["queued_changes"] == [second["id"]],
        "the second change queued behind the first",
        timeout=30,
    )
    waiting = api.get("alice", second["id"]).json()
    assert "one change at a time" in (waiting["steps"][0]["detail"] or "")
    sandbox.clear_faults()
    assert api.act("carol", first["id"], "retry", {"step": "retag"}).status_code == 202
    for change in (first, second):
        api.wait_for(change["id"], {"completed"}, timeout=120)
    account = _wait_account(api, account_id, {"active"})
    # The second ran on the record the first left: the first's cost center is not undone.
    assert account["cost_center"] == "CC-2" and account["tags"] == {"team": "data"}
    assert account["requests"][:2] == [second["id"], first["id"]]
    assert sandbox.tags_of(account_id)["vending:cost-center"] == "CC-2"


def test_the_command_line_lists_shows_previews_and_refuses_a_mistyped_decommission(
    api: Api, new_body: Body, tmp_path: Path
) -> None:
    def accounts_cli(user: str, *args: str) -> Any:
        return vend_cli(api, user, "accounts", *args)

    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    vend, account_id = _managed(api, body)
    shown = accounts_cli("alice", "show", account_id)
    assert shown.exit_code == 0, shown.output
    assert body["account_name"] in shown.output and vend["id"] in shown.output
    assert "step:create_account" in shown.output  # the vend's trail is the account's
    eventually(
        lambda: accounts_cli("carol", "list", "--ou", "Sandbox", "--limit", "100").output,
        lambda output: account_id in output,
        "the CLI lists the account in its OU",
        timeout=15,
    )
    wrong = accounts_cli(
        "alice", "decommission", account_id, "--justification", "done", "--confirm", "nope"
    )
    assert wrong.exit_code == 1 and "confirm_account_name" in wrong.output
    # A preview files nothing: the account has no new request after it.
    asked = ("update", account_id, "--justification", "x", "--cost-center", "C9")
    previewed = accounts_cli("alice", *asked, "--preview")
    assert previewed.exit_code == 0, previewed.output
    assert previewed.output.startswith("update: ")
    assert "retag                      runs" in previewed.output
    assert "move_to_ou                 skipped: OU unchanged" in previewed.output
    assert _account(api, account_id)["requests"] == [vend["id"]]
    closing = accounts_cli(
        "alice", "decommission", account_id, "--justification", "done", "--preview",
        "--confirm", body["account_name"],
    )  # fmt: skip
    assert closing.exit_code == 0 and "close_account              runs" in closing.output
    moved = accounts_cli("alice", *asked)
    assert moved.exit_code == 0, moved.output
    assert " update " in moved.output.splitlines()[0]
    # `vend requests preview`: a new request's plan, from a body file.
    path = tmp_path / "new.json"
    path.write_text(json.dumps(new_body(organizational_unit="Workloads/Prod", environment="prod")))
    new = vend_cli(api, "alice", "requests", "preview", "--body", str(path))
    assert new.exit_code == 0, new.output
    assert new.output.startswith("vend: 2 approval(s) needed")
    assert "create_account             runs" in new.output


def test_a_preview_of_a_new_request_writes_nothing_and_matches_what_it_then_does(
    api: Api, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    preview = api.call("POST", "/v1/account-requests/preview", "alice", json=body)
    assert preview.status_code == 200, preview.text
    planned = preview.json()
    assert planned["approvals_required"] == 0 and planned["eta_seconds"] > 0
    steps = {s["name"]: s for s in planned["steps"]}
    assert not steps["enroll_workload_security"]["runs"]  # Sandbox: protection off
    assert steps["create_account"]["resources"] == [
        {
            "action": "create",
            "kind": "aws account",
            "name": f"{body['account_name']} <{body['account_email']}>",
        }
    ]
    bad = api.call(
        "POST", "/v1/account-requests/preview", "alice", json={**body, "environment": "prod"}
    )
    assert bad.status_code == 422
    # Nothing was written: the same name is still free to request.
    done = _vend(api, body)
    _as_planned(done)
    assert [s["name"] for s in planned["steps"] if s["runs"]] == [
        s["name"] for s in done["plan"]["steps"] if s["runs"]
    ]


def _ou_id(sandbox: Sandbox, path: str) -> str:
    parent = sandbox.org.list_roots()["Roots"][0]["Id"]
    for name in path.split("/"):
        units = sandbox.org.list_organizational_units_for_parent(ParentId=parent)
        parent = next(u["Id"] for u in units["OrganizationalUnits"] if u["Name"] == name)
    return str(parent)


def _place(sandbox: Sandbox, account_id: str, path: str) -> None:
    source = sandbox.org.list_parents(ChildId=account_id)["Parents"][0]["Id"]
    sandbox.org.move_account(
        AccountId=account_id, SourceParentId=source, DestinationParentId=_ou_id(sandbox, path)
    )


def test_no_account_is_adopted_out_of_an_ou_closed_for_vending(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    """An operator cannot adopt the Audit account out of Security (two approvals, its SCPs)
    into Sandbox (none), naming themselves its user."""
    account_id, name, email = _account_made_outside_the_engine(sandbox, new_body)
    _place(sandbox, account_id, "Security")
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    body.update(account_id=account_id, account_name=name, account_email=email)
    resp = api.call("POST", "/v1/accounts/adopt", "carol", json=body)
    assert resp.status_code == 403, resp.text
    assert "closed for vending" in resp.json()["detail"]
    assert sandbox.ou_path_of(account_id) == "Security"  # nothing moved


def test_an_adoption_needs_the_stricter_of_the_ous_it_leaves_and_enters(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    account_id, name, email = _account_made_outside_the_engine(sandbox, new_body)
    _place(sandbox, account_id, "Workloads/Prod")  # two approvals to leave it
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    body.update(account_id=account_id, account_name=name, account_email=email)
    resp = api.call("POST", "/v1/accounts/adopt", "carol", json=body)
    assert resp.status_code == 201, resp.text
    adopted = resp.json()
    assert adopted["status"] == "pending_approval", adopted
    assert (adopted["approvals_required"], adopted["approvals_remaining"]) == (2, 2)
    assert api.act("bob", adopted["id"], "approve", {}).status_code == 200
    assert api.get("carol", adopted["id"]).json()["status"] == "pending_approval"
    assert api.act("dave", adopted["id"], "reject", {"reason": "not ours"}).status_code == 200
    assert sandbox.ou_path_of(account_id) == "Workloads/Prod"
