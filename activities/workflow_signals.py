"""Signals to the engine's long-lived workflows and their starts, through the client from a
local activity.

A workflow can signal or start another itself, but it then waits one more workflow task of its
own for the server to say so (``ExternalWorkflowExecutionSignaled``,
``ChildWorkflowExecutionStarted``) before it can do the next thing. From a local activity, the
signal or start is recorded as the activity's marker in the task that decided it, and that same
task goes on (bench/overhead counts the tasks per request).
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from common import account_contract
from common.managed_account_input import ManagedAccountInput
from common.stack_set_batches import BATCHER_ID, BatchEntry

BATCHER_DEPLOY_SIGNAL = "deploy"


@dataclass
class WorkflowSignals:
    client: Client

    @activity.defn(no_thread_cancel_exception=True)
    async def ask_stack_set_batcher(self, entry: BatchEntry) -> bool:
        """Queue the account with the StackSet batcher; False when no batcher runs."""
        try:
            await self.client.get_workflow_handle(BATCHER_ID).signal(BATCHER_DEPLOY_SIGNAL, entry)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    @activity.defn(no_thread_cancel_exception=True)
    async def start_managed_account(self, inp: ManagedAccountInput) -> None:
        """Start the account's own workflow, which outlives the request (a retry after a lost
        answer finds it running and leaves it be)."""
        account = inp.account
        await self.client.start_workflow(
            account_contract.WORKFLOW,
            inp,
            id=account_contract.account_workflow_id(account.account_id),
            task_queue=activity.info().task_queue,
            memo={"account_name": account.request.account_name},
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
