"""The StackSet batcher, as a specification: AWS runs one operation per StackSet at a time, so
the new accounts that arrive while one runs go together in the next, one CreateStackInstances
for all of them; a request alone is deployed at once; each request is told how its account
fared."""

from __future__ import annotations

import asyncio
import uuid

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from common.landing_zone import StackSetBaseline
from common.models import StepPolicy
from common.stack_set_batches import BatchDeployInput, BatchDeployResult, BatchEntry
from tests.waiting import eventually_async
from tests.workflows.harness import QUEUE, worker
from tests.workflows.listeners import SignalListener, heard
from workflows.stack_set_batcher import BatcherState, BatcherStatus, StackSetBatcher

BASELINE = StackSetBaseline(stack_set_name="vend-audit-role", regions=["us-east-1"])
POLICY = StepPolicy(
    start_to_close_seconds=600,
    heartbeat_timeout_seconds=60,
    retry_initial_seconds=1,
    retry_maximum_seconds=10,
    maximum_attempts=3,
)


class StackSet:
    """The fake AWS side: records each operation's accounts; the first one runs until told."""

    def __init__(self) -> None:
        self.operations: list[list[str]] = []
        self.first_may_end = asyncio.Event()
        self.failing: dict[str, str] = {}

    def activity(self) -> object:
        @activity.defn(name="deploy_stack_set_batch")
        async def deploy_stack_set_batch(inp: BatchDeployInput) -> BatchDeployResult:
            self.operations.append(list(inp.accounts))
            if len(self.operations) == 1:
                await self.first_may_end.wait()
            failed = {a: self.failing[a] for a in inp.accounts if a in self.failing}
            return BatchDeployResult(
                operation_id=inp.operation_id,
                status="SUCCEEDED",
                deployed=[a for a in inp.accounts if a not in failed],
                failed=failed,
            )

        return deploy_stack_set_batch


async def test_accounts_that_wait_while_an_operation_runs_share_the_next_one(
    time_skipping: WorkflowEnvironment,
) -> None:
    env, run, aws = time_skipping, uuid.uuid4().hex[:8], StackSet()
    aws.failing["100000000004"] = "us-east-1: Account should have the execution role"
    async with worker(env, [StackSetBatcher, SignalListener], [aws.activity()]):
        batcher = await env.client.start_workflow(
            StackSetBatcher.run, BatcherState(), id=f"batcher-{run}", task_queue=QUEUE
        )
        requests = [
            await env.client.start_workflow(
                SignalListener.run, id=f"request-{run}-{i}", task_queue=QUEUE
            )
            for i in range(1, 5)
        ]

        async def deploy(i: int) -> None:
            entry = BatchEntry(
                workflow_id=requests[i - 1].id,
                request_id=f"r{i}",
                account_id=f"10000000000{i}",
                ou_id="ou-1",
                baseline=BASELINE,
                policy=POLICY,
            )
            await batcher.signal(StackSetBatcher.deploy, entry)

        await deploy(1)  # alone, at an idle StackSet: deployed at once, never made to wait

        async def operations() -> list[list[str]]:
            return aws.operations

        await eventually_async(operations, bool, "the first operation started", 30, 0.02)
        assert aws.operations == [["100000000001"]]
        for i in (2, 3, 4):  # arrive while the first operation runs
            await deploy(i)
        await deploy(2)  # a retried step asks again: queued once
        status: BatcherStatus = await batcher.query(StackSetBatcher.status)
        assert status.queued == {"vend-audit-role": 3} and status.running == {"vend-audit-role": 1}
        aws.first_may_end.set()

        notices = [(await heard(r, 1))[0] for r in requests]
        assert aws.operations == [
            ["100000000001"],
            ["100000000002", "100000000003", "100000000004"],
        ]
        assert [n["outcome"] for n in notices] == ["deployed", "deployed", "deployed", "failed"]
        assert [n["accounts_in_operation"] for n in notices] == [1, 3, 3, 3]
        assert "execution role" in notices[3]["reason"]
        assert len({n["operation_id"] for n in notices}) == 2  # one id per operation
        for r in requests:
            await r.signal(SignalListener.stop)
        await batcher.terminate("the specification is over")
