"""This request's side of the StackSet batcher: ask for an account's instances of a baseline,
and wait for the batcher's answer (``workflows/stack_set_batcher.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.workflow_signals import WorkflowSignals
    from common.stack_set_batches import BatchEntry, BatchNotice

Show = Callable[[str, int | None], None]


class StackSetBatches:
    def __init__(self, show: Show) -> None:
        self._show = show
        self._notices: dict[str, BatchNotice] = {}  # StackSet -> the batcher's last answer

    async def deploy(self, entry: BatchEntry) -> BatchNotice:
        """Queue the account with the batcher and wait for its answer. ``not_batched`` when no
        batcher runs, or none answers within the step's time: the step then deploys itself."""
        name = entry.baseline.stack_set_name
        self._notices.pop(name, None)
        if not await _ask_locally(entry):
            return BatchNotice(stack_set_name=name, outcome="not_batched")
        self._show(f"queued for StackSet {name}: one operation for the accounts waiting", None)
        try:
            await workflow.wait_condition(
                lambda: name in self._notices,
                timeout=timedelta(seconds=entry.policy.start_to_close_seconds),
            )
        except TimeoutError:
            return BatchNotice(stack_set_name=name, outcome="not_batched")
        return self._notices.pop(name)

    def on_notice(self, notice: BatchNotice) -> None:
        self._notices[notice.stack_set_name] = notice


async def _ask_locally(entry: BatchEntry) -> bool:
    """The signal from a local activity: no task of this workflow waits for its delivery."""
    try:
        asked: bool = await workflow.execute_local_activity_method(
            WorkflowSignals.ask_stack_set_batcher,
            entry,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=2)),
        )
    except ActivityError:
        return False  # the step deploys the account itself
    return asked
