"""Workload Security enrollment and Sunny Pay registration, end to end with both emulators:
exactly one role, connector, association and registration, whatever faults and crashes do."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from common.temporal_client import workflow_id
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, HttpEmulator, Sandbox, kill_worker_when, vend_cli
from tests.waiting import eventually

Body = Callable[..., dict[str, Any]]


def _protected(new_body: Body, **kw: Any) -> dict[str, Any]:
    return new_body(organizational_unit="Experiments/Protected", environment="dev", **kw)


def _step(req: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in req["steps"] if s["name"] == name)


def _connectors(ws: HttpEmulator, account: str) -> list[dict[str, Any]]:
    return [c for c in ws.state()["connectors"] if c["accountId"] == account]


def _registrations(sp: HttpEmulator, account: str) -> list[dict[str, Any]]:
    return [r for r in sp.state()["registrations"] if r["aws_account_id"] == account]


def _launch_instance(sandbox: Sandbox, account: str) -> str:
    ec2 = sandbox.member_client(account, "ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return str(
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    )


def _assert_exactly_one_of_everything(
    sandbox: Sandbox, ws: HttpEmulator, sp: HttpEmulator, account: str
) -> None:
    assert len(_connectors(ws, account)) == 1
    ssm = sandbox.member_client(account, "ssm")
    assert len(ssm.list_associations()["Associations"]) == 1
    iam = sandbox.member_client(account, "iam")
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert roles.count("VendWorkloadSecurityConnector") == 1
    regs = _registrations(sp, account)
    assert [r["status"] for r in regs] == ["active"]


def test_account_ends_protected_and_billed(
    api: Api,
    sandbox: Sandbox,
    workload_security: HttpEmulator,
    sunnypay: HttpEmulator,
    new_body: Body,
) -> None:
    req = api.create("alice", _protected(new_body)).json()
    done = api.wait_for(req["id"], {"completed"})
    account = done["account_id"]
    _assert_exactly_one_of_everything(sandbox, workload_security, sunnypay, account)
    assert _step(done, "enroll_workload_security")["status"] == "succeeded"
    assert (
        done["workload_security_connector_id"] == _connectors(workload_security, account)[0]["ID"]
    )
    assert (
        done["billing_registration_id"] == _registrations(sunnypay, account)[0]["registration_id"]
    )
    iam = sandbox.member_client(account, "iam")
    trust = iam.get_role(RoleName="VendWorkloadSecurityConnector")["Role"][
        "AssumeRolePolicyDocument"
    ]
    statement = (json.loads(trust) if isinstance(trust, str) else trust)["Statement"][0]
    assert "147995105371" in json.dumps(statement["Principal"])
    assert statement["Condition"]["StringEquals"]["sts:ExternalId"]

    # An instance launched after enrollment gets the agent, which activates, with the policy.
    instance = _launch_instance(sandbox, account)
    computer = eventually(
        lambda: next(
            (
                c
                for c in workload_security.state()["computers"]
                if c["ec2VirtualMachineSummary"]["instanceID"] == instance
            ),
            {},
        ),
        lambda c: bool(c) and c["computerStatus"]["agentStatus"] == "active",
        "the agent active on the new instance",
        timeout=30,
    )
    assert computer["policyID"] == 1  # "Base Policy", the configured default


def test_unprotected_ou_skips_workload_security(
    api: Api, workload_security: HttpEmulator, sunnypay: HttpEmulator, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    done = api.wait_for(api.create("alice", body).json()["id"], {"completed"})
    assert _step(done, "enroll_workload_security")["status"] == "skipped"
    assert _connectors(workload_security, done["account_id"]) == []
    regs = _registrations(sunnypay, done["account_id"])
    assert [r["status"] for r in regs] == ["active"]  # billed all the same


def test_ou_requiring_protection_refuses_a_request_without_it(api: Api, new_body: Body) -> None:
    resp = api.create("alice", _protected(new_body, workload_security={"enabled": False}))
    assert resp.status_code == 422
    assert ["body", "workload_security", "enabled"] in [e["loc"] for e in resp.json()["errors"]]


def test_unknown_billing_customer_is_refused_before_approval(api: Api, new_body: Body) -> None:
    resp = api.create("alice", new_body(billing={"customer_id": "cust-nobody"}))
    assert resp.status_code == 422, resp.text
    assert ["body", "billing", "customer_id"] in [e["loc"] for e in resp.json()["errors"]]


def test_rejected_registration_shows_its_reason(
    api: Api, sunnypay: HttpEmulator, new_body: Body
) -> None:
    # The customer check cannot answer, so the request goes ahead; Sunny Pay rejects it later.
    sunnypay.fault(
        service="sunnypay", action="GET /v1/customers/cust-ghost", error="down", status=503
    )
    body = new_body(
        organizational_unit="Sandbox", environment="sandbox", billing={"customer_id": "cust-ghost"}
    )
    req = api.create("alice", body)
    assert req.status_code == 201, req.text
    parked = api.wait_for(req.json()["id"], {"waiting_for_operator"})
    error = _step(parked, "register_billing")["error"]
    assert error["type"] == "BillingRejected"
    assert "unknown customer cust-ghost" in error["message"]


def test_faults_do_not_duplicate_anything(
    api: Api,
    sandbox: Sandbox,
    workload_security: HttpEmulator,
    sunnypay: HttpEmulator,
    new_body: Body,
) -> None:
    workload_security.fault(
        service="workload-security", error="unavailable", status=503, probability=0.3
    )
    workload_security.fault(
        service="workload-security", error="throttled", status=429, probability=0.2
    )
    sunnypay.fault(service="sunnypay", error="throttled", status=429, probability=0.3)
    sunnypay.fault(service="sunnypay", error="internal", status=500, probability=0.2)
    ids = [api.create("alice", _protected(new_body)).json()["id"] for _ in range(3)]
    for request_id in ids:
        done = api.wait_for(request_id, {"completed", "waiting_for_operator"}, timeout=120)
        assert done["status"] == "completed", [s for s in done["steps"] if s["error"]]
        _assert_exactly_one_of_everything(sandbox, workload_security, sunnypay, done["account_id"])
    calls = workload_security.state()["calls"]
    assert sum(calls.values()) > 0


def test_worker_killed_mid_step_creates_nothing_twice(
    api: Api,
    sandbox: Sandbox,
    stack: EmbeddedStack,
    workload_security: HttpEmulator,
    sunnypay: HttpEmulator,
    new_body: Body,
) -> None:
    # Slow the connector search down (429s with Retry-After) so the kill lands inside the step.
    workload_security.fault(
        service="workload-security",
        action="POST /api/awsconnectors/search",
        error="throttled",
        status=429,
        times=3,
    )
    sunnypay.configure(activation_seconds=4)
    try:
        req = api.create("alice", _protected(new_body)).json()

        def enrolling() -> bool:
            state = api.get("carol", req["id"]).json()
            return _step(state, "enroll_workload_security")["status"] == "running"

        kill_worker_when(stack, enrolling, "enrollment running", workflow_id(req["id"]))
        eventually(
            lambda: api.get("carol", req["id"]).json(),
            lambda state: (
                _step(state, "register_billing")["status"] == "running"
                and bool(state["account_id"])
                and bool(_registrations(sunnypay, state["account_id"]))
            ),
            "register_billing running with its registration made",
        )
        stack.processes["worker"].kill()  # again, while billing waits for activation
        stack.start_worker()
        done = api.wait_for(req["id"], {"completed"}, timeout=120)
    finally:
        sunnypay.configure(activation_seconds=0.5)
    _assert_exactly_one_of_everything(sandbox, workload_security, sunnypay, done["account_id"])


def test_a_refused_api_key_holds_the_step_with_the_fix_and_never_shows_the_key(
    api: Api,
    stack: EmbeddedStack,
    sandbox: Sandbox,
    workload_security: HttpEmulator,
    sunnypay: HttpEmulator,
    new_body: Body,
) -> None:
    """The worker's doctor finds the key refused: the step waits with the finding and the fix
    (not parked, no attempt spent), and goes on by itself once a worker has the right key."""
    stack.processes["worker"].stop()
    good_env = stack.worker_env
    stack.worker_env = lambda: {**good_env(), "VEND_WORKLOAD_SECURITY__API_KEY": "not-the-key"}  # type: ignore[method-assign]
    try:
        stack.start_worker()
        req = api.create("alice", _protected(new_body)).json()
        state = eventually(
            lambda: api.get("alice", req["id"]).json(),
            lambda state: (_step(state, "enroll_workload_security").get("detail") or "").startswith(
                "waiting for a prerequisite"
            ),
            "enroll_workload_security waiting for its prerequisite",
        )
        step = _step(state, "enroll_workload_security")
        assert "key was refused (401)" in step["detail"], step
        assert "VEND_WORKLOAD_SECURITY__API_KEY" in step["detail"]
        assert "not-the-key" not in json.dumps(state)
        assert state["status"] == "provisioning" and step["attempts"] == 0
    finally:
        stack.processes["worker"].stop()
        stack.worker_env = good_env  # type: ignore[method-assign]
        stack.start_worker()
    done = api.wait_for(req["id"], {"completed"})
    assert _step(done, "enroll_workload_security")["attempts"] == 1
    _assert_exactly_one_of_everything(sandbox, workload_security, sunnypay, done["account_id"])


def test_cost_estimate_follows_the_price_sheet_in_the_api_and_the_cli(
    api: Api, new_body: Body
) -> None:
    """The issue's example: 3 micro-to-medium instances in Workloads/SDLC."""
    body = new_body(
        organizational_unit="Workloads/SDLC",
        environment="dev",
        expected_instances={"micro_to_medium": 3},
    )
    req = api.create("alice", body).json()
    est = req["cost_estimate"]
    assert Decimal(est["workload_security_monthly_usd"]) == Decimal("24.09")
    assert Decimal(est["workload_security_monthly_usd_discounted"]) == Decimal("22.89")
    assert est["managed_monthly_fee_jpy"] == 35_000  # no discount on the managed service
    assert est["managed_initial_fee_jpy"] == 100_000
    assert "managed_monthly_fee_jpy_discounted" not in est
    assert est["budget"] is None  # none stated (tests/test_pricing.py has one)
    shown = vend_cli(api, "alice", "requests", "show", req["id"])
    assert shown.exit_code == 0, shown.output
    assert "Workload Security $22.89/month" in shown.output
    assert "managed operations ¥35,000/month and ¥100,000 once" in shown.output
    bad = api.create("alice", new_body(expected_instances={"large": -1}))
    assert bad.status_code == 422
    unprotected = api.create(
        "alice",
        new_body(
            organizational_unit="Sandbox", environment="sandbox", expected_instances={"large": 3}
        ),
    ).json()
    assert Decimal(unprotected["cost_estimate"]["workload_security_monthly_usd"]) == 0
    assert unprotected["cost_estimate"]["managed_monthly_fee_jpy"] == 0


