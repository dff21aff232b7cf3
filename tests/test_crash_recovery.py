"""SIGKILL of the worker while a Control Tower enrollment or a StackSet deployment is in flight.

The sandbox holds the operation in progress (a fault-plan ``hold``) so the kill lands mid-step,
not before or after it. A new worker resumes the step; the proof is that AWS holds exactly one of
everything afterwards, which is what idempotent activities promise. The create_account, Workload
Security and billing kills are in test_step_failures and test_protection_and_billing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.stack_set_batches import BATCHER_ID
from common.temporal_client import workflow_id
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, Sandbox, kill_worker_when, resumed
from tests.waiting import wait_until
from workflows.coordinator import COORDINATOR_ID

Body = Callable[..., dict[str, Any]]


def _step(req: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in req["steps"] if s["name"] == name)


def _kill_worker_while_held(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, request_id: str, step: str, service: str
) -> None:
    """Wait until ``step`` runs and the sandbox holds its operation, then SIGKILL the worker,
    start a new one and let the operation finish."""

    def held() -> bool:
        running = _step(api.get("carol", request_id).json(), step)["status"] == "running"
        return running and sandbox.state()["held"][service] >= 1

    # A Control Tower step's activity runs in the coordinator's workflow, a new account's
    # StackSet instances in the batcher's.
    flows = [workflow_id(request_id), COORDINATOR_ID, BATCHER_ID]
    killed = kill_worker_when(stack, held, f"{step} with a held {service} operation", *flows)
    resumed(stack, killed, step)  # while AWS still works on it
    assert sandbox.release() >= 1


def _operations_for(sandbox: Sandbox, account_id: str) -> list[dict[str, Any]]:
    return [o for o in sandbox.control_tower()["operations"] if account_id in o["accounts"]]


def test_killed_mid_baseline_reset_enrolls_once(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    sandbox.fault(service="controltower", action="ResetEnabledBaseline", hold=True, times=1)
    req = api.create("alice", new_body(organizational_unit="Sandbox", environment="sandbox"))
    request_id = req.json()["id"]
    _kill_worker_while_held(api, sandbox, stack, request_id, "enroll_control_tower", "controltower")
    done = api.wait_for(request_id, {"completed"}, timeout=120)
    account = done["account_id"]
    operations = _operations_for(sandbox, account)
    assert len(operations) == 1
    assert sandbox.control_tower()["enrolled_accounts"][account] == "SUCCEEDED"
    # The coordinator's activity was retried and adopted the reset the first attempt started.
    assert _step(done, "enroll_control_tower")["detail"] == (
        f"enrolled by OU operation {operations[0]['id']}"
    )


def test_killed_mid_account_factory_provisions_once(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    body = new_body(organizational_unit="Experiments/Factory", environment="dev")
    sandbox.fault(
        service="servicecatalog",
        action="ProvisionProduct",
        hold=True,
        match=body["account_email"],
        times=1,
    )
    request_id = api.create("alice", body).json()["id"]
    _kill_worker_while_held(api, sandbox, stack, request_id, "enroll_control_tower", "controltower")
    done = api.wait_for(request_id, {"completed"}, timeout=120)
    products = sandbox.client("servicecatalog").search_provisioned_products(
        Filters={"SearchQuery": [f"name:vend-{body['account_name']}"]}
    )["ProvisionedProducts"]
    assert [p["Status"] for p in products] == ["AVAILABLE"]
    provisions = [
        o
        for o in sandbox.control_tower()["operations"]
        if o["type"] == "PROVISION" and o["target"] == body["account_email"]
    ]
    assert len(provisions) == 1
    assert sandbox.control_tower()["enrolled_accounts"][done["account_id"]] == "SUCCEEDED"


def test_killed_mid_stack_set_deployment_deploys_once(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    creates_before = sandbox.state()["calls"].get("cloudformation:CreateStackInstances", 0)
    sandbox.fault(
        service="cloudformation",
        action="CreateStackInstances",
        hold=True,
        match="vend-audit-role",
        times=1,
    )
    req = api.create("alice", new_body(organizational_unit="Sandbox", environment="sandbox"))
    request_id = req.json()["id"]
    _kill_worker_while_held(api, sandbox, stack, request_id, "apply_baselines", "cloudformation")
    done = api.wait_for(request_id, {"completed"}, timeout=120)
    instances = sandbox.stack_instances("vend-audit-role", done["account_id"])
    assert [(i["Region"], i["Status"]) for i in instances] == [("us-east-1", "CURRENT")]
    creates = sandbox.state()["calls"].get("cloudformation:CreateStackInstances", 0)
    assert creates - creates_before == 1
    assert _step(done, "apply_baselines")["attempts"] == 2


def test_sigterm_drains_the_worker_and_a_new_one_resumes(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    """A deploy's SIGTERM: the worker stops polling, gives running activities its graceful
    shutdown time (3 s in the suite), exits cleanly; the step resumes on the next worker."""
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    sandbox.fault(
        service="organizations", action="CreateAccount", hold=True, match=body["account_email"]
    )
    request_id = api.create("alice", body).json()["id"]
    wait_until(lambda: bool(sandbox.state()["held"]["organizations"]), "CreateAccount held")
    worker = stack.processes["worker"]
    assert worker.popen is not None
    # SIGTERM, then SIGKILL if it has not left within 15 s: five times its graceful shutdown
    # time (3 s), after which the held activity is abandoned to a retry, not waited for.
    worker.stop(timeout=15)
    exited = worker.popen.returncode
    stack.start_worker()  # first: a failure here must not leave the other tests without one
    assert exited == 0, f"the worker should drain and exit cleanly on SIGTERM; it ended {exited}"
    assert sandbox.release() >= 1
    done = api.wait_for(request_id, {"completed"}, timeout=120)
    assert len(sandbox.accounts_with_email(body["account_email"])) == 1
    assert len(sandbox.creations_for(body["account_name"])) == 1
    assert sandbox.ou_path_of(done["account_id"]) == "Sandbox"
