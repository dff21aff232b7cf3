"""Rollouts: a baseline StackSet change carried to accounts already vended, in waves.

The accounts are seeded straight into the sandbox (an account, its OU, its stack instances), as
the fleet of a landing zone that has run for a while would be; the rollout then runs through the
API, the worker and the sandbox's StackSets, whose operations take time and refuse overlap.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from common import rollouts as rollout_contract
from sandbox.fleet import ou_id as fleet_ou_id
from sandbox.fleet import seed as fleet_seed
from tests.conftest import Api, EmbeddedStack, Sandbox, idle, kill_worker_when, vend_cli
from tests.waiting import wait_until

STACK_SET = "vend-rollout-probe"
REGIONS = ["us-east-1", "eu-west-1"]


def _until(ready: Callable[[], bool], what: str, timeout: float = 90) -> None:
    wait_until(ready, what, timeout)


def _seed_accounts(sandbox: Sandbox, ou_path: str, count: int) -> list[str]:
    """Accounts in ``ou_path`` with the probe StackSet's instances, made directly in AWS."""
    return fleet_seed(sandbox.endpoint, ou_path, count, STACK_SET, REGIONS)


def _members(sandbox: Sandbox, *ou_paths: str) -> list[str]:
    """The accounts of these OUs that have the probe StackSet's instances now: the fleet, and
    whatever another test of the module gave it (tests run in any order)."""
    cfn = sandbox.client("cloudformation")
    with_instances = {
        s["Account"]
        for page in cfn.get_paginator("list_stack_instances").paginate(StackSetName=STACK_SET)
        for s in page["Summaries"]
    }
    found = []
    for path in ou_paths:
        parent = fleet_ou_id(sandbox.org, path)
        accounts = sandbox.org.list_accounts_for_parent(ParentId=parent)["Accounts"]
        found += [a["Id"] for a in accounts if a["Id"] in with_instances]
    return sorted(found)


def _operation(sandbox: Sandbox, operation_id: str) -> dict[str, Any]:
    cfn = sandbox.client("cloudformation")
    op = cfn.describe_stack_set_operation(StackSetName=STACK_SET, OperationId=operation_id)
    return dict(op["StackSetOperation"])


def _statuses(sandbox: Sandbox, accounts: list[str]) -> dict[str, set[str]]:
    cfn = sandbox.client("cloudformation")
    out: dict[str, set[str]] = {a: set() for a in accounts}
    for page in cfn.get_paginator("list_stack_instances").paginate(StackSetName=STACK_SET):
        for summary in page["Summaries"]:
            if summary["Account"] in out:
                out[summary["Account"]].add(summary["Status"])
    return out


def _operations_for(sandbox: Sandbox, ids: set[str]) -> list[str]:
    cfn = sandbox.client("cloudformation")
    ops = cfn.list_stack_set_operations(StackSetName=STACK_SET)["Summaries"]
    return [o["OperationId"] for o in ops if o["OperationId"] in ids]


def _template(sandbox: Sandbox) -> str:
    cfn = sandbox.client("cloudformation")
    return str(cfn.describe_stack_set(StackSetName=STACK_SET)["StackSet"]["TemplateBody"])


def _cli(api: Api, *args: str) -> Any:
    return vend_cli(api, "carol", "rollouts", *args)


def _rollout(api: Api, rollout_id: str) -> dict[str, Any]:
    resp = api.call("GET", f"/v1/rollouts/{rollout_id}", "carol")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _wait_status(api: Api, rollout_id: str, statuses: set[str]) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def reached() -> bool:
        nonlocal last
        last = _rollout(api, rollout_id)
        return last["status"] in statuses

    _until(reached, f"rollout {statuses}", timeout=120)
    return last


@pytest.fixture(scope="module")
def fleet(sandbox: Sandbox) -> dict[str, list[str]]:
    return {
        "Experiments/Rollout": _seed_accounts(sandbox, "Experiments/Rollout", 3),
        "Experiments/RolloutProd": _seed_accounts(sandbox, "Experiments/RolloutProd", 2),
    }