def test_account_registered_to_another_customer_is_refused(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, sunnypay: HttpEmulator, new_body: Body
) -> None:
    import httpx
    from temporalio.testing import ActivityEnvironment

    from activities.billing import BillingActivities, BillingInput

    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    done = api.wait_for(api.create("alice", body).json()["id"], {"completed"})
    client = httpx.Client(
        base_url=stack.config.sunnypay_url,
        headers={"Authorization": f"Bearer {stack.secrets['sunnypay_api_key']}"},
    )
    acts = BillingActivities(client, poll_interval_seconds=0.1)
    same = BillingInput(  # exactly what the workflow sent: same key, same body
        request_id=done["id"],
        account_id=done["account_id"],
        account_name=body["account_name"],
        customer_id="cust-001",
        plan=None,
        cost_center=body["cost_center"],
        contact_email=body["owner_email"],
        workload_security=False,
    )
    again = ActivityEnvironment().run(acts.register_billing, same)
    assert again.adopted and again.registration_id == done["billing_registration_id"]
    from temporalio.exceptions import ApplicationError

    try:
        ActivityEnvironment().run(
            acts.register_billing,
            BillingInput(
                request_id="someone-else",
                account_id=done["account_id"],
                account_name="x",
                customer_id="cust-002",
                plan=None,
                cost_center="c",
                contact_email="a@example.com",
                workload_security=False,
            ),
        )
    except ApplicationError as err:
        assert err.type == "RegisteredToAnotherCustomer" and err.non_retryable
    else:
        raise AssertionError("a second customer was allowed to register the account")
    assert len(_registrations(sunnypay, done["account_id"])) == 1


