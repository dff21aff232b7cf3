"""Account settings at vend time: Identity Center access, budget, alternate contacts, alias,
opt-in regions, no default VPCs, a generated root email; each checked in the sandbox, each
undone by a cancel, each exactly once through a worker kill."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from common.temporal_client import workflow_id
from sandbox.stack import EmbeddedStack
from tests.conftest import (
    Api,
    HttpEmulator,
    Sandbox,
    decommission_when_managed,
    kill_worker_when,
    resumed,
)
from tests.waiting import eventually, wait_until

Body = Callable[..., dict[str, Any]]
OU = "Experiments/Settings"
REGIONS = ["ap-east-1", "eu-south-1"]


def _body(new_body: Body, **overrides: Any) -> dict[str, Any]:
    body = new_body(
        organizational_unit=OU,
        environment="dev",
        budget={"monthly_usd": 5000},
        access={"group": "team-payments"},
        workload_security={"enabled": False},
    )
    body.update(overrides)
    return body


def _member(sandbox: Sandbox, account_id: str, service: str, region: str = "us-east-1") -> Any:
    creds = sandbox.member_credentials(account_id, "test-check")
    make: Any = boto3.client
    return make(
        service,
        endpoint_url=sandbox.endpoint,
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _assignments(sandbox: Sandbox, account_id: str) -> list[tuple[str, str]]:
    """(permission set name, principal id) of every assignment in the account."""
    sso = sandbox.client("sso-admin")
    instance = sso.list_instances()["Instances"][0]["InstanceArn"]
    out = []
    for arn in sso.list_permission_sets(InstanceArn=instance)["PermissionSets"]:
        name = sso.describe_permission_set(InstanceArn=instance, PermissionSetArn=arn)[
            "PermissionSet"
        ]["Name"]
        found = sso.list_account_assignments(
            InstanceArn=instance, AccountId=account_id, PermissionSetArn=arn
        )["AccountAssignments"]
        out += [(name, a["PrincipalId"]) for a in found]
    return sorted(out)


def _group_id(sandbox: Sandbox, name: str) -> str:
    sso = sandbox.client("sso-admin")
    store = sso.list_instances()["Instances"][0]["IdentityStoreId"]
    return str(
        sandbox.client("identitystore").get_group_id(
            IdentityStoreId=store,
            AlternateIdentifier={
                "UniqueAttribute": {"AttributePath": "displayName", "AttributeValue": name}
            },
        )["GroupId"]
    )


def _budget(sandbox: Sandbox, account_id: str) -> dict[str, Any] | None:
    budgets = sandbox.client("budgets")
    payer = sandbox.client("sts").get_caller_identity()["Account"]
    try:
        return dict(
            budgets.describe_budget(AccountId=payer, BudgetName=f"vend-{account_id}")["Budget"]
        )
    except budgets.exceptions.NotFoundException:
        return None


def _region_status(sandbox: Sandbox, account_id: str, region: str) -> str:
    account = sandbox.client("account")
    return str(
        account.get_region_opt_status(AccountId=account_id, RegionName=region)["RegionOptStatus"]
    )


def _default_vpc_regions(sandbox: Sandbox, account_id: str) -> list[str]:
    account = sandbox.client("account")
    regions = [
        r["RegionName"]
        for r in account.list_regions(
            AccountId=account_id, RegionOptStatusContains=["ENABLED", "ENABLED_BY_DEFAULT"]
        )["Regions"]
    ]
    found = []
    for region in regions:
        ec2 = _member(sandbox, account_id, "ec2", region)
        if ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]:
            found.append(region)
    return found


def _as_planned(done: dict[str, Any]) -> None:
    planned = [(s["name"], s["runs"]) for s in done["plan"]["steps"]]
    ran = [(s["name"], s["status"] != "skipped") for s in done["steps"]]
    assert planned == ran, (planned, ran)


def test_a_request_ends_with_every_setting_its_ou_applies(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = _body(new_body)
    created = api.create("alice", body)
    assert created.status_code == 201, created.text
    planned = {s["name"]: s for s in created.json()["plan"]["steps"]}
    assert [r["name"] for r in planned["assign_access"]["resources"]] == [
        "SettingsOperator to group team-payments",
        "ReadOnlyAccess to group team-payments",
    ]
    assert "5000 USD a month" in planned["create_budget"]["resources"][0]["name"]
    done = api.wait_for(created.json()["id"], {"completed"}, timeout=180)
    _as_planned(done)
    account_id = done["account_id"]

    group = _group_id(sandbox, "team-payments")
    assert _assignments(sandbox, account_id) == [
        ("ReadOnlyAccess", group),
        ("SettingsOperator", group),
    ]
    budget = _budget(sandbox, account_id)
    assert budget is not None and float(budget["BudgetLimit"]["Amount"]) == 5000
    assert budget["CostFilters"] == {"LinkedAccount": [account_id]}
    payer = sandbox.client("sts").get_caller_identity()["Account"]
    notes = sandbox.client("budgets").describe_notifications_for_budget(
        AccountId=payer, BudgetName=f"vend-{account_id}"
    )["Notifications"]
    assert sorted(n["Threshold"] for n in notes) == [80.0, 100.0]
    account = sandbox.client("account")
    for kind, email in (
        ("BILLING", "finance@example.com"),
        ("OPERATIONS", "ops@example.com"),
        ("SECURITY", "sec@example.com"),
    ):
        contact = account.get_alternate_contact(AccountId=account_id, AlternateContactType=kind)
        assert contact["AlternateContact"]["EmailAddress"] == email
    aliases = _member(sandbox, account_id, "iam").list_account_aliases()["AccountAliases"]
    assert aliases == [f"t-{body['account_name']}"]
    assert [_region_status(sandbox, account_id, r) for r in REGIONS] == ["ENABLED", "ENABLED"]
    assert _default_vpc_regions(sandbox, account_id) == []
    vpcs = next(s for s in done["steps"] if s["name"] == "delete_default_vpcs")
    assert "deleted in 19 of 19 regions" in vpcs["detail"], vpcs["detail"]

    # A decommission takes back what the settings made outside the account.
    change = decommission_when_managed(api, account_id, body["account_name"])
    api.act("bob", change["id"], "approve", {})
    closed = api.wait_for(change["id"], {"completed"}, timeout=180)
    _as_planned(closed)
    ran = {s["name"]: s["status"] for s in closed["steps"]}
    assert ran["remove_access"] == ran["delete_budget"] == "succeeded"
    assert _assignments(sandbox, account_id) == []
    assert _budget(sandbox, account_id) is None


def test_settings_outside_the_ous_bounds_are_refused_with_the_field(
    api: Api, new_body: Body
) -> None:
    over = api.create("alice", _body(new_body, budget={"monthly_usd": 60000}))
    assert over.status_code == 422, over.text
    error = over.json()["errors"][0]
    assert error["loc"] == ["body", "budget", "monthly_usd"] and "1000-50000" in error["msg"]
    missing = api.create("alice", _body(new_body, budget=None))
    assert missing.status_code == 422 and "requires a monthly budget" in missing.text
    no_group = api.create("alice", _body(new_body, access=None))
    assert no_group.status_code == 422
    assert no_group.json()["errors"][0]["loc"] == ["body", "access", "group"]
    elsewhere = api.create(
        "alice",
        new_body(organizational_unit="Sandbox", environment="sandbox", budget={"monthly_usd": 5}),
    )
    assert elsewhere.status_code == 422 and "sets no budget" in elsewhere.text


def test_a_root_email_left_out_is_made_from_the_template(api: Api, new_body: Body) -> None:
    # An OU that asks for an approval, so the request can be cancelled before it runs: one that
    # ran on would race the next test for the sandbox's hold rules.
    body = new_body()
    del body["account_email"]
    preview = api.call("POST", "/v1/account-requests/preview", "alice", json=body)
    assert preview.status_code == 200, preview.text
    made = f"aws+{body['account_name']}@example.com"
    assert made in preview.json()["steps"][0]["resources"][0]["name"]
    created = api.create("alice", body)
    assert created.status_code == 201, created.text
    assert created.json()["request"]["account_email"] == made
    cancelled = api.act("alice", created.json()["id"], "cancel", {"reason": "test done"})
    assert cancelled.status_code == 200, cancelled.text


@pytest.mark.resilience
def test_a_worker_killed_mid_assignment_and_mid_region_enablement_makes_one_of_each(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    body = _body(new_body)
    sandbox.fault(service="sso", action="CreateAccountAssignment", hold=True, times=1)
    sandbox.fault(service="account", action="EnableRegion", hold=True, times=1)
    req = api.create("alice", body).json()

    def held(step: str) -> Callable[[], bool]:
        def ready() -> bool:
            if sandbox.state()["held"]["settings"] < 1:
                return False
            state = api.get("carol", req["id"]).json()
            return next(s for s in state["steps"] if s["name"] == step)["status"] == "running"

        return ready

    flow = workflow_id(req["id"])
    killed = kill_worker_when(stack, held("assign_access"), "a held assignment", flow)
    resumed(stack, killed, "assign_access")  # while AWS still works
    assert sandbox.release() >= 1
    killed = kill_worker_when(stack, held("enable_regions"), "a held region", flow)
    resumed(stack, killed, "enable_regions")
    assert sandbox.release() >= 1
    done = api.wait_for(req["id"], {"completed"}, timeout=180)
    after = sandbox.http.get("/_sandbox/settings").json()
    group = _group_id(sandbox, "team-payments")
    assert _assignments(sandbox, done["account_id"]) == [
        ("ReadOnlyAccess", group),
        ("SettingsOperator", group),
    ]
    # One creation request per assignment, one EnableRegion per region: the resumed attempts
    # waited for what the killed ones had asked.
    made = [a for a in after["assignments"] if a["account"] == done["account_id"]]
    assert len(made) == 2, made
    assert after["enable_region_calls"][done["account_id"]] == 2
    assert [_region_status(sandbox, done["account_id"], r) for r in REGIONS] == ["ENABLED"] * 2


def test_a_cancel_after_the_settings_removes_what_they_made(
    api: Api, sandbox: Sandbox, new_body: Body, sunnypay: HttpEmulator
) -> None:
    # The customer check cannot answer, so the request goes ahead; Sunny Pay rejects it later
    # and the request parks at register_billing, after every setting.
    sunnypay.fault(
        service="sunnypay", action="GET /v1/customers/cust-ghost", error="down", status=503
    )
    body = _body(new_body, billing={"customer_id": "cust-ghost"})
    req = api.create("alice", body)
    assert req.status_code == 201, req.text
    request_id = req.json()["id"]
    parked = api.wait_for(request_id, {"waiting_for_operator"}, timeout=180)
    account_id = parked["account_id"]
    assert _budget(sandbox, account_id) is not None
    assert api.act("alice", request_id, "cancel", {"reason": "not needed"}).status_code == 200
    final = api.wait_for(request_id, {"cancelled"}, timeout=180)
    settings = {
        "delete_default_vpcs",
        "enable_regions",
        "set_account_alias",
        "set_alternate_contacts",
        "create_budget",
        "assign_access",
    }
    final = eventually(
        lambda: api.get("alice", request_id).json(),
        lambda state: settings <= {c["step"] for c in state["compensations"]},
        "every setting's compensation recorded",
        timeout=90,
    )
    undone = {c["step"]: c["status"] for c in final["compensations"]}
    assert all(undone[s] == "undone" for s in settings), final["compensations"]
    assert _assignments(sandbox, account_id) == []
    assert _budget(sandbox, account_id) is None
    account = sandbox.client("account")
    with pytest.raises(account.exceptions.ResourceNotFoundException):
        account.get_alternate_contact(AccountId=account_id, AlternateContactType="BILLING")
    assert _member(sandbox, account_id, "iam").list_account_aliases()["AccountAliases"] == []
    wait_until(
        lambda: {_region_status(sandbox, account_id, r) for r in REGIONS} == {"DISABLED"},
        "the enabled regions disabled again",
        timeout=30,
    )
    assert len(_default_vpc_regions(sandbox, account_id)) == 17  # the default regions again


def test_settings_changed_by_hand_show_as_drift_that_a_repair_leaves_to_a_person(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    """The drift check looks at the vend-time settings too: a budget deleted, a contact changed
    and an alias removed in the console are found; no update step puts them back, so a repair
    says so, and the next check sees what a person put back."""
    created = api.create("alice", _body(new_body)).json()
    done = api.wait_for(created["id"], {"completed"}, timeout=180)
    account_id = done["account_id"]

    def account() -> dict[str, Any]:
        return dict(api.call("GET", f"/v1/accounts/{account_id}", "carol").json())

    wait_until(lambda: account().get("status") == "active", "the account managed")
    payer = sandbox.client("sts").get_caller_identity()["Account"]
    sandbox.client("budgets").delete_budget(AccountId=payer, BudgetName=f"vend-{account_id}")
    sandbox.client("account").put_alternate_contact(
        AccountId=account_id,
        AlternateContactType="BILLING",
        Name="Someone",
        Title="Else",
        EmailAddress="someone@example.com",
        PhoneNumber="+1 555 0199",
    )
    iam = _member(sandbox, account_id, "iam")
    (alias,) = iam.list_account_aliases()["AccountAliases"]
    iam.delete_account_alias(AccountAlias=alias)

    def check() -> list[tuple[str, str, str]]:
        before = account().get("last_checked_at")
        started = api.call("POST", "/v1/drift-checks", "carol", json={"account_ids": [account_id]})
        assert started.status_code == 201, started.text
        now = eventually(
            account,
            lambda found: found.get("last_checked_at") != before,
            "the drift check reported",
            timeout=120,
        )
        return sorted((d["what"], d["expected"], d["found"]) for d in now["drift"])

    assert check() == [
        ("account_alias", alias, "missing"),
        ("alternate_contact:billing", "finance@example.com", "someone@example.com"),
        ("budget", "5000 USD", "missing"),
    ]
    repair = api.call(
        "POST", f"/v1/accounts/{account_id}/repair", "carol", json={"justification": "put back"}
    )
    assert repair.status_code == 409 and "set it by hand" in repair.json()["detail"], repair.text
    iam.create_account_alias(AccountAlias=alias)
    assert [what for what, _, _ in check()] == ["alternate_contact:billing", "budget"]