def test_rollout_plans_waits_for_approval_runs_in_waves_pauses_and_resumes(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, fleet: dict[str, list[str]]
) -> None:
    everyone = _members(sandbox, *fleet)
    new_template = _template(sandbox) + f"\n# rollout {uuid.uuid4().hex}\n"
    body = {
        "baseline": "rollout-probe",
        "reason": "audit role gets a new version",
        "template_body": new_template,
        "waves": {"canary_accounts": 1, "growth": 2},
    }
    assert api.call("POST", "/v1/rollouts", "alice", json=body).status_code == 403
    bad = api.call("POST", "/v1/rollouts", "carol", json={**body, "baseline": "nope"})
    assert bad.status_code == 422 and "nope" in bad.json()["detail"]

    # Held by this StackSet's name, and counted from what is held already: a request another
    # test left running may hold an operation of its own (see the crash test below).
    sandbox.fault(
        service="cloudformation", action="UpdateStackSet", match=STACK_SET, hold=True, times=1
    )
    already_held = sandbox.state()["held"]["cloudformation"]
    resp = api.call("POST", "/v1/rollouts", "carol", json=body)
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    rollout_id = plan["rollout_id"]
    # The plan before anything runs: every account with the StackSet, a canary first, one
    # operation per wave, the template change itself only in the canary's operation.
    assert plan["status"] == "pending_approval" and plan["approvals_required"] == 1
    assert plan["template_changes"] is True and plan["accounts_total"] == len(everyone)
    # A canary, then twice as many, then the rest: the fleet is five accounts, six once the
    # test of an OU that gained the baseline has added one (tests run in any order).
    assert [len(w["accounts"]) for w in plan["waves"]] == [1, 2, len(everyone) - 3]
    assert sorted(a for w in plan["waves"] for a in w["accounts"]) == everyone
    assert [[op["action"] for op in w["operations"]] for w in plan["waves"]] == [
        ["UpdateStackSet"],
        ["UpdateStackInstances"],
        ["UpdateStackInstances"],
    ]
    assert plan["eta_seconds"] > 0
    assert _template(sandbox) != new_template  # nothing ran yet

    assert api.call("POST", f"/v1/rollouts/{rollout_id}/approve", "carol").status_code == 403
    approved = api.call("POST", f"/v1/rollouts/{rollout_id}/approve", "bob")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "running"

    # The canary's operation is held in AWS: pause now, and no later wave starts.
    _until(
        lambda: sandbox.state()["held"]["cloudformation"] == already_held + 1,
        "canary operation held",
    )
    paused = api.call("POST", f"/v1/rollouts/{rollout_id}/pause", "carol")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert api.call("POST", f"/v1/rollouts/{rollout_id}/pause", "carol").status_code == 409
    sandbox.release()
    _until(lambda: _rollout(api, rollout_id)["waves"][0]["status"] == "done", "canary done")
    canary = plan["waves"][0]["accounts"]
    # The workflow has nothing pending but its pause: a wave that wrongly started would show.
    wait_until(lambda: idle(stack, f"rollout-{rollout_id}"), "the paused rollout at rest")
    state = _rollout(api, rollout_id)
    assert state["status"] == "paused" and state["waves"][1]["status"] == "planned"
    assert state["accounts_done"] == 1
    statuses = _statuses(sandbox, everyone)
    assert statuses[canary[0]] == {"CURRENT"}
    assert all(statuses[a] == {"OUTDATED"} for a in everyone if a not in canary)

    resumed = api.call("POST", f"/v1/rollouts/{rollout_id}/resume", "carol")
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"
    done = _wait_status(api, rollout_id, {"completed", "halted"})
    assert done["status"] == "completed", done
    assert done["accounts_done"] == len(everyone) and done["accounts_failed"] == []
    assert done["eta_seconds"] == 0
    assert _template(sandbox) == new_template
    assert all(s == {"CURRENT"} for s in _statuses(sandbox, everyone).values())
    planned_ids = {op["operation_id"] for w in plan["waves"] for op in w["operations"]}
    assert sorted(_operations_for(sandbox, planned_ids)) == sorted(planned_ids)

    listed = api.call("GET", "/v1/rollouts", "carol").json()["items"]
    assert rollout_id in {r["rollout_id"] for r in listed}
    assert done["accounts_left"] == 0
    shown = _cli(api, "show", rollout_id)
    assert shown.exit_code == 0, shown.output
    assert f"done {len(everyone)}/{len(everyone)}, failed 0, skipped 0, left 0" in shown.output
    assert "wave 1: 1 account(s), done" in shown.output

    # The same change again: every account is already current, so nothing runs.
    again = api.call("POST", "/v1/rollouts", "carol", json=body).json()
    assert again["accounts_skipped"] == len(everyone) and again["waves"] == []
    assert _wait_status(api, again["rollout_id"], {"completed"})["accounts_done"] == 0


