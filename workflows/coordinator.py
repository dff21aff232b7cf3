"""ControlTowerCoordinator: the one place that decides who may run a Control Tower operation.

Control Tower runs at most 5 (on request 10) account operations and one OU operation at a time,
across the whole organization. A lock in one worker process cannot enforce that once there are
several workers, so the rule lives in a single long-lived workflow (id ``COORDINATOR_ID``):
- account operations: a FIFO semaphore. A request signals ``acquire``; the coordinator answers
  with ``granted`` or with its queue position, and takes the slot back on ``release``. For
  Account Factory a request signals ``provision`` instead: the coordinator runs the provisioning
  in the slot itself and answers ``provisioned``, so a slot passes to the next operation in the
  workflow task where the last one ended;
- OU operations: the coordinator runs them itself, one at a time. Every request waiting for the
  same OU is enrolled by the same ResetEnabledBaseline (coalescing), and all of them are told.
Holders that ended without releasing (terminated workflows) are found and freed periodically.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field

    from activities.control_tower import (
        AccountFactoryInput,
        AccountFactoryResult,
        ControlTowerActivities,
        OperationResult,
        ResetInput,
    )
    from activities.temporal_checks import TemporalChecks, WorkflowIds
    from common.models import StepPolicy

from workflows.steps.policy import activity_options, attempts_of

COORDINATOR_ID = "control-tower-coordinator"
NOTICE_SIGNAL = "control_tower_notice"


class SlotRequest(BaseModel):
    workflow_id: str
    request_id: str
    # Set when the request asks the coordinator to run its Account Factory provisioning (the
    # ``provision`` signal) rather than to be granted a slot for running it itself.
    factory: AccountFactoryInput | None = None
    policy: StepPolicy | None = None


class OuEnrollmentRequest(BaseModel):
    workflow_id: str
    request_id: str
    account_id: str
    enabled_baseline_arn: str


class Notice(BaseModel):
    """What the coordinator tells a waiting request."""

    kind: str  # "queued" | "granted" | "ou_started" | "ou_done" | "provisioned"
    position: int | None = None
    operation_id: str | None = None
    status: str | None = None
    message: str | None = None
    error_type: str | None = None
    attempt: int | None = None


class CoordinatorState(BaseModel):
    account_limit: int = 5
    ou_operation_timeout_seconds: float = 7200.0
    heartbeat_timeout_seconds: float = 60.0
    sweep_interval_seconds: float = 300.0
    holders: list[SlotRequest] = Field(default_factory=list)
    queue: list[SlotRequest] = Field(default_factory=list)
    ou_queue: list[OuEnrollmentRequest] = Field(default_factory=list)
    ou_operations: int = 0


class CoordinatorStatus(BaseModel):
    account_limit: int
    holders: list[str]
    queue: list[str]
    ou_queue: list[str]
    ou_running: list[str]
    ou_operations: int


class Configure(BaseModel):
    account_limit: int = Field(ge=1, le=10)
    ou_operation_timeout_seconds: float | None = None
    heartbeat_timeout_seconds: float | None = None


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class ControlTowerCoordinator:
    @workflow.init
    def __init__(self, state: CoordinatorState) -> None:
        self._s = state
        self._ou_running: list[OuEnrollmentRequest] = []
        self._told: dict[str, int] = {}  # workflow id -> last position sent
        self._telling = 0  # notices on their way
        self._provisioning: set[str] = set()  # requests whose Account Factory run is ours now
        self._changed = True

    @workflow.run
    async def run(self, state: CoordinatorState) -> None:
        while True:
            try:
                await workflow.wait_condition(
                    lambda: self._changed, timeout=timedelta(seconds=self._s.sweep_interval_seconds)
                )
            except TimeoutError:
                await self._sweep()
            self._changed = False
            await self._grant()
            if self._s.ou_queue and not self._ou_running:
                self._start_ou_batch()
            if (
                workflow.info().is_continue_as_new_suggested()
                and not self._ou_running
                and not self._provisioning
            ):
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() and self._telling == 0
                )
                workflow.continue_as_new(self._s)

    # ------------------------------------------------------------------ messages
    @workflow.signal
    def acquire(self, req: SlotRequest) -> None:
        known = {r.workflow_id for r in (*self._s.holders, *self._s.queue)}
        if req.workflow_id not in known:
            self._s.queue.append(req)
        elif any(h.workflow_id == req.workflow_id for h in self._s.holders):
            self._told.pop(req.workflow_id, None)  # re-grant on a repeated acquire
            self._s.holders = [h for h in self._s.holders if h.workflow_id != req.workflow_id]
            self._s.queue.insert(0, req)
        self._changed = True

    @workflow.signal
    def provision(self, req: SlotRequest) -> None:
        """Queue a request whose Account Factory provisioning the coordinator runs when a slot is
        free; the request hears ``provisioned`` with the outcome."""
        if req.workflow_id not in self._provisioning:
            self.acquire(req)

    @workflow.signal
    def release(self, workflow_id: str) -> None:
        if workflow_id in self._provisioning:
            return  # the slot is freed when the coordinator's own operation ends

        self._s.holders = [h for h in self._s.holders if h.workflow_id != workflow_id]
        self._s.queue = [q for q in self._s.queue if q.workflow_id != workflow_id]
        self._told.pop(workflow_id, None)
        self._changed = True

    @workflow.signal
    def enroll_via_ou(self, req: OuEnrollmentRequest) -> None:
        waiting = {r.workflow_id for r in self._s.ou_queue}
        if req.workflow_id not in waiting:
            self._s.ou_queue.append(req)
        self._changed = True

    @workflow.signal
    def configure(self, cfg: Configure) -> None:
        self._s.account_limit = cfg.account_limit
        if cfg.ou_operation_timeout_seconds is not None:
            self._s.ou_operation_timeout_seconds = cfg.ou_operation_timeout_seconds
        if cfg.heartbeat_timeout_seconds is not None:
            self._s.heartbeat_timeout_seconds = cfg.heartbeat_timeout_seconds
        self._changed = True

    @workflow.query
    def status(self) -> CoordinatorStatus:
        return CoordinatorStatus(
            account_limit=self._s.account_limit,
            holders=[h.request_id for h in self._s.holders],
            queue=[q.request_id for q in self._s.queue],
            ou_queue=[q.request_id for q in self._s.ou_queue],
            ou_running=[q.request_id for q in self._ou_running],
            ou_operations=self._s.ou_operations,
        )

    # ------------------------------------------------------------------ account slots
    async def _grant(self) -> None:
        granted: list[SlotRequest] = []
        while self._s.queue and len(self._s.holders) < self._s.account_limit:
            if self._s.queue[0].factory and workflow.info().is_continue_as_new_suggested():
                break  # let the running operations end, continue as new, then go on
            req = self._s.queue.pop(0)
            self._s.holders.append(req)
            if req.factory is not None:
                self._provisioning.add(req.workflow_id)
                asyncio.ensure_future(self._provision(req))  # noqa: RUF006 - tracked in the set
            granted.append(req)
        moved: list[tuple[SlotRequest, int]] = []
        for position, req in enumerate(self._s.queue, start=1):
            if self._told.get(req.workflow_id) != position:
                self._told[req.workflow_id] = position
                moved.append((req, position))
        # The notices go out in the background: the next release is handled while they are on
        # their way. Awaited one by one (as before this patch), a release that freed a slot
        # waited behind a queue's worth of position notices, and even awaited together, behind
        # one round trip through a loaded server: the seconds the quota benchmark measured
        # between one Account Factory operation and the next.
        for req, notice in [(req, Notice(kind="granted")) for req in granted] + [
            (req, Notice(kind="queued", position=position)) for req, position in moved
        ]:
            self._telling += 1
            asyncio.ensure_future(self._tell_or_release(req.workflow_id, notice))  # noqa: RUF006

    async def _provision(self, req: SlotRequest) -> None:
        """Run one request's Account Factory provisioning in its slot, then free the slot.

        Run here rather than by the request, a hand-over is the workflow task in which this
        activity completes: the slot is freed and the next operation scheduled together. A
        request that held the slot itself needed its own workflow task to release it, the
        coordinator's to grant it, and the next request's to start (bench/quota).
        """
        assert req.factory is not None and req.policy is not None
        try:
            result: AccountFactoryResult = await workflow.execute_activity_method(
                ControlTowerActivities.provision_account_factory,
                req.factory,
                **activity_options(req.policy),
            )
            notice = Notice(
                kind="provisioned",
                status="SUCCEEDED",
                operation_id=result.record_id,
                attempt=result.attempt,
            )
        except ActivityError as err:
            cause = err.cause
            notice = Notice(
                kind="provisioned",
                status="FAILED",
                message=cause.message if isinstance(cause, ApplicationError) else str(cause or err),
                error_type=cause.type if isinstance(cause, ApplicationError) else None,
                attempt=attempts_of(err),
            )
        self._provisioning.discard(req.workflow_id)
        self.release(req.workflow_id)
        self._telling += 1
        await self._tell_or_release(req.workflow_id, notice)

    async def _tell_or_release(self, workflow_id: str, notice: Notice) -> None:
        try:
            if not await self._tell(workflow_id, notice):
                self.release(workflow_id)
        finally:
            self._telling -= 1

    async def _tell(self, workflow_id: str, notice: Notice) -> bool:
        """Signal a request; False when it no longer runs (its slot or place is dropped)."""
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal(NOTICE_SIGNAL, notice)
        except ApplicationError:
            return False
        return True

    async def _sweep(self) -> None:
        ids = [h.workflow_id for h in self._s.holders] + [q.workflow_id for q in self._s.queue]
        if not ids:
            return
        try:
            running = await workflow.execute_activity_method(
                TemporalChecks.running_workflows,
                WorkflowIds(ids=ids),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError:
            return
        for workflow_id in set(ids) - set(running.ids) - self._provisioning:
            workflow.logger.warning("freeing the slot of %s, which no longer runs", workflow_id)
            self.release(workflow_id)

    # ------------------------------------------------------------------ OU operations
    def _start_ou_batch(self) -> None:
        head = self._s.ou_queue[0].enabled_baseline_arn
        self._ou_running = [r for r in self._s.ou_queue if r.enabled_baseline_arn == head]
        self._s.ou_queue = [r for r in self._s.ou_queue if r.enabled_baseline_arn != head]
        self._s.ou_operations += 1
        asyncio.ensure_future(self._run_ou_batch(head))  # noqa: RUF006 - awaited via _ou_running

    async def _run_ou_batch(self, enabled_baseline_arn: str) -> None:
        try:
            await self._reset_and_tell(enabled_baseline_arn, list(self._ou_running))
        finally:
            self._ou_running = []
            self._changed = True

    async def _reset_and_tell(
        self, enabled_baseline_arn: str, batch: list[OuEnrollmentRequest]
    ) -> None:
        for req in batch:
            await self._tell(req.workflow_id, Notice(kind="ou_started"))
        try:
            result: OperationResult = await workflow.execute_activity_method(
                ControlTowerActivities.reset_ou_baseline,
                ResetInput(enabled_baseline_arn=enabled_baseline_arn),
                start_to_close_timeout=timedelta(seconds=self._s.ou_operation_timeout_seconds),
                heartbeat_timeout=timedelta(seconds=self._s.heartbeat_timeout_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=2),
                    maximum_interval=timedelta(seconds=60),
                    maximum_attempts=20,
                ),
            )
            notice = Notice(
                kind="ou_done",
                operation_id=result.operation_id,
                status=result.status,
                message=result.message,
            )
        except ActivityError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            notice = Notice(kind="ou_done", status="FAILED", message=message)
        for req in batch:
            await self._tell(req.workflow_id, notice)
