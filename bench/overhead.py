"""Engine overhead: N requests through the whole engine versus a plain script that makes the same
AWS and HTTP calls for N accounts at the same concurrency, in the same run, against the same
sandbox with no artificial latency.

What the script does per account is what the engine does for an auto-approved request in
Bench/Plain (and what a careful hand-written script must do too): check the name and email are
free and the billing customer exists, CreateAccount and poll it, resolve the OU and move and tag
the account, deploy the baseline StackSet instance (waiting its turn on the StackSet) and poll
the operation, register with Sunny Pay and poll until active. Same poll interval as the engine.
What the script does not have is what the engine is for: durability, approvals, an audit trail,
retries across crashes, a coordinator for Control Tower's limits.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import ClientError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.harness import (
    Result,
    aws_calls,
    body,
    calls_since,
    cpu_seconds,
    cpu_used,
    per_item,
    percentile,
    stack,
    wait_all,
)
from common.temporal_client import workflow_id
from sandbox import fleet

POLL = 0.2
OU = "Bench/Plain"


class PlainScript:
    """The baseline: straight-line boto3/httpx calls, no engine."""

    def __init__(self, aws_endpoint: str, sunnypay_url: str, api_key: str) -> None:
        cfg = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=128)
        common: dict[str, Any] = {
            "endpoint_url": aws_endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "bench-script",
            "aws_secret_access_key": "bench-script",
            "config": cfg,
        }
        self.endpoint = aws_endpoint
        self.org = boto3.client("organizations", **common)
        self.cfn = boto3.client("cloudformation", **common)
        self.adopted = 0  # creations retried by botocore and adopted
        self.pay = httpx.Client(
            base_url=sunnypay_url,
            headers={"Authorization": f"Bearer {api_key}"},
            limits=httpx.Limits(max_connections=128),
        )

    def _account_with_email(self, email: str) -> str:
        for page in self.org.get_paginator("list_accounts").paginate():
            for account in page["Accounts"]:
                if account["Email"] == email:
                    return str(account["Id"])
        raise LookupError(email)

    def vend(self, req: dict[str, Any]) -> float:
        started = time.monotonic()
        # Checks: the name and email are free, the billing customer exists.
        for page in self.org.get_paginator("list_accounts").paginate():
            assert not [a for a in page["Accounts"] if a["Email"] == req["account_email"]]
        self.org.list_create_account_status(States=["IN_PROGRESS"])
        assert self.pay.get(f"/v1/customers/{req['billing']['customer_id']}").status_code == 200
        # Account.
        created = self.org.create_account(
            Email=req["account_email"],
            AccountName=req["account_name"],
            RoleName="OrganizationAccountAccessRole",
        )["CreateAccountStatus"]["Id"]
        while True:
            status = self.org.describe_create_account_status(CreateAccountRequestId=created)[
                "CreateAccountStatus"
            ]
            if status["State"] == "SUCCEEDED":
                account = status["AccountId"]
                break
            if status.get("FailureReason") == "EMAIL_ALREADY_EXISTS":
                # CreateAccount has no idempotency token: botocore retried a call whose first
                # try had succeeded (a reset connection under load). Adopt our own account.
                account = self._account_with_email(req["account_email"])
                self.adopted += 1
                break
            assert status["State"] == "IN_PROGRESS", status
            time.sleep(POLL)
        # OU.
        parent = self.org.list_roots()["Roots"][0]["Id"]
        for name in OU.split("/"):
            ous = self.org.list_organizational_units_for_parent(ParentId=parent)
            parent = next(o["Id"] for o in ous["OrganizationalUnits"] if o["Name"] == name)
        source = self.org.list_parents(ChildId=account)["Parents"][0]["Id"]
        self.org.move_account(AccountId=account, SourceParentId=source, DestinationParentId=parent)
        self.org.tag_resource(ResourceId=account, Tags=[{"Key": "bench", "Value": "script"}])
        # Baseline: the StackSet's execution role first (through the member role, as the
        # engine makes it: without it AWS, and the sandbox, fail the instance), then one
        # StackSet operation at a time, so wait for our turn.
        fleet.give_stack_set_role(self.endpoint, account)
        while True:
            try:
                op = self.cfn.create_stack_instances(
                    StackSetName="vend-audit-role",
                    Accounts=[account],
                    Regions=["us-east-1"],
                    ParameterOverrides=[
                        {"ParameterKey": "AuditAccountId", "ParameterValue": "111111111111"}
                    ],
                )["OperationId"]
                break
            except ClientError as err:
                if err.response["Error"]["Code"] != "OperationInProgressException":
                    raise
                time.sleep(POLL)
        while True:
            state = self.cfn.describe_stack_set_operation(
                StackSetName="vend-audit-role", OperationId=op
            )["StackSetOperation"]["Status"]
            if state == "SUCCEEDED":
                break
            assert state in ("RUNNING", "QUEUED"), state
            time.sleep(POLL)
        # Billing.
        reg = self.pay.post(
            "/v1/registrations",
            json={
                "aws_account_id": account,
                "account_name": req["account_name"],
                "customer_id": req["billing"]["customer_id"],
                "cost_center": req["cost_center"],
                "contact_email": req["owner_email"],
                "services": ["aws"],
            },
            headers={"Idempotency-Key": req["account_name"]},
        ).json()["registration_id"]
        while self.pay.get(f"/v1/registrations/{reg}").json()["status"] != "active":
            time.sleep(POLL)
        return time.monotonic() - started


async def tasks_per_request(
    address: str, ids: list[str], requests: int | None = None
) -> dict[str, float]:
    """Workflow tasks and activities per request, from the request workflows' histories (``ids``,
    all or a sample), and the claim registry's tasks divided among the ``requests`` of the run
    (all of ``ids`` unless said; the long-lived coordinator, batcher and account workflows are
    shared and left out)."""
    client = await Client.connect(address)
    counts = {"workflow_tasks": 0, "activities": 0, "local_activities": 0}
    for request_id in ids:
        history = await client.get_workflow_handle(workflow_id(request_id)).fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                counts["workflow_tasks"] += 1
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                counts["activities"] += 1
            elif (
                event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
            ):
                counts["local_activities"] += 1
    figures: dict[str, Any] = {
        f"{k}_per_request": round(v / len(ids), 1) for k, v in counts.items()
    }
    registry_tasks = 0  # shared by every request of the run (and its warm-up): per request
    async for shard in client.list_workflows("WorkflowType = 'ClaimRegistry'"):
        history = await client.get_workflow_handle(shard.id, run_id=shard.run_id).fetch_history()
        registry_tasks += sum(
            e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in history.events
        )
    figures["claim_registry_tasks_per_request"] = round(registry_tasks / (requests or len(ids)), 2)
    sample = await client.get_workflow_handle(workflow_id(ids[0])).fetch_history()
    figures["sample_request_tasks"] = _task_decisions(sample.events)
    return figures


def _task_decisions(events: Any) -> list[str]:
    """For one request, what woke each workflow task and what it decided: a task that wakes on
    an event and decides nothing is a round trip and a commit that lever 4 can take away."""
    tasks: list[str] = []
    woke: list[str] = []
    decided: list[str] | None = None  # the commands of the task that completed last
    for event in events:
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            decided = []
            tasks.append("")
            continue
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            kind = event.marker_recorded_event_attributes.marker_name
        if decided is not None and event.event_type in _COMMANDS:
            decided.append(kind)
            tasks[-1] = f"{'+'.join(woke) or '-'} -> {'+'.join(decided)}"
        elif event.event_type not in _TASK_EVENTS:
            if decided is not None:
                if not decided:
                    tasks[-1] = f"{'+'.join(woke) or '-'} -> nothing"
                woke, decided = [], None
            woke.append(kind)
    if decided is not None and not decided:
        tasks[-1] = f"{'+'.join(woke) or '-'} -> nothing"
    return tasks


_TASK_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
}
_COMMANDS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_TIMER_CANCELED,
    EventType.EVENT_TYPE_MARKER_RECORDED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


def run(n: int = 100) -> Result:
    with stack(
        create_account_seconds=0.0,
        control_tower_seconds=0.0,
        stack_set_seconds=0.0,
        sunnypay_activation_seconds=0.0,
        ws_sync_seconds=0.0,
        ssm_run_seconds=0.0,
    ) as s:
        c = s.config
        token = s.tokens()["alice"]
        api = httpx.Client(base_url=c.api_url, timeout=60, limits=httpx.Limits(max_connections=64))
        # Warm up both paths once (imports, connection pools, the coordinator).
        script = PlainScript(c.aws_endpoint, c.sunnypay_url, s.secrets["sunnypay_api_key"])
        script.vend(body(OU))
        warm = api.post(
            "/v1/account-requests",
            json=body(OU),
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        wait_all(api, token, [warm["id"]], {"completed"}, 120)

        # The script: n accounts, n at once.
        calls0 = aws_calls(c.aws_endpoint)
        cpu0 = cpu_seconds(s)
        started = time.monotonic()
        with ThreadPoolExecutor(n) as pool:
            per_account = list(pool.map(script.vend, [body(OU) for _ in range(n)]))
        script_wall = time.monotonic() - started
        script_cpu = cpu_used(cpu0, cpu_seconds(s))
        calls1 = aws_calls(c.aws_endpoint)
        script_calls = calls_since(calls0, calls1)

        # The engine: n requests submitted at once (as many clients would), until all complete.
        def submit(b: dict[str, Any]) -> tuple[str, float]:
            resp = api.post(
                "/v1/account-requests", json=b, headers={"Authorization": f"Bearer {token}"}
            )
            resp.raise_for_status()
            return resp.json()["id"], time.time()

        cpu0 = cpu_seconds(s)
        t0 = time.time()
        with ThreadPoolExecutor(32) as pool:
            submitted = list(pool.map(submit, [body(OU) for _ in range(n)]))
        ids = [i for i, _ in submitted]
        finals = wait_all(api, token, ids, {"completed", "waiting_for_operator"}, 900)
        engine_cpu = cpu_used(cpu0, cpu_seconds(s))
        engine_calls = calls_since(calls1, aws_calls(c.aws_endpoint))
        tasks = asyncio.run(tasks_per_request(c.temporal_address, ids))
        ends = [
            datetime.fromisoformat(f["steps"][-1]["finished_at"].replace("Z", "+00:00")).timestamp()
            for f in finals.values()
            if f["status"] == "completed"
        ]
        engine_wall = max(ends) - t0 if ends else float("nan")
        completed = sum(1 for f in finals.values() if f["status"] == "completed")
        ratio = engine_wall / script_wall
        return Result(
            name="overhead",
            goal="engine wall time <= 1.5x the plain script's",
            met_goal=ratio <= 1.5 and completed == n,
            summary=(
                f"overhead: {n} accounts, engine {engine_wall:.1f}s vs script {script_wall:.1f}s "
                f"= {ratio:.2f}x (goal <= 1.5x); {completed}/{n} completed; CPU per account: "
                f"engine {1000 * sum(engine_cpu.values()) / n:.0f} ms "
                f"(Temporal {1000 * engine_cpu.get('temporal', 0) / n:.0f}, worker "
                f"{1000 * engine_cpu.get('worker', 0) / n:.0f}, sandbox AWS "
                f"{1000 * engine_cpu.get('sandbox-aws', 0) / n:.0f}), script "
                f"{1000 * sum(script_cpu.values()) / n:.0f} ms"
            ),
            figures={
                "requests": n,
                "engine_wall_seconds": round(engine_wall, 2),
                "script_wall_seconds": round(script_wall, 2),
                "ratio": round(ratio, 3),
                "engine_completed": completed,
                "script_creations_adopted_after_a_retried_create": script.adopted,
                "script_per_account_p50_seconds": round(percentile(per_account, 50), 2),
                "script_per_account_p99_seconds": round(percentile(per_account, 99), 2),
                "poll_interval_seconds": POLL,
                # CPU seconds by process over each phase (the engine's includes its waiting
                # for the last request, through the list endpoint).
                "script_cpu_seconds": script_cpu,
                "engine_cpu_seconds": engine_cpu,
                "script_cpu_ms_per_account": round(1000 * sum(script_cpu.values()) / n),
                "engine_cpu_ms_per_request": round(1000 * sum(engine_cpu.values()) / n),
                # What each made AWS answer, per account (the sandbox's CPU follows it); the
                # engine's include its waiting, as the script's its polling.
                "script_aws_calls_per_account": per_item(script_calls, n),
                "engine_aws_calls_per_request": per_item(engine_calls, n),
                # From the histories: what each request's own workflow and its claims cost the
                # dev server (each workflow task is a round trip and a commit).
                **tasks,
            },
            limits=(
                "Both share one 2-core machine with the sandbox, Temporal and the worker. The "
                "engine's extra is CPU (engine_cpu_seconds: the dev server and the worker, for "
                "claims, validation, six steps and notifications per request) and the dev "
                "server's commits waiting on the data filesystem (machine.data_filesystem)."
            ),
        )