def test_worker_killed_mid_wave_runs_no_operation_twice(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, fleet: dict[str, list[str]]
) -> None:
    accounts = _members(sandbox, "Experiments/Rollout")  # an OU that needs no approval
    body = {
        "baseline": "rollout-probe",
        "reason": "a parameter for the dev accounts",
        # The StackSet's own template (whatever another test made it): only instances change.
        "template_body": _template(sandbox),
        "parameters": {"AuditAccountId": "222222222222"},
        "organizational_units": ["Experiments/Rollout"],
        "waves": {"canary_accounts": 1, "growth": 5},
    }
    # Each wave's own operation held (the body is the StackSet, then its accounts in order): an
    # update of some other StackSet, by a request another test left running, takes no hold.
    for first in (accounts[0], accounts[1]):
        sandbox.fault(
            service="cloudformation",
            action="UpdateStackInstances",
            match=f"{STACK_SET} {first}",
            hold=True,
            times=1,
        )
    already_held = sandbox.state()["held"]["cloudformation"]
    resp = api.call("POST", "/v1/rollouts", "carol", json=body)
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    assert plan["status"] == "running" and plan["approvals_required"] == 0
    assert [w["accounts"] for w in plan["waves"]] == [accounts[:1], accounts[1:]]

    flow = rollout_contract.ID_PREFIX + plan["rollout_id"]
    # One more held than before, not exactly one: an operation another test left held would
    # otherwise pass for the canary's, and the release below would come before the canary's own
    # hold, which nothing would then let go (the second wait below timed out in two full runs).
    kill_worker_when(
        stack,
        lambda: sandbox.state()["held"]["cloudformation"] == already_held + 1,
        "canary held",
        flow,
    )
    sandbox.release()
    kill_worker_when(
        stack,
        lambda: (
            sandbox.state()["held"]["cloudformation"] >= 1
            and [w["status"] for w in _rollout(api, plan["rollout_id"])["waves"]]
            == ["done", "running"]
        ),
        "second wave's operation held",
        flow,
    )
    sandbox.release()
    done = _wait_status(api, plan["rollout_id"], {"completed", "halted"})
    assert done["status"] == "completed", done
    planned_ids = {op["operation_id"] for w in plan["waves"] for op in w["operations"]}
    # One operation per wave in AWS, though each was asked for again after a crash.
    assert sorted(_operations_for(sandbox, planned_ids)) == sorted(planned_ids)
    cfn = sandbox.client("cloudformation")
    for account in accounts:
        instance = cfn.describe_stack_instance(
            StackSetName=STACK_SET, StackInstanceAccount=account, StackInstanceRegion=REGIONS[0]
        )["StackInstance"]
        overrides = {p["ParameterKey"]: p["ParameterValue"] for p in instance["ParameterOverrides"]}
        assert overrides == {"AuditAccountId": "222222222222"}


