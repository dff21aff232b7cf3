"""StackSetBatcher: one CreateStackInstances for every new account waiting on a StackSet.

AWS runs one operation per StackSet at a time. Before this workflow, requests that reached
``apply_baselines`` together each ran an operation of their own, one after another: fifty
requests, fifty operations of minutes each on real AWS. Here a request signals ``deploy`` and
waits; the batcher runs an operation as soon as the StackSet is free, for every account queued
for it (with the same regions and parameters), and tells each request how its account fared.
A request alone meets an idle StackSet and is deployed at once, so batching never adds a wait.

One long-lived workflow (id ``BATCHER_ID``), started by every worker with USE_EXISTING like the
Control Tower coordinator. Different StackSets run in parallel. Operation ids come from the
workflow chain and a sequence number carried across continue-as-new, so a retried activity finds
the operation it started instead of running a second for the same accounts.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field

    from activities.rollouts import RolloutActivities
    from common.stack_set_batches import (
        NOTICE_SIGNAL,
        BatchDeployInput,
        BatchDeployResult,
        BatchEntry,
        BatchNotice,
        batch_key,
        batch_operation_id,
    )

from workflows.steps.policy import activity_options


class BatcherState(BaseModel):
    queue: list[BatchEntry] = Field(default_factory=list)
    operations: int = 0  # operations started so far by this chain: the next id's sequence


class BatcherStatus(BaseModel):
    queued: dict[str, int]  # StackSet -> accounts waiting
    running: dict[str, int]  # StackSet -> accounts in its operation now
    operations: int


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class StackSetBatcher:
    @workflow.init
    def __init__(self, state: BatcherState) -> None:
        self._s = state
        self._running: dict[str, list[BatchEntry]] = {}  # StackSet -> its batch in flight
        self._telling = 0
        self._changed = True

    @workflow.run
    async def run(self, state: BatcherState) -> None:
        while True:
            await workflow.wait_condition(lambda: self._changed)
            self._changed = False
            draining = workflow.info().is_continue_as_new_suggested()
            if not draining:
                for name in dict.fromkeys(e.baseline.stack_set_name for e in self._s.queue):
                    if name not in self._running:
                        self._start(name)
            elif not self._running:
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() and self._telling == 0
                )
                workflow.continue_as_new(self._s)

    @workflow.signal
    def deploy(self, entry: BatchEntry) -> None:
        """Queue an account (a request asking twice, e.g. on a retried step, is queued once)."""
        name = entry.baseline.stack_set_name
        waiting = [*self._s.queue, *self._running.get(name, [])]
        if not any(
            e.workflow_id == entry.workflow_id and e.baseline.stack_set_name == name
            for e in waiting
        ):
            self._s.queue.append(entry)
        self._changed = True

    @workflow.query
    def status(self) -> BatcherStatus:
        queued: dict[str, int] = {}
        for e in self._s.queue:
            queued[e.baseline.stack_set_name] = queued.get(e.baseline.stack_set_name, 0) + 1
        return BatcherStatus(
            queued=queued,
            running={k: len(v) for k, v in self._running.items()},
            operations=self._s.operations,
        )

    def _start(self, name: str) -> None:
        head = next(e for e in self._s.queue if e.baseline.stack_set_name == name)
        key = batch_key(head.baseline)
        batch = [e for e in self._s.queue if batch_key(e.baseline) == key]
        self._s.queue = [e for e in self._s.queue if batch_key(e.baseline) != key]
        self._running[name] = batch
        self._s.operations += 1
        operation_id = batch_operation_id(
            workflow.info().first_execution_run_id, self._s.operations
        )
        asyncio.ensure_future(self._run_batch(name, batch, operation_id))  # noqa: RUF006

    async def _run_batch(self, name: str, batch: list[BatchEntry], operation_id: str) -> None:
        accounts = list(dict.fromkeys(e.account_id for e in batch))
        try:
            result: BatchDeployResult | None = await workflow.execute_activity_method(
                RolloutActivities.deploy_stack_set_batch,
                BatchDeployInput(
                    operation_id=operation_id,
                    baseline=batch[0].baseline,
                    accounts=accounts,
                    organizational_unit_ids=sorted({e.ou_id for e in batch}),
                ),
                **activity_options(batch[0].policy),
            )
        except ActivityError as err:
            cause = err.cause
            why = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            workflow.logger.warning("StackSet %s batch not deployed: %s", name, why)
            result = None
        finally:
            del self._running[name]
            self._changed = True
        for entry in batch:
            self._telling += 1
            asyncio.ensure_future(self._tell(entry, _notice(name, entry, result)))  # noqa: RUF006

    async def _tell(self, entry: BatchEntry, notice: BatchNotice) -> None:
        try:
            await workflow.get_external_workflow_handle(entry.workflow_id).signal(
                NOTICE_SIGNAL, notice
            )
        except ApplicationError:
            pass  # the request no longer runs: nobody to tell
        finally:
            self._telling -= 1


def _notice(name: str, entry: BatchEntry, result: BatchDeployResult | None) -> BatchNotice:
    if result is None or result.operation_id is None:
        return BatchNotice(stack_set_name=name, outcome="not_batched")
    reason = result.failed.get(entry.account_id)
    outcome = "not_batched"  # left out of the operation, or its instances were cancelled
    if reason is not None:
        outcome = "failed"
    elif entry.account_id in result.deployed:
        outcome = "deployed"
    return BatchNotice(
        stack_set_name=name,
        outcome=outcome,
        operation_id=result.operation_id,
        accounts_in_operation=len(result.deployed) + len(result.failed),
        reason=reason,
        attempt=result.attempt,
    )
