"""The Control Tower coordinator, as a specification: at most ``account_limit`` account
operations at once across the organization, the rest in line and told their place; one OU
operation at a time, every request waiting for the same OU enrolled by one reset; a holder
that ended without releasing freed by the periodic sweep."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.control_tower import OperationResult, ResetInput
from activities.temporal_checks import WorkflowIds
from tests.workflows.harness import QUEUE, worker
from tests.workflows.listeners import SignalListener, heard
from workflows.coordinator import (
    ControlTowerCoordinator,
    CoordinatorState,
    CoordinatorStatus,
    OuEnrollmentRequest,
    SlotRequest,
)

OU_BASELINE = "arn:aws:controltower:us-east-1:111111111111:enabledbaseline/SANDBOX"


class ControlTower:
    """The fake AWS side: each reset recorded; the first runs until told."""

    def __init__(self, running: set[str]) -> None:
        self.resets: list[str] = []
        self.first_may_end = asyncio.Event()
        self.running = running  # the workflows the sweep finds still running

    def activities(self) -> list[object]:
        @activity.defn(name="reset_ou_baseline")
        async def reset_ou_baseline(inp: ResetInput) -> OperationResult:
            self.resets.append(inp.enabled_baseline_arn)
            if len(self.resets) == 1:
                await self.first_may_end.wait()
            return OperationResult(operation_id=f"op-{len(self.resets)}", status="SUCCEEDED")

        @activity.defn(name="running_workflows")
        async def running_workflows(inp: WorkflowIds) -> WorkflowIds:
            return WorkflowIds(ids=[i for i in inp.ids if i in self.running])

        return [reset_ou_baseline, running_workflows]


async def _listeners(env: WorkflowEnvironment, run: str, n: int) -> list[object]:
    return [
        await env.client.start_workflow(SignalListener.run, id=f"req-{run}-{i}", task_queue=QUEUE)
        for i in range(n)
    ]


async def test_account_operations_are_limited_and_the_rest_wait_in_line(
    time_skipping: WorkflowEnvironment,
) -> None:
    env, run = time_skipping, uuid.uuid4().hex[:8]
    aws = ControlTower(running=set())
    async with worker(env, [ControlTowerCoordinator, SignalListener], aws.activities()):
        coordinator = await env.client.start_workflow(
            ControlTowerCoordinator.run,
            CoordinatorState(account_limit=2),
            id=f"coordinator-{run}",
            task_queue=QUEUE,
        )
        requests = await _listeners(env, run, 3)
        for i, r in enumerate(requests):
            await coordinator.signal(
                ControlTowerCoordinator.acquire, SlotRequest(workflow_id=r.id, request_id=f"r{i}")
            )
        told = [(await heard(r, 1))[0] for r in requests]
        assert [t["kind"] for t in told] == ["granted", "granted", "queued"]
        assert told[2]["position"] == 1
        await coordinator.signal(ControlTowerCoordinator.release, requests[0].id)
        assert (await heard(requests[2], 2))[-1]["kind"] == "granted"
        status: CoordinatorStatus = await coordinator.query(ControlTowerCoordinator.status)
        assert status.holders == ["r1", "r2"] and status.queue == []
        for r in requests:
            await r.signal(SignalListener.stop)
        await coordinator.terminate("the specification is over")


async def test_requests_waiting_for_one_ou_are_enrolled_by_one_reset(
    time_skipping: WorkflowEnvironment,
) -> None:
    env, run = time_skipping, uuid.uuid4().hex[:8]
    aws = ControlTower(running=set())
    async with worker(env, [ControlTowerCoordinator, SignalListener], aws.activities()):
        coordinator = await env.client.start_workflow(
            ControlTowerCoordinator.run, CoordinatorState(), id=f"coord-{run}", task_queue=QUEUE
        )
        requests = await _listeners(env, run, 4)

        async def enroll(i: int) -> None:
            req = OuEnrollmentRequest(
                workflow_id=requests[i].id,
                request_id=f"r{i}",
                account_id=f"20000000000{i}",
                enabled_baseline_arn=OU_BASELINE,
            )
            await coordinator.signal(ControlTowerCoordinator.enroll_via_ou, req)

        await enroll(0)
        assert (await heard(requests[0], 1))[0]["kind"] == "ou_started"
        for i in (1, 2, 3):  # arrive while the first reset runs
            await enroll(i)
        aws.first_may_end.set()
        done = [(await heard(r, 2))[-1] for r in requests]
        assert aws.resets == [OU_BASELINE, OU_BASELINE]  # two resets for four requests
        assert [d["kind"] for d in done] == ["ou_done"] * 4
        assert [d["operation_id"] for d in done] == ["op-1", "op-2", "op-2", "op-2"]
        for r in requests:
            await r.signal(SignalListener.stop)
        await coordinator.terminate("the specification is over")


async def test_a_holder_that_ended_without_releasing_is_freed_by_the_sweep(
    time_skipping: WorkflowEnvironment,
) -> None:
    env, run = time_skipping, uuid.uuid4().hex[:8]
    requests_ids = [f"req-{run}-{i}" for i in range(2)]
    aws = ControlTower(running={requests_ids[1]})
    async with worker(env, [ControlTowerCoordinator, SignalListener], aws.activities()):
        coordinator = await env.client.start_workflow(
            ControlTowerCoordinator.run,
            CoordinatorState(account_limit=1),
            id=f"coord-{run}",
            task_queue=QUEUE,
        )
        requests = await _listeners(env, run, 2)
        for i, r in enumerate(requests):
            await coordinator.signal(
                ControlTowerCoordinator.acquire, SlotRequest(workflow_id=r.id, request_id=f"r{i}")
            )
        assert (await heard(requests[1], 1))[0]["kind"] == "queued"
        await requests[0].terminate("terminated by hand, holding the slot")
        await env.sleep(timedelta(seconds=CoordinatorState().sweep_interval_seconds + 10))
        assert (await heard(requests[1], 2))[-1]["kind"] == "granted"
        await requests[1].signal(SignalListener.stop)
        await coordinator.terminate("the specification is over")