def test_a_cancel_mid_wave_stops_the_running_operation(
    api: Api, sandbox: Sandbox, fleet: dict[str, list[str]]
) -> None:
    """A cancel does not wait for the wave: the StackSet operation AWS is running is stopped
    (StopStackSetOperation), and the accounts it left are neither done nor failed."""
    accounts = _members(sandbox, "Experiments/RolloutProd")
    body = {
        "baseline": "rollout-probe",
        "reason": "a parameter, cancelled midway",
        "template_body": _template(sandbox),  # whatever another test made it: no new template
        "parameters": {"AuditAccountId": "444444444444"},
        "organizational_units": ["Experiments/RolloutProd"],
    }
    sandbox.fault(
        service="cloudformation",
        action="UpdateStackInstances",
        match=STACK_SET,
        hold=True,
        times=1,
    )
    already_held = sandbox.state()["held"]["cloudformation"]
    plan = api.call("POST", "/v1/rollouts", "carol", json=body).json()
    assert plan["status"] == "pending_approval", plan
    assert api.call("POST", f"/v1/rollouts/{plan['rollout_id']}/approve", "bob").status_code == 200
    _until(
        lambda: sandbox.state()["held"]["cloudformation"] == already_held + 1,
        "the canary's operation held",
    )
    operation = plan["waves"][0]["operations"][0]["operation_id"]
    cancelled = api.call("POST", f"/v1/rollouts/{plan['rollout_id']}/cancel", "carol")
    assert cancelled.status_code == 200, cancelled.text
    _until(lambda: _operation(sandbox, operation)["Status"] == "STOPPED", "operation stopped")
    done = _wait_status(api, plan["rollout_id"], {"cancelled"})
    _until(lambda: _rollout(api, plan["rollout_id"])["waves"][0]["status"] == "done", "wave ended")
    done = _rollout(api, plan["rollout_id"])
    assert done["accounts_done"] == 0 and done["accounts_failed"] == [], done
    assert done["accounts_left"] == len(accounts)
    assert done["waves"][0]["operations"][0]["status"] == "STOPPED"
    actions = [e["action"] for e in done["events"]]
    assert actions[-3:] == ["cancel", "stop", "wave"], actions
    assert "1 stopped" in done["events"][-1]["detail"]
    assert api.call("POST", f"/v1/rollouts/{plan['rollout_id']}/cancel", "carol").status_code == 409


def test_a_rollout_by_tag_touches_only_the_tagged_accounts(
    api: Api, sandbox: Sandbox, fleet: dict[str, list[str]]
) -> None:
    pilot, *others = _members(sandbox, "Experiments/Rollout")
    sandbox.org.tag_resource(ResourceId=pilot, Tags=[{"Key": "ring", "Value": "pilot"}])
    body = {
        "baseline": "rollout-probe",
        "reason": "the pilot ring first",
        "template_body": _template(sandbox),  # only the instances change
        "parameters": {"AuditAccountId": "333333333333"},
        "tags": {"ring": "pilot"},
    }
    plan = api.call("POST", "/v1/rollouts", "carol", json=body)
    assert plan.status_code == 201, plan.text
    state = plan.json()
    assert state["accounts_total"] == 1 and [w["accounts"] for w in state["waves"]] == [[pilot]]
    assert _wait_status(api, state["rollout_id"], {"completed"})["accounts_done"] == 1
    cfn = sandbox.client("cloudformation")

    def override(account: str) -> str | None:
        instance = cfn.describe_stack_instance(
            StackSetName=STACK_SET, StackInstanceAccount=account, StackInstanceRegion=REGIONS[0]
        )["StackInstance"]
        found = {p["ParameterKey"]: p["ParameterValue"] for p in instance["ParameterOverrides"]}
        return found.get("AuditAccountId")

    assert override(pilot) == "333333333333"
    assert all(override(a) != "333333333333" for a in others)
    bad = api.call("POST", "/v1/rollouts", "carol", json={**body, "tags": {"k" * 200: "v"}})
    assert bad.status_code == 422


