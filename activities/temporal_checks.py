"""Questions about other workflows, asked of Temporal itself (workflow code cannot)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode


class WorkflowIds(BaseModel):
    ids: list[str]


@dataclass
class TemporalChecks:
    client: Client

    @activity.defn(name="running_workflows", no_thread_cancel_exception=True)
    async def running_workflows(self, inp: WorkflowIds) -> WorkflowIds:
        """The subset of ``ids`` whose latest run is still running."""
        running = []
        for workflow_id in inp.ids:
            try:
                desc = await self.client.get_workflow_handle(workflow_id).describe()
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    continue
                raise
            if desc.status == WorkflowExecutionStatus.RUNNING:
                running.append(workflow_id)
        return WorkflowIds(ids=running)