def test_role_from_a_baseline_stackset_is_checked_not_made(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body, monkeypatch: Any
) -> None:
    from botocore.config import Config
    from temporalio.exceptions import ApplicationError
    from temporalio.testing import ActivityEnvironment

    from activities.member_accounts import MemberAccountAccess
    from activities.workload_security import (
        WorkloadSecurityActivities,
        WorkloadSecurityClient,
        WorkloadSecurityInput,
    )
    from common.settings import WorkloadSecuritySettings

    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint)
    settings = WorkloadSecuritySettings(
        base_url=f"{stack.config.ws_url}/api",
        api_key=stack.secrets["ws_api_key"],
        role_source="stackset",
    )
    acts = WorkloadSecurityActivities(
        ws=WorkloadSecurityClient(settings),
        members=MemberAccountAccess(
            sandbox.client("sts"), "OrganizationAccountAccessRole", Config(region_name="us-east-1")
        ),
        management_ssm=sandbox.client("ssm"),
        settings=settings,
    )
    protected = api.wait_for(api.create("alice", _protected(new_body)).json()["id"], {"completed"})
    ok = ActivityEnvironment().run(
        acts.enroll_workload_security,
        WorkloadSecurityInput(
            request_id=protected["id"], account_id=protected["account_id"], account_name="p"
        ),
    )
    assert ok.connector_id == protected["workload_security_connector_id"]  # nothing new

    bare = api.wait_for(
        api.create("alice", new_body(organizational_unit="Sandbox", environment="sandbox")).json()[
            "id"
        ],
        {"completed"},
    )
    try:
        ActivityEnvironment().run(
            acts.enroll_workload_security,
            WorkloadSecurityInput(
                request_id=bare["id"], account_id=bare["account_id"], account_name="b"
            ),
        )
    except ApplicationError as err:
        assert err.type == "ConnectorRoleMissing" and err.non_retryable
    else:
        raise AssertionError("a missing StackSet role was not reported")
    iam = sandbox.member_client(bare["account_id"], "iam")
    assert "VendWorkloadSecurityConnector" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