def test_a_rollout_gives_the_baseline_to_managed_accounts_of_the_ou_that_lack_it(
    api: Api, sandbox: Sandbox, fleet: dict[str, list[str]], new_body: Callable[..., Any]
) -> None:
    """An OU that gained a baseline: its managed accounts without an instance get one, in the
    rollout's waves (CreateStackInstances, the landing zone's parameters); an account of the OU
    the engine does not manage is left alone."""
    ou = "Experiments/Rollout"
    current = _members(sandbox, ou)
    created = api.create("alice", new_body(organizational_unit=ou, environment="dev"))
    assert created.status_code == 201, created.text
    managed = str(api.wait_for(created.json()["id"], {"completed"}, timeout=180)["account_id"])
    _until(
        lambda: (
            api.call("GET", f"/v1/accounts/{managed}", "carol").json().get("status") == "active"
        ),
        "managed",
    )
    cfn = sandbox.client("cloudformation")
    # As if the OU had gained the baseline after this account was vended: no instance.
    removal = cfn.delete_stack_instances(
        StackSetName=STACK_SET, Accounts=[managed], Regions=REGIONS, RetainStacks=False
    )["OperationId"]
    _until(lambda: _operation(sandbox, removal)["Status"] == "SUCCEEDED", "instances deleted")
    (unmanaged,) = fleet_seed(sandbox.endpoint, ou, 1, STACK_SET, [], prefix="bare")

    body = {
        "baseline": "rollout-probe",
        "reason": "the OU gained it",
        "organizational_units": [ou],
        "template_body": _template(sandbox),  # whatever another test made it: no new template
    }
    resp = api.call("POST", "/v1/rollouts", "carol", json=body)
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    ops = [op for w in plan["waves"] for op in w["operations"]]
    assert [(op["action"], op["accounts"]) for op in ops] == [("CreateStackInstances", [managed])]
    assert unmanaged not in {a for w in plan["waves"] for a in w["accounts"]}
    assert plan["accounts_skipped"] == len(current)  # their instances are current
    done = _wait_status(api, plan["rollout_id"], {"completed", "halted"})
    assert done["status"] == "completed", done
    assert (done["accounts_done"], done["accounts_created"]) == (1, 1)
    statuses = _statuses(sandbox, [managed, unmanaged])
    assert statuses == {managed: {"CURRENT"}, unmanaged: set()}
    instance = cfn.describe_stack_instance(
        StackSetName=STACK_SET, StackInstanceAccount=managed, StackInstanceRegion=REGIONS[1]
    )["StackInstance"]
    overrides = {p["ParameterKey"]: p["ParameterValue"] for p in instance["ParameterOverrides"]}
    assert overrides == {"AuditAccountId": "111111111111"}  # the landing zone's value
    record = api.call("GET", f"/v1/accounts/{managed}", "carol").json()
    assert STACK_SET in {b["stack_set"] for b in record["baselines"]}


def _computer(workload_security: Any, instance: str) -> dict[str, Any] | None:
    for c in workload_security.state()["computers"]:
        if c["ec2VirtualMachineSummary"]["instanceID"] == instance:
            active = c["computerStatus"]["agentStatus"] == "active"
            return dict(c) if active else None
    return None


