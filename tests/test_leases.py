"""Sandbox leases end to end: the keeper fills the pool through ordinary vends, a lease is
granted from it (Identity Center access seen in the sandbox), ended (access gone at once),
cleaned by the aws-nuke stand-in in two regions and verified by the inventory; an account
whose cleaning leaves something behind is quarantined with it listed until an operator fixes
the cause and retries."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.leases import lease_workflow_id, pool_id
from sandbox.aws.account_settings import sso_role_name
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, Sandbox, kill_worker_when, vend_cli
from tests.waiting import eventually, wait_until

POOL = "Experiments/Leases"
TEMPLATE = "sandbox-week"
PERMISSION_SET = "SandboxAdministrator"
TWO_REGIONS = ("us-east-1", "eu-west-1")

pytestmark = pytest.mark.xdist_group("leases")  # one pool per stack: its tests in one process


def _pool(api: Api) -> dict[str, Any]:
    resp = api.call("GET", "/v1/pools", "carol")
    assert resp.status_code == 200, resp.text
    return next(p for p in resp.json()["items"] if p["organizational_unit"] == POOL)


def _filled(api: Api) -> dict[str, Any]:
    """The pool once its keeper has an account ready (it vends them at the stack's start)."""
    return eventually(
        lambda: _pool(api),
        lambda p: p["counts"].get("available", 0) >= 1,
        "the keeper filled the pool",
        timeout=300,
    )


def _account(api: Api, account_id: str) -> dict[str, Any]:
    return next(a for a in _pool(api)["accounts"] if a["account_id"] == account_id)


def _cleaned(api: Api, account_id: str, what: str) -> dict[str, Any]:
    """The account once its cleaning is over, clean (available) or not (quarantined)."""
    return eventually(
        lambda: _account(api, account_id),
        lambda a: a["state"] in ("available", "quarantined"),
        what,
        timeout=240,
    )


def _lease(api: Api, user: str, lease_id: str) -> dict[str, Any]:
    resp = api.call("GET", f"/v1/leases/{lease_id}", user)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _assignments(sandbox: Sandbox, account_id: str) -> list[dict[str, Any]]:
    sso = sandbox.client("sso-admin")
    instance = sso.list_instances()["Instances"][0]["InstanceArn"]
    found = []
    for arn in sso.list_permission_sets(InstanceArn=instance)["PermissionSets"]:
        found += sso.list_account_assignments(
            InstanceArn=instance, AccountId=account_id, PermissionSetArn=arn
        )["AccountAssignments"]
    return found


def _granted(api: Api, user: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = api.call("POST", "/v1/leases", user, json=body)
    assert resp.status_code == 201, resp.text
    lease_id = resp.json()["lease_id"]
    assert resp.headers["Location"] == f"/v1/leases/{lease_id}"
    return eventually(
        lambda: _lease(api, user, lease_id),
        lambda lease: lease["status"] == "active",
        "the lease granted",
        timeout=180,
    )


def _ended(api: Api, user: str, lease_id: str) -> dict[str, Any]:
    resp = api.call("POST", f"/v1/leases/{lease_id}/end", user, json={"reason": "done"})
    assert resp.status_code == 200, resp.text
    return eventually(
        lambda: _lease(api, user, lease_id),
        lambda lease: lease["status"] == "ended",
        "the lease ended",
        timeout=120,
    )


def test_a_lease_from_the_pool_is_granted_ended_cleaned_and_handed_out_again(
    api: Api, sandbox: Sandbox
) -> None:
    pool = _filled(api)
    assert pool["min_available"] >= 1
    body = {"template": TEMPLATE, "justification": "learning SQS and DynamoDB"}
    lease = _granted(api, "alice", body)
    account = lease["account_id"]
    assert lease["holder"] == "alice" and lease["time_left_seconds"] > 0
    leased = _account(api, account)
    assert leased["state"] == "leased"
    # Her access, in Identity Center itself; the lease's tags on the account.
    assigned = _assignments(sandbox, account)
    assert len(assigned) == 1 and assigned[0]["PrincipalType"] == "USER", assigned
    tags = sandbox.tags_of(account)
    assert tags["vend:lease-holder"] == "alice" and tags["vend:lease-id"] == lease["lease_id"]
    # Nobody else sees it; an approver does.
    assert api.call("GET", f"/v1/leases/{lease['lease_id']}", "erin").status_code == 200
    listed = api.call("GET", "/v1/leases", "alice", params={"status": "active"}).json()["items"]
    assert lease["lease_id"] in {item["lease_id"] for item in listed}
    shown = vend_cli(api, "alice", "leases", "show", lease["lease_id"])
    assert shown.exit_code == 0 and "active" in shown.output and account in shown.output
    pools = vend_cli(api, "carol", "pools", "list")
    assert pools.exit_code == 0 and f"{POOL}: " in pools.output and "leased " in pools.output

    # What she makes, in two regions.
    sandbox.member_client(account, "sqs", TWO_REGIONS[0]).create_queue(QueueName="alice-queue")
    sandbox.member_client(account, "dynamodb", TWO_REGIONS[1]).create_table(
        TableName="alice-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sandbox.member_client(account, "s3", TWO_REGIONS[0]).create_bucket(Bucket=f"alice-{account}")

    ended = _ended(api, "alice", lease["lease_id"])
    assert [e["action"] for e in ended["events"]][-1] == "end"
    assert _assignments(sandbox, account) == []  # access gone when the lease says ended
    assert "vend:lease-id" not in sandbox.tags_of(account)
    back = _cleaned(api, account, "the account cleaned")
    assert back["state"] == "available", back
    assert back["cleanings"] == leased["cleanings"] + 1  # pool accounts are lent again and again
    sqs = sandbox.member_client(account, "sqs", TWO_REGIONS[0])
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert (
        sandbox.member_client(account, "dynamodb", TWO_REGIONS[1]).list_tables()["TableNames"] == []
    )
    assert sandbox.member_client(account, "s3", TWO_REGIONS[0]).list_buckets()["Buckets"] == []
    # Cleaned, never closed.
    described = sandbox.org.describe_account(AccountId=account)["Account"]
    assert described.get("State", described.get("Status")) == "ACTIVE", described


def test_a_cleaning_that_leaves_something_quarantines_until_an_operator_retries(
    api: Api, sandbox: Sandbox
) -> None:
    _filled(api)
    lease = _granted(api, "alice", {"template": TEMPLATE, "justification": "an EC2 trial"})
    account = lease["account_id"]
    ec2 = sandbox.member_client(account, "ec2", TWO_REGIONS[1])
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, DisableApiTermination=True)[
        "Instances"
    ][0]["InstanceId"]
    _ended(api, "alice", lease["lease_id"])

    held = _cleaned(api, account, "the cleaning over")
    assert held["state"] == "quarantined", held
    assert held["left_behind"] == [f"{TWO_REGIONS[1]} EC2Instance {instance}"]
    assert held["reason"].startswith("1 resource(s) left after 3 pass(es)"), held
    assert f"EC2Instance - {instance} - failed: OperationNotPermitted" in held["reason"], held
    # Not handed out while quarantined; only an operator retries.
    path = f"/v1/pools/{POOL}/accounts/{account}/retry"
    assert api.call("POST", path, "alice", json={}).status_code == 403

    ec2.modify_instance_attribute(InstanceId=instance, DisableApiTermination={"Value": False})
    retried = api.call("POST", path, "carol", json={"reason": "protection lifted"})
    assert retried.status_code == 200, retried.text
    assert retried.json()["state"] == "cleaning"
    again = api.call("POST", path, "carol", json={})
    assert again.status_code == 409  # cleaning already
    clean = _cleaned(api, account, "the cleaning over")
    assert clean["state"] == "available" and clean["left_behind"] == [], clean


def _as_holder(sandbox: Sandbox, account_id: str, service: str) -> Any:
    """A client as the leaseholder signs in: through the permission set's role that Identity
    Center made in the account (SCPs stop it; the engine's own role they do not)."""
    role = sso_role_name(PERMISSION_SET)
    creds = sandbox.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/aws-reserved/sso.amazonaws.com/{role}",
        RoleSessionName="alice",
    )["Credentials"]
    return sandbox.client_with(creds, service, TWO_REGIONS[0])


def test_spend_past_the_budget_freezes_before_cost_explorer_knows_and_an_approver_lifts_it(
    api: Api, sandbox: Sandbox
) -> None:
    _filled(api)
    lease = _granted(api, "alice", {"template": TEMPLATE, "justification": "costly things"})
    account, lease_id = lease["account_id"], lease["lease_id"]
    alice = _as_holder(sandbox, account, "sqs")
    alice.create_queue(QueueName="before")

    sandbox.http.post("/_sandbox/spend", json={"account_id": account, "usd": 60}).raise_for_status()
    frozen = eventually(
        lambda: _lease(api, "alice", lease_id),
        lambda got: got["status"] == "frozen",
        "the lease frozen",
        timeout=60,
    )
    assert {"budget 80%", "budget 100%"} <= set(frozen["thresholds_reached"]), frozen
    assert frozen["spent_usd"] == 60.0
    assert frozen["cost_explorer_usd"] == 0.0  # a day behind: the freeze did not wait for it
    with pytest.raises(ClientError) as denied:
        alice.create_queue(QueueName="after")
    assert denied.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
    assert "before" in alice.list_queues()["QueueUrls"][0]  # reads still work
    # The engine's own role is not stopped (cleaning must work on a frozen account).
    sandbox.member_client(account, "sqs", TWO_REGIONS[0]).create_queue(QueueName="by-the-engine")

    path = f"/v1/leases/{lease_id}/unfreeze"
    assert api.call("POST", path, "alice", json={"budget_usd": 150}).status_code == 403
    same = api.call("POST", path, "bob", json={"reason": "no more budget"})
    assert same.status_code == 422, same.text  # a budget freeze lifts with a higher budget
    lifted = api.call("POST", path, "bob", json={"budget_usd": 150, "reason": "a bigger trial"})
    assert lifted.status_code == 200, lifted.text
    active = eventually(
        lambda: _lease(api, "alice", lease_id),
        lambda got: got["status"] == "active",
        "the lease active again",
        timeout=60,
    )
    assert active["budget_usd"] == 150
    alice.create_queue(QueueName="after")
    armed = sandbox.http.get("/_sandbox/spend").json()["actions"]
    mine = [a for a in armed if a["BudgetName"] == f"vend-lease-{lease_id}"]
    assert [a["Status"] for a in mine] == ["STANDBY"], mine  # armed again, at the new amount
    _ended(api, "alice", lease_id)


def test_a_lease_is_held_to_its_template(api: Api) -> None:
    too_long = {"template": TEMPLATE, "justification": "x", "duration": "P30D"}
    resp = api.call("POST", "/v1/leases", "alice", json=too_long)
    assert resp.status_code == 422 and resp.json()["errors"][0]["loc"] == ["body", "duration"]
    rich = {"template": TEMPLATE, "justification": "x", "budget_usd": 100_000}
    assert api.call("POST", "/v1/leases", "alice", json=rich).status_code == 422
    unknown = {"template": "nope", "justification": "x"}
    assert api.call("POST", "/v1/leases", "alice", json=unknown).status_code == 422
    group = {"template": TEMPLATE, "justification": "x", "for_group": "team-payments"}
    assert api.call("POST", "/v1/leases", "alice", json=group).status_code == 422
    assert api.call("GET", "/v1/pools", "alice").status_code == 403
    naive = {"ends_at": "2030-01-01T00:00:00"}  # a time without its zone means nothing here
    resp = api.call("POST", f"/v1/leases/{uuid.uuid4()}/extend", "alice", json=naive)
    assert resp.status_code == 422 and resp.json()["errors"][0]["loc"] == ["body", "ends_at"]
    assert api.call("GET", "/v1/leases/not-a-lease", "alice").status_code == 404


def test_a_worker_killed_mid_grant_freeze_and_cleaning_does_each_once(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack
) -> None:
    _filled(api)
    sandbox.fault(service="sso", action="CreateAccountAssignment", hold=True, times=1)
    resp = api.call(
        "POST", "/v1/leases", "alice", json={"template": TEMPLATE, "justification": "k"}
    )
    assert resp.status_code == 201, resp.text
    lease_id = resp.json()["lease_id"]
    kill_worker_when(
        stack,
        lambda: sandbox.state()["held"]["settings"] >= 1,
        "the assignment held",
        lease_workflow_id(lease_id),
    )
    sandbox.release()
    active = eventually(
        lambda: _lease(api, "alice", lease_id),
        lambda got: got["status"] == "active",
        "the lease granted after the crash",
        timeout=120,
    )
    account = active["account_id"]
    cleanings = _account(api, account)["cleanings"]
    assert len(_assignments(sandbox, account)) == 1  # asked again after the crash: one
    payer = sandbox.client("sts").get_caller_identity()["Account"]
    budgets = sandbox.client("budgets").describe_budgets(AccountId=payer)["Budgets"]
    assert [b["BudgetName"] for b in budgets].count(f"vend-lease-{lease_id}") == 1

    # Mid freeze: AWS Budgets has attached the SCP; the lease's own confirmation is in flight.
    sandbox.fault(service="organizations", action="AttachPolicy", block=True, times=1)
    sandbox.http.post("/_sandbox/spend", json={"account_id": account, "usd": 80}).raise_for_status()
    wait_until(lambda: sandbox.state()["held"]["blocked"] == 1, "the freeze's confirmation sent")
    stack.processes["worker"].kill()
    stack.start_worker()
    sandbox.release()
    eventually(
        lambda: _lease(api, "alice", lease_id),
        lambda got: got["status"] == "frozen",
        "the lease frozen after the crash",
        timeout=120,
    )
    org = sandbox.org
    attached = org.list_policies_for_target(TargetId=account, Filter="SERVICE_CONTROL_POLICY")
    names = [p["Name"] for p in attached["Policies"]]
    assert names.count("vend-lease-freeze") == 1, names

    sandbox.member_client(account, "sqs", TWO_REGIONS[0]).create_queue(QueueName="doomed")
    sandbox.fault(service="sqs", action="DeleteQueue", block=True, times=1)
    _ended(api, "alice", lease_id)
    kill_worker_when(
        stack,
        lambda: sandbox.state()["held"]["blocked"] == 1,
        "the cleaner's call in flight",
        pool_id(POOL),
    )
    sandbox.release()
    back = _cleaned(api, account, "the account cleaned after the crash")
    assert back["state"] == "available", back
    assert back["cleanings"] == cleanings + 1  # a retried attempt is the same cleaning
    assert (
        sandbox.member_client(account, "sqs", TWO_REGIONS[0]).list_queues().get("QueueUrls", [])
        == []
    )


@pytest.mark.timeout(900)  # thirty grants and ends, each a few seconds; more under a loaded CI
def test_thirty_leases_in_a_row_close_nothing_and_vend_no_account_beyond_the_pool(
    api: Api, sandbox: Sandbox
) -> None:
    """Leases come and go; the pool lends its accounts again and again: no closure, and no
    more accounts than min_available plus the one lent out."""
    pool = eventually(
        lambda: _pool(api),
        lambda p: p["counts"].get("available", 0) >= 1 and not p["provisioning"],
        "the keeper filled the pool",
        timeout=300,
    )
    before = {a["account_id"] for a in pool["accounts"] if a["state"] != "retired"}
    used: set[str] = set()
    for n in range(30):
        lease = _granted(api, "alice", {"template": TEMPLATE, "justification": f"run {n}"})
        used.add(lease["account_id"])
        _ended(api, "alice", lease["lease_id"])
    after = eventually(
        lambda: _pool(api),
        lambda p: not p["provisioning"] and p["counts"].get("cleaning", 0) == 0,
        "the pool at rest",
        timeout=180,
    )
    live = {a["account_id"] for a in after["accounts"] if a["state"] != "retired"}
    assert len(live - before) <= 1, (before, live)  # at most the one the first lease took
    assert len(live) <= max(len(before), after["min_available"] + 1)
    assert used <= live
    for account in used:
        described = sandbox.org.describe_account(AccountId=account)["Account"]
        assert described.get("State", described.get("Status")) == "ACTIVE", described


def test_a_lease_ends_at_its_time_and_its_access_goes_with_it(api: Api, sandbox: Sandbox) -> None:
    _filled(api)
    short = {"template": TEMPLATE, "justification": "a quick look", "duration": "PT15S"}
    lease = _granted(api, "alice", short)
    ended = eventually(
        lambda: _lease(api, "alice", lease["lease_id"]),
        lambda got: got["status"] == "ended",
        "the lease over at its time",
        timeout=120,
    )
    last = ended["events"][-1]
    assert (last["by"], last["action"]) == ("system", "end"), ended["events"]
    assert ended["ended_at"] >= lease["ends_at"]
    assert _assignments(sandbox, lease["account_id"]) == []


def test_an_idempotency_key_replay_answers_the_same_lease_even_once_it_ended(api: Api) -> None:
    _filled(api)
    key = {"Idempotency-Key": f"lease-{uuid.uuid4()}"}
    short = {"template": TEMPLATE, "justification": "once", "duration": "PT5S"}
    first = api.call("POST", "/v1/leases", "alice", json=short, headers=key)
    assert first.status_code == 201, first.text
    lease_id = first.json()["lease_id"]
    eventually(
        lambda: _lease(api, "alice", lease_id),
        lambda got: got["status"] == "ended",
        "the short lease over",
        timeout=120,
    )
    again = api.call("POST", "/v1/leases", "alice", json=short, headers=key)
    assert again.status_code == 201 and again.json()["lease_id"] == lease_id, again.text
    assert again.json()["status"] == "ended"
    other = api.call(
        "POST", "/v1/leases", "alice", json={**short, "justification": "x"}, headers=key
    )
    assert other.status_code == 422 and other.json()["type"].endswith("idempotencykeyreused")


def test_a_templates_blueprint_is_deployed_for_the_lease_and_removed_at_its_end(
    api: Api, sandbox: Sandbox
) -> None:
    _filled(api)
    lease = _granted(api, "alice", {"template": "blueprint-week", "justification": "a blueprint"})
    account, lease_id = lease["account_id"], lease["lease_id"]
    deployed = eventually(
        lambda: _lease(api, "alice", lease_id),
        lambda got: "blueprints deployed" in [e["action"] for e in got["events"]],
        "the blueprint deployed",
        timeout=120,
    )
    assert deployed["status"] == "active"
    instances = sandbox.stack_instances("vend-lease-blueprint", account)
    assert [i["Status"] for i in instances] == ["CURRENT"], instances
    _ended(api, "alice", lease_id)
    assert sandbox.stack_instances("vend-lease-blueprint", account) == []
    back = _cleaned(api, account, "the account cleaned")
    assert back["state"] == "available", back
