"""Running a workflow under specification: a worker with the fakes on the time-skipping server,
submitting a request as the API does, and reading its state."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from common import vending_contract as contract
from common.models import RequestState, RequestStatus, SubmitInput, VendingInput
from common.temporal_client import workflow_id
from tests.waiting import eventually_async
from tests.workflows.fakes import Fakes
from worker import workflow_runner
from workflows.vending import AccountVending

QUEUE = "specs"


def worker_for(env: WorkflowEnvironment, fakes: Fakes) -> Worker:
    return Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[AccountVending],
        activities=fakes.activities(),
        workflow_runner=workflow_runner(),
    )


async def submit(env: WorkflowEnvironment, inp: VendingInput) -> WorkflowHandle[Any, Any]:
    handle = await env.client.start_workflow(
        AccountVending.run, inp, id=workflow_id(inp.request_id), task_queue=QUEUE
    )
    state = await handle.execute_update(
        contract.SUBMIT, SubmitInput(body_sha256=inp.body_sha256), result_type=RequestState
    )
    assert state.refusal is None, state.refusal
    return handle


async def state_of(handle: WorkflowHandle[Any, Any]) -> RequestState:
    state: RequestState = await handle.query(contract.GET_STATE, result_type=RequestState)
    return state


async def wait_for(handle: WorkflowHandle[Any, Any], status: RequestStatus) -> RequestState:
    return await eventually_async(
        lambda: state_of(handle),
        lambda state: state.status == status,
        f"the request {status.value}",
        within=30,
        interval=0.05,
    )


def worker(env: WorkflowEnvironment, workflows: list[type], activities: list[Any]) -> Worker:
    """A worker on the specifications' queue for any workflows and (fake) activities."""
    return Worker(
        env.client,
        task_queue=QUEUE,
        workflows=workflows,
        activities=activities,
        workflow_runner=workflow_runner(),
    )