def test_a_workload_security_policy_rollout_moves_computers_and_later_installs(
    api: Api, sandbox: Sandbox, workload_security: Any, new_body: Callable[..., Any]
) -> None:
    """Another policy for the protected accounts: in waves like a baseline's, the computers
    Workload Security has for them take it, the agent association (what later installs read)
    too, and each account's record keeps it for its next update."""
    ou = "Experiments/Full"
    accounts = []
    for _ in range(2):
        made = api.create("alice", new_body(organizational_unit=ou, environment="dev"))
        assert made.status_code == 201, made.text
        accounts.append(
            str(api.wait_for(made.json()["id"], {"completed"}, timeout=180)["account_id"])
        )
    ec2 = sandbox.member_client(accounts[0], "ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    _until(lambda: _computer(workload_security, instance) is not None, "the agent active")
    assert _computer(workload_security, instance)["policyID"] == 1  # type: ignore[index]

    body = {
        "workload_security_policy": "Linux Server",
        "reason": "hardened policy for the dev fleet",
        "account_ids": accounts,
        "waves": {"canary_accounts": 1, "growth": 2},
    }
    both = api.call("POST", "/v1/rollouts", "carol", json={**body, "baseline": "rollout-probe"})
    assert both.status_code == 422
    missing = api.call(
        "POST", "/v1/rollouts", "carol", json={**body, "workload_security_policy": "Nope"}
    )
    assert missing.status_code == 422 and "Nope" in missing.json()["detail"], missing.text
    resp = api.call("POST", "/v1/rollouts", "carol", json=body)
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    assert plan["kind"] == "workload_security_policy" and plan["policy"] == "Linux Server"
    assert [w["accounts"] for w in plan["waves"]] == [sorted(accounts)[:1], sorted(accounts)[1:]]
    assert {op["action"] for w in plan["waves"] for op in w["operations"]} == {"AssignPolicy"}
    done = _wait_status(api, plan["rollout_id"], {"completed", "halted"})
    assert done["status"] == "completed", done
    assert done["accounts_done"] == 2 and done["accounts_failed"] == []

    assert _computer(workload_security, instance)["policyID"] == 2  # type: ignore[index]
    for account in accounts:
        ssm = sandbox.member_client(account, "ssm")
        (association,) = ssm.list_associations()["Associations"]
        described = ssm.describe_association(AssociationId=association["AssociationId"])
        arguments = described["AssociationDescription"]["Parameters"]["additionalArguments"]
        assert json.loads(arguments[0]) == {"SSM_DS_POLICY_ID": "2"}
        assert ssm.get_parameter(Name="dsPolicyId")["Parameter"]["Value"] == "2"

        def recorded(account: str = account) -> bool:
            view = api.call("GET", f"/v1/accounts/{account}", "carol").json()
            return bool(view["workload_security"]["policy"] == "Linux Server")

        _until(recorded, f"{account}'s record has the policy")
    again = api.call("POST", "/v1/rollouts", "carol", json=body).json()
    assert again["accounts_skipped"] == 2 and again["waves"] == []
    shown = _cli(api, "list")
    assert "WS policy Linux Server" in shown.output, shown.output


def test_a_new_template_needs_the_approvals_of_every_ou_it_reaches_and_shows_its_diff(
    api: Api, sandbox: Sandbox, fleet: dict[str, list[str]]
) -> None:
    """Aimed at one account of an OU that needs no approval, a new template still replaces the
    StackSet's for RolloutProd's accounts and every later vend: RolloutProd's approval, and
    the approvers see what they approve (digests and diff)."""
    import hashlib

    current = _template(sandbox)
    marker = f"# reaches everyone {uuid.uuid4().hex}"
    new_template = current + f"\n{marker}\n"
    body = {
        "baseline": "rollout-probe",
        "reason": "a new template, aimed at one dev account",
        "template_body": new_template,
        "organizational_units": ["Experiments/Rollout"],
        "account_ids": fleet["Experiments/Rollout"][:1],
    }
    resp = api.call("POST", "/v1/rollouts", "carol", json=body)
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    assert plan["status"] == "pending_approval", plan
    assert plan["approvals_required"] == 1
    assert plan["template_reach"] == ["Experiments/Rollout", "Experiments/RolloutProd"]
    assert plan["template_sha256"] == hashlib.sha256(new_template.encode()).hexdigest()
    assert plan["current_template_sha256"] == hashlib.sha256(current.encode()).hexdigest()
    assert f"+{marker}" in plan["template_diff"]
    shown = _cli(api, "show", plan["rollout_id"])
    assert shown.exit_code == 0, shown.output
    assert plan["template_sha256"] in shown.output and f"+{marker}" in shown.output
    cancelled = api.call("POST", f"/v1/rollouts/{plan['rollout_id']}/cancel", "carol")
    assert cancelled.status_code == 200, cancelled.text
    assert _template(sandbox) == current

    # Instance overrides reach only the accounts named: the targeted OUs' approvals (none).
    overrides = {**body, "template_body": current, "parameters": {"AuditAccountId": "3" * 12}}
    only = api.call("POST", "/v1/rollouts", "carol", json=overrides)
    assert only.status_code == 201, only.text
    assert only.json()["approvals_required"] == 0 and not only.json()["template_changes"]
    _wait_status(api, only.json()["rollout_id"], {"completed"})
