"""A pool account, vended as an ordinary request: the keeper files it and waits for its end.

The request goes through the same intake as a person's (the landing zone's checks, the plan,
update-with-start), so a pool account gets every step and every check a vended account gets.
Its id is the keeper's (fixed per pool account), so a retried attempt finds the request its
first attempt filed rather than filing a second one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import Priority
from temporalio.service import RPCError, RPCStatusCode

from common import vending_contract as contract
from common.intake import IntakeRefused, check_against_landing_zone
from common.landing_zone import Environment, LandingZone
from common.leases import PoolVend, VendOutcome
from common.models import (
    AccountRequest,
    BillingOptions,
    Principal,
    RequestState,
    RequestStatus,
    Role,
    SubmitInput,
)
from common.request_start import start_operation, vending_input
from common.settings import Settings
from common.step_plan import plan
from common.temporal_client import workflow_id

POOL_REQUESTER = "lease-pool"
# Behind people's requests on the task queues (1 is first, 3 the default): the pool refills
# itself, nobody waits on one of its vends while a lease is being granted.
BACKGROUND = Priority(priority_key=4)


@dataclass
class PoolVending:
    client: Client
    settings: Settings
    landing_zone: LandingZone
    poll_interval_seconds: float = 5.0

    @activity.defn(no_thread_cancel_exception=True)
    async def vend_pool_account(self, inp: PoolVend) -> VendOutcome:
        handle = self.client.get_workflow_handle(
            workflow_id(inp.request_id), result_type=RequestState
        )
        try:
            await handle.describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            refused = await self._file(inp)
            if refused is not None:
                return VendOutcome(failure=refused)
        while True:
            described = await handle.describe()
            if described.status != WorkflowExecutionStatus.RUNNING:
                break
            activity.heartbeat(described.status.name if described.status else "")
            await asyncio.sleep(self.poll_interval_seconds)
        if described.status != WorkflowExecutionStatus.COMPLETED:
            return VendOutcome(failure=f"the vend request ended {described.status}")
        state = await handle.result()
        if state.status == RequestStatus.completed and state.account_id:
            return VendOutcome(account_id=state.account_id)
        return VendOutcome(failure=f"the vend request ended {state.status.value}")

    async def _file(self, inp: PoolVend) -> str | None:
        """File the request; why it was refused, or None."""
        body = AccountRequest(
            account_name=inp.account_name,
            account_email=inp.account_email,
            organizational_unit=inp.organizational_unit,
            environment=Environment.sandbox,
            owner_email=inp.owner_email,
            cost_center=inp.cost_center,
            justification=f"a clean account for the {inp.organizational_unit} lease pool",
            tags={"vend:pool": inp.organizational_unit},
            billing=BillingOptions(customer_id=inp.billing_customer_id),
        )
        try:
            ou = check_against_landing_zone(body, self.landing_zone)
            user = Principal(sub=POOL_REQUESTER, email=inp.owner_email, roles=[Role.requester])
            vend = vending_input(inp.request_id, body, user, ou, self.settings)
        except IntakeRefused as err:  # the landing zone changed under the pool: an operator's
            return f"the landing zone refuses the pool's request: {err}"
        vend.plan = plan(vend, {})  # no queue lengths: nobody reads this plan's ETA
        state: RequestState = await self.client.execute_update_with_start_workflow(
            contract.SUBMIT,
            SubmitInput(body_sha256=vend.body_sha256),
            start_workflow_operation=start_operation(vend, self.settings, BACKGROUND),
            result_type=RequestState,
        )
        return state.refusal.message if state.refusal is not None else None
