"""Control Tower enrollment (all three strategies) and baseline StackSets, end to end through the
API against the Control Tower emulator, plus the organization-wide concurrency limits."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sandbox.stack import EmbeddedStack, free_port
from tests.conftest import Api, Sandbox
from tests.waiting import wait_until

Body = Callable[..., dict[str, Any]]


def _auto(new_body: Body, ou: str) -> dict[str, Any]:
    env = "sandbox" if ou == "Sandbox" else "dev"
    return new_body(organizational_unit=ou, environment=env)


def _step(req: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in req["steps"] if s["name"] == name)


def test_baseline_reset_enrolls_and_deploys_baselines(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    req = api.create("alice", _auto(new_body, "Sandbox")).json()
    done = api.wait_for(req["id"], {"completed"})
    account = done["account_id"]
    assert _step(done, "enroll_control_tower")["status"] == "succeeded"
    assert "OU operation" in _step(done, "enroll_control_tower")["detail"]
    assert sandbox.control_tower()["enrolled_accounts"][account] == "SUCCEEDED"
    instances = sandbox.stack_instances("vend-audit-role", account)
    assert [(i["Region"], i["Status"]) for i in instances] == [("us-east-1", "CURRENT")]
    assert _step(done, "apply_baselines")["detail"] == "deployed vend-audit-role"


def test_account_factory_creates_the_execution_role_and_provisions(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    req = api.create("alice", _auto(new_body, "Experiments/Factory")).json()
    done = api.wait_for(req["id"], {"completed"})
    account = done["account_id"]
    assert sandbox.control_tower()["enrolled_accounts"][account] == "SUCCEEDED"
    creds = sandbox.member_credentials(account, "test-check")
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=sandbox.endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert iam.get_role(RoleName="AWSControlTowerExecution")["Role"]["RoleName"]
    sc = sandbox.client("servicecatalog")
    products = sc.search_provisioned_products(
        Filters={"SearchQuery": [f"name:vend-{req['request']['account_name']}"]}
    )["ProvisionedProducts"]
    assert [p["Status"] for p in products] == ["AVAILABLE"]
    assert sandbox.stack_instances("vend-workload-security-role", account)[0]["Status"] == "CURRENT"


def test_auto_enroll_waits_for_control_tower(api: Api, sandbox: Sandbox, new_body: Body) -> None:
    req = api.create("alice", _auto(new_body, "Experiments/Auto")).json()
    done = api.wait_for(req["id"], {"completed"})
    assert sandbox.control_tower()["enrolled_accounts"][done["account_id"]] == "SUCCEEDED"
    assert _step(done, "apply_baselines")["status"] == "skipped"


def test_ungoverned_ou_skips_enrollment(api: Api, new_body: Body) -> None:
    done = api.wait_for(
        api.create("alice", _auto(new_body, "Experiments/Ungoverned")).json()["id"], {"completed"}
    )
    assert _step(done, "enroll_control_tower")["status"] == "skipped"
    assert "not governed" in _step(done, "enroll_control_tower")["detail"]


def test_unregistered_ou_fails_clearly(api: Api, sandbox: Sandbox, new_body: Body) -> None:
    req = api.create("alice", _auto(new_body, "Experiments/Unregistered")).json()
    parked = api.wait_for(req["id"], {"waiting_for_operator"})
    step = _step(parked, "enroll_control_tower")
    assert step["error"]["type"] == "OuNotRegistered"
    assert "not registered" in step["error"]["message"]
    assert step["attempts"] == 1


@pytest.mark.parametrize(
    ("ou", "fault", "error_type", "reason"),
    [
        (
            "Sandbox",
            {"service": "controltower", "action": "ResetEnabledBaseline"},
            "EnrollmentFailed",
            "AWS Config recorder exists in the account",
        ),
        (
            "Experiments/Factory",
            {"service": "servicecatalog", "action": "ProvisionProduct"},
            "AccountFactoryFailed",
            "Account is TAINTED: StackSet AWSControlTowerBP failed",
        ),
        (
            "Experiments/Auto",
            {"service": "controltower", "action": "AutoEnroll"},
            "EnrollmentFailed",
            "Inheritance drift could not be remediated",
        ),
    ],
)
def test_failed_operations_surface_the_aws_reason(
    api: Api,
    sandbox: Sandbox,
    new_body: Body,
    ou: str,
    fault: dict[str, str],
    error_type: str,
    reason: str,
) -> None:
    body = _auto(new_body, ou)
    sandbox.fault(**fault, failure_reason=reason, times=1)
    req = api.create("alice", body).json()
    parked = api.wait_for(req["id"], {"waiting_for_operator"})
    step = _step(parked, "enroll_control_tower")
    assert step["error"]["type"] == error_type
    assert reason in step["error"]["message"]
    # The cause is fixed out of band: the operator retries and the request completes.
    assert api.act("carol", req["id"], "retry", {"step": "enroll_control_tower"}).status_code == 202
    done = api.wait_for(req["id"], {"completed"})
    assert sandbox.control_tower()["enrolled_accounts"][done["account_id"]] == "SUCCEEDED"
    if ou == "Experiments/Factory":
        # AWS keeps a failed product's name until it is terminated (a second ProvisionProduct
        # of the name is a DuplicateResourceException): the retry terminated it first.
        name = f"vend-{body['account_name']}"
        products = sandbox.client("servicecatalog").search_provisioned_products(
            Filters={"SearchQuery": [f"name:{name}"]}
        )["ProvisionedProducts"]
        assert [p["Status"] for p in products] == ["AVAILABLE"], products


def test_failed_stack_instance_reports_region_and_reason(
    api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = _auto(new_body, "Sandbox")
    sandbox.fault(
        service="cloudformation",
        action="CreateStackInstances",
        times=1,
        failure_reason="ResourceLogicalId:AuditRole, ResourceStatusReason: Access denied",
    )
    req = api.create("alice", body).json()
    parked = api.wait_for(req["id"], {"waiting_for_operator"})
    error = _step(parked, "apply_baselines")["error"]
    assert error["type"] == "StackSetOperationFailed"
    assert "us-east-1" in error["message"] and "Access denied" in error["message"]
    assert api.act("carol", req["id"], "retry", {"step": "apply_baselines"}).status_code == 202
    done = api.wait_for(req["id"], {"completed"})
    instances = sandbox.stack_instances("vend-audit-role", done["account_id"])
    assert [i["Status"] for i in instances] == ["CURRENT"]  # updated in place, not duplicated


def test_throttling_and_conflicts_are_retried(api: Api, sandbox: Sandbox, new_body: Body) -> None:
    sandbox.fault(
        service="controltower",
        action="ListEnabledBaselines",
        error="ThrottlingException",
        status=429,
        times=3,
    )
    sandbox.fault(
        service="cloudformation",
        action="CreateStackInstances",
        error="OperationInProgressException",
        times=2,
    )
    req = api.create("alice", _auto(new_body, "Sandbox")).json()
    done = api.wait_for(req["id"], {"completed", "waiting_for_operator"})
    assert done["status"] == "completed", done


def test_limits_hold_across_workers_and_requests_queue_in_order(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    extra = [stack.start_worker(f"worker-{n}", free_port()) for n in (2, 3)]
    try:
        sandbox.reset_control_tower_metrics()
        # Operations long enough that twelve simultaneous requests must queue for five slots.
        sandbox.http.post("/_sandbox/config", json={"control_tower_seconds": 4}).raise_for_status()
        with ThreadPoolExecutor(12) as pool:
            ids = list(
                pool.map(
                    lambda _: api.create("alice", _auto(new_body, "Experiments/Factory")).json()[
                        "id"
                    ],
                    range(12),
                )
            )
        queued_positions: set[int] = set()
        pending = set(ids)

        def observed_all_ended() -> bool:
            for request_id in list(pending):
                req = api.get("carol", request_id).json()
                position = _step(req, "enroll_control_tower")["queue_position"]
                if position:
                    queued_positions.add(position)
                if req["status"] in ("completed", "waiting_for_operator"):
                    pending.discard(request_id)
            return not pending

        wait_until(observed_all_ended, "all twelve requests ended", timeout=120)
        finals = [api.get("carol", i).json() for i in ids]
        assert [f["status"] for f in finals] == ["completed"] * 12, [
            _step(f, "enroll_control_tower") for f in finals if f["status"] != "completed"
        ]
        record = sandbox.control_tower()
        assert record["violations"] == []
        assert 1 < record["max_account_ops"] <= 5
        assert queued_positions, "no request ever showed a queue position"
        print(
            f"\nmax concurrent Control Tower account operations: {record['max_account_ops']}; "
            f"queue positions seen: {sorted(queued_positions)}"
        )
    finally:
        sandbox.http.post("/_sandbox/config", json={"control_tower_seconds": 1})
        for proc in extra:
            proc.stop()


def test_requests_for_one_ou_share_resets(api: Api, sandbox: Sandbox, new_body: Body) -> None:
    sandbox.reset_control_tower_metrics()
    before = len([o for o in sandbox.control_tower()["operations"] if o["kind"] == "ou"])
    ids = [api.create("alice", _auto(new_body, "Sandbox")).json()["id"] for _ in range(6)]
    for request_id in ids:
        api.wait_for(request_id, {"completed"})
    record = sandbox.control_tower()
    resets = len([o for o in record["operations"] if o["kind"] == "ou"]) - before
    assert resets < 6, f"{resets} resets for 6 accounts"
    assert record["max_ou_ops"] <= 1
    assert record["violations"] == []
    print(f"\n6 accounts in one OU enrolled by {resets} OU resets")
