"""AccountVending: one workflow per request, readable top to bottom.

validate (claims + Organizations check, answered synchronously through the ``submit`` update)
→ wait for approvals (quorum from the OU, or auto-approved; expires) → the ordered steps, each
parked for an operator when it fails for good. State is exposed by queries; decisions arrive as
updates whose validators refuse bad ones before anything is written to history.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import (
    TimeoutError as TemporalTimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities.billing import BillingActivities, CustomerInput, CustomerResult
    from activities.control_tower import (
        AccountFactoryInput,
        AccountInput,
        ControlTowerActivities,
        EnrollResult,
        OuBaselineInput,
        WaitEnrollmentInput,
    )
    from activities.notifications import Notification, NotificationActivities
    from activities.organizations import AvailabilityInput, OrganizationsActivities
    from activities.stack_sets import (
        DeployBaselineInput,
        DeployBaselineResult,
        StackSetActivities,
    )
    from common import search_attributes as sa
    from common.landing_zone import EnrollmentStrategy, StackSetBaseline
    from common.models import (
        STEP_NAMES,
        ApprovalRecord,
        ApproveInput,
        AuditEvent,
        CancelInput,
        CompensationRecord,
        OuSnapshot,
        RejectInput,
        RequestState,
        RequestStatus,
        RetryInput,
        SkipInput,
        StepError,
        StepState,
        StepStatus,
        SubmitInput,
        VendingInput,
    )
    from workflows import metrics
    from workflows.claim import AccountClaim, claim_id
    from workflows.coordinator import (
        COORDINATOR_ID,
        NOTICE_SIGNAL,
        ControlTowerCoordinator,
        Notice,
        OuEnrollmentRequest,
        SlotRequest,
    )
    from workflows.steps import STEPS, StepSpec

from workflows.step_policy import activity_options, attempts_of

SYSTEM = "system"

# Submission refusals that say nothing about the request itself: the workflow fails, so the
# same Idempotency-Key may try again.
TRANSIENT_REFUSALS = frozenset({"OrganizationsUnavailable"})

# Status changes that matter to a person, and the notification each sends.
NOTIFY_ON = {
    RequestStatus.pending_approval: "needs_approval",
    RequestStatus.rejected: "rejected",
    RequestStatus.expired: "expired",
    RequestStatus.waiting_for_operator: "waiting_for_operator",
    RequestStatus.completed: "completed",
    RequestStatus.cancelled: "cancelled",
}


class BaselinesResult(BaseModel):
    stack_sets: list[str]
    detail: str
    attempt: int = 1


@workflow.defn
class AccountVending:
    @workflow.init
    def __init__(self, inp: VendingInput) -> None:
        self._input = inp
        self._state = RequestState(
            id=inp.request_id,
            status=RequestStatus.validating,
            request=inp.request,
            requested_by=inp.requested_by.sub,
            created_at=inp.created_at,
            updated_at=inp.created_at,
            approvals_required=inp.ou.approvals_required,
            approvals_remaining=inp.ou.approvals_required,
            steps=[StepState(name=name) for name in STEP_NAMES],
            cost_estimate=inp.cost_estimate,
        )
        self._events: list[AuditEvent] = []
        self._submitted = False
        self._submit_lock = asyncio.Lock()
        self._retry: RetryInput | None = None
        self._claims: dict[str, workflow.ChildWorkflowHandle[Any, Any]] = {}
        self._skip: SkipInput | None = None
        self._cancel: CancelInput | None = None
        self._current_step: str | None = None
        self._notifications: list[workflow.ActivityHandle[Any]] = []
        self._slot_held = False
        self._slot_granted = False
        self._ou_notice: Notice | None = None
        self._provisioned: Notice | None = None

    # ------------------------------------------------------------------ the process
    @workflow.run
    async def run(self, inp: VendingInput) -> RequestState:
        await workflow.wait_condition(lambda: self._submitted)
        if self._state.status == RequestStatus.invalid:
            refusal = self._state.refusal
            if refusal is not None and refusal.type in TRANSIENT_REFUSALS:
                # Fail rather than complete, so a retried POST with the same Idempotency-Key
                # validates afresh instead of replaying a passing outage.
                await workflow.wait_condition(workflow.all_handlers_finished)
                raise ApplicationError(refusal.message, type=refusal.type, non_retryable=True)
            return await self._finish()

        if self._state.status == RequestStatus.pending_approval:
            expires_at = self._state.approval_expires_at
            assert expires_at is not None
            try:
                await workflow.wait_condition(
                    lambda: self._state.status != RequestStatus.pending_approval,
                    timeout=max(expires_at - workflow.now(), timedelta(seconds=1)),
                )
            except TimeoutError:
                self._event(SYSTEM, "expire", "expired", f"no decision by {expires_at.isoformat()}")
                self._set_status(RequestStatus.expired)
                return await self._finish()
        if self._state.status != RequestStatus.provisioning:
            return await self._finish()  # rejected or cancelled

        for name in STEP_NAMES:
            spec = STEPS.get(name)
            if spec is None:
                continue  # not wired in this version: stays pending
            if not await self._run_step(name, spec):
                await self._compensate()  # cancelled while parked: undo what was done
                return await self._finish()

        self._event(SYSTEM, "complete", "completed", f"account {self._state.account_id}")
        self._set_status(RequestStatus.completed)
        return await self._finish()

    async def _finish(self) -> RequestState:
        await self._release_slot()
        await workflow.wait_condition(workflow.all_handlers_finished)
        for pending in self._notifications:  # let the last notifications go out
            with contextlib.suppress(ActivityError):
                await pending
        return self._state

    # ------------------------------------------------------------------ validation
    @workflow.update
    async def submit(self, inp: SubmitInput) -> RequestState:
        """Validate once, however many times the API retries (Idempotency-Key replays)."""
        if inp.body_sha256 != self._input.body_sha256:
            raise ApplicationError(
                "this Idempotency-Key was already used with a different request body",
                type="IdempotencyKeyReused",
            )
        async with self._submit_lock:
            if not self._submitted:
                await self._validate()
                self._submitted = True
        refusal = self._state.refusal
        if refusal is not None:
            raise ApplicationError(refusal.message, type=refusal.type)
        return self._state

    async def _validate(self) -> None:
        if workflow.patched("validate-at-once"):
            refusal = await self._checks_at_once()
        else:
            refusal = await self._checks_one_by_one()
        if refusal is not None:
            self._refuse(*refusal)
            return
        self._event(self._state.requested_by, "create", "accepted", f"OU {self._input.ou.path}")
        if workflow.patched("notify-created-and-approved"):
            self._notify("created")
        ou = self._input.ou
        if ou.approvals_required == 0:
            self._event(SYSTEM, "approve", "auto-approved", f"OU {ou.path} needs no approval")
            self._set_status(RequestStatus.provisioning)
        else:
            window = timedelta(seconds=ou.approval_window_seconds)
            self._state.approval_expires_at = workflow.now() + window
            self._set_status(RequestStatus.pending_approval)

    async def _checks_one_by_one(self) -> tuple[str, str] | None:
        """How requests started before ``validate-at-once`` validated: each claim and check
        waited for the one before it, a workflow task apiece."""
        req = self._input.request
        hashed = workflow.patched("claim-ids-without-personal-data")
        for kind, field, value in (
            ("name", "account_name", req.account_name),
            ("email", "account_email", req.account_email),
        ):
            if refusal := await self._claim(kind, field, value, hashed=hashed):
                return refusal
        refusal = await self._account_available(req.account_name, req.account_email, local=False)
        if refusal is not None:
            return refusal
        known = await self._customer_known(req.billing.customer_id, local=False)
        return _unknown_customer(known, req.billing.customer_id)

    async def _checks_at_once(self) -> tuple[str, str] | None:
        """Both claims and both checks together, the checks as local activities.

        A request is answered while its creator waits on the API, so every workflow task on this
        path is latency the caller sees, and the dev server's and worker's work per request:
        the claims and checks do not depend on one another, and the checks are short calls whose
        result the workflow needs at once, which is what local activities are for (recorded as a
        marker, no activity task through the server). Refusals keep the order they had.
        """
        req = self._input.request
        name, email, available, known = await asyncio.gather(
            self._claim("name", "account_name", req.account_name),
            self._claim("email", "account_email", req.account_email),
            self._account_available(req.account_name, req.account_email),
            self._customer_known(req.billing.customer_id),
        )
        for refusal in (name, email, available):
            if refusal is not None:
                return refusal
        return _unknown_customer(known, req.billing.customer_id)

    async def _claim(
        self, kind: str, field: str, value: str, *, hashed: bool = True
    ) -> tuple[str, str] | None:
        try:
            self._claims[kind] = await workflow.start_child_workflow(
                AccountClaim.run,
                self._input.request_id,
                id=claim_id(kind, value, hashed=hashed),
                parent_close_policy=workflow.ParentClosePolicy.TERMINATE,
            )
        except WorkflowAlreadyStartedError:
            return ("Conflict", f"{field}: a live request already uses {value!r}")
        return None

    async def _account_available(
        self, name: str, email: str, *, local: bool = True
    ) -> tuple[str, str] | None:
        run: Any = (
            workflow.execute_local_activity_method if local else workflow.execute_activity_method
        )
        try:
            result = await run(
                OrganizationsActivities.check_account_available,
                AvailabilityInput(account_name=name, account_email=email),
                start_to_close_timeout=timedelta(seconds=20),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=300),
                    maximum_interval=timedelta(seconds=3),
                    maximum_attempts=6,
                ),
            )
        except ActivityError as err:
            return ("OrganizationsUnavailable", f"could not check AWS Organizations: {err.cause}")
        if not result.available:
            return ("Conflict", f"{result.field}: {result.detail}")
        return None

    async def _customer_known(self, customer: str, *, local: bool = True) -> CustomerResult:
        run: Any = (
            workflow.execute_local_activity_method if local else workflow.execute_activity_method
        )
        try:
            known: CustomerResult = await run(
                BillingActivities.check_billing_customer,
                CustomerInput(customer_id=customer),
                start_to_close_timeout=timedelta(seconds=20),
                retry_policy=RetryPolicy(maximum_attempts=2),
            )
        except ActivityError:
            return CustomerResult(known=None)  # the billing service cannot say: check later
        return known

    def _refuse(self, kind: str, message: str) -> None:
        self._state.refusal = StepError(type=kind, message=message)
        self._event(self._state.requested_by, "create", "refused", message)
        self._set_status(RequestStatus.invalid)

    # ------------------------------------------------------------------ approvals
    @workflow.update
    def approve(self, inp: ApproveInput) -> RequestState:
        self._state.approvals.append(
            ApprovalRecord(by=inp.by, decision="approved", comment=inp.comment, at=workflow.now())
        )
        self._state.approvals_remaining = max(0, self._state.approvals_remaining - 1)
        self._event(inp.by, "approve", "approved", inp.comment)
        if self._state.approvals_remaining == 0:
            if workflow.patched("notify-created-and-approved"):
                self._notify("approved")
            self._set_status(RequestStatus.provisioning)
        else:
            self._touch()
        return self._state

    @approve.validator
    def _validate_approve(self, inp: ApproveInput) -> None:
        self._check_decidable(inp.by)
        if any(a.by == inp.by for a in self._state.approvals):
            raise ApplicationError(f"{inp.by} has already approved this request", type="Duplicate")

    @workflow.update
    def reject(self, inp: RejectInput) -> RequestState:
        self._state.approvals.append(
            ApprovalRecord(by=inp.by, decision="rejected", comment=inp.reason, at=workflow.now())
        )
        self._event(inp.by, "reject", "rejected", inp.reason)
        self._set_status(RequestStatus.rejected)
        return self._state

    @reject.validator
    def _validate_reject(self, inp: RejectInput) -> None:
        self._check_decidable(inp.by)

    def _check_decidable(self, by: str) -> None:
        if self._state.status != RequestStatus.pending_approval:
            raise ApplicationError(
                f"the request is {self._state.status.value}, not waiting for approval",
                type="InvalidState",
            )
        if by == self._state.requested_by:
            raise ApplicationError(
                "nobody may approve or reject a request they made", type="SelfApproval"
            )

    # ------------------------------------------------------------------ operator actions
    @workflow.update
    def cancel(self, inp: CancelInput) -> RequestState:
        self._cancel = inp
        self._event(inp.by, "cancel", "cancelled", inp.reason)
        self._set_status(RequestStatus.cancelled)
        return self._state

    @cancel.validator
    def _validate_cancel(self, inp: CancelInput) -> None:
        status = self._state.status
        if status not in (RequestStatus.pending_approval, RequestStatus.waiting_for_operator):
            raise ApplicationError(
                f"the request is {status.value}; it can be cancelled only while waiting for "
                "approval or for an operator",
                type="InvalidState",
            )

    @workflow.update
    async def retry(self, inp: RetryInput) -> RequestState:
        corrected = []
        if inp.account_email is not None:
            await self._reclaim_email(inp.account_email)
            corrected.append(f"account_email {inp.account_email}")
        if inp.ou is not None:
            self._move_request_to(inp.ou, inp.protect_workload_security)
            corrected.append(f"OU {inp.ou.path}")
        self._retry = inp
        detail = f"step {inp.step}: {inp.reason or ''}".strip()
        if corrected:
            detail += f" (corrected: {', '.join(corrected)})"
        self._event(inp.by, "retry", "accepted", detail)
        self._set_status(RequestStatus.provisioning)
        return self._state

    async def _reclaim_email(self, email: str) -> None:
        """Claim the corrected email before letting go of the old one, so no moment exists in
        which neither is held (or both could be taken by someone else)."""
        try:
            handle = await workflow.start_child_workflow(
                AccountClaim.run,
                self._input.request_id,
                id=claim_id("email", email),
                parent_close_policy=workflow.ParentClosePolicy.TERMINATE,
            )
        except WorkflowAlreadyStartedError:
            raise ApplicationError(
                f"account_email: a live request already uses {email!r}", type="Conflict"
            ) from None
        old = self._claims.get("email")
        if old is not None:
            await old.signal(AccountClaim.release)
        self._claims["email"] = handle
        request = self._input.request.model_copy(update={"account_email": email})
        self._input.request = self._state.request = request

    def _move_request_to(self, ou: OuSnapshot, protect: bool | None) -> None:
        request = self._input.request.model_copy(update={"organizational_unit": ou.path})
        self._input.request = self._state.request = request
        self._input.ou = ou
        if protect is not None:
            self._input.protect_workload_security = protect
        workflow.upsert_search_attributes([sa.OU.value_set(ou.path)])

    @retry.validator
    def _validate_retry(self, inp: RetryInput) -> None:
        failed = next((s for s in self._state.steps if s.status == StepStatus.failed), None)
        if self._state.status != RequestStatus.waiting_for_operator or failed is None:
            raise ApplicationError(
                f"the request is {self._state.status.value}; only a request waiting for an "
                "operator can be retried",
                type="InvalidState",
            )
        if failed.name != inp.step:
            raise ApplicationError(
                f"step {inp.step} has not failed; the failed step is {failed.name}",
                type="InvalidState",
            )
        if inp.account_email is not None and inp.step != "create_account":
            raise ApplicationError(
                "the account email can be corrected only when create_account failed",
                type="InvalidState",
            )
        if inp.ou is not None:
            if inp.step != "move_to_ou":
                raise ApplicationError(
                    "the OU can be corrected only when move_to_ou failed", type="InvalidState"
                )
            given = len(self._state.approvals)
            if inp.ou.approvals_required > given:
                raise ApplicationError(
                    f"OU {inp.ou.path} needs {inp.ou.approvals_required} approvals and this "
                    f"request has {given}; cancel it and request the account there",
                    type="InvalidState",
                )

    @workflow.update
    def skip(self, inp: SkipInput) -> RequestState:
        self._skip = inp
        self._event(inp.by, "skip", "accepted", f"step {inp.step}: {inp.reason}")
        self._set_status(RequestStatus.provisioning)
        return self._state

    @skip.validator
    def _validate_skip(self, inp: SkipInput) -> None:
        self._validate_retry(RetryInput(by=inp.by, step=inp.step))
        if inp.step not in self._input.ou.skippable_steps:
            allowed = ", ".join(self._input.ou.skippable_steps) or "none"
            raise ApplicationError(
                f"step {inp.step} may not be skipped (skippable: {allowed})", type="InvalidState"
            )

    # ------------------------------------------------------------------ queries
    @workflow.query
    def get_state(self) -> RequestState:
        return self._state

    @workflow.query
    def get_events(self) -> list[AuditEvent]:
        return self._events

    # ------------------------------------------------------------------ step runner
    async def _run_step(self, name: str, spec: StepSpec) -> bool:
        """Run one step until it succeeds; park for an operator each time it fails for good.

        Returns False when the request was cancelled while parked.
        """
        step = self._step(name)
        skip = spec.skip_reason(self._input)
        if skip is not None:
            step.status, step.detail = StepStatus.skipped, skip
            self._event(SYSTEM, f"step:{name}", "skipped", skip)
            metrics.step_outcome(name, "skipped", None)
            return True
        while True:
            step.status, step.error, step.detail = StepStatus.running, None, None
            step.started_at, step.finished_at = workflow.now(), None
            self._current_step = name
            self._touch(step=name)
            try:
                if spec.holds_control_tower_slot(self._input):
                    await self._acquire_slot()
                result = await self._execute(spec)
            except (ActivityError, ApplicationError) as err:
                step.attempts += attempts_of(err)
                step.status, step.error = StepStatus.failed, _error_of(err)
                step.finished_at, step.queue_position = workflow.now(), None
                metrics.step_outcome(name, "failed", step.started_at)
                await self._release_slot()  # a parked request must not block others
                self._event(
                    SYSTEM, f"step:{name}", "failed", f"{step.error.type}: {step.error.message}"
                )
                self._set_status(RequestStatus.waiting_for_operator)
                await workflow.wait_condition(
                    lambda: any(x is not None for x in (self._retry, self._skip, self._cancel))
                )
                if self._cancel is not None:
                    return False
                if self._skip is not None:
                    step.status, step.finished_at = StepStatus.skipped, workflow.now()
                    step.detail = f"skipped by {self._skip.by}: {self._skip.reason}"
                    self._skip = None
                    self._touch(step=name)
                    return True
                self._retry = None
                continue
            step.attempts += int(getattr(result, "attempt", 1))
            spec.record(self._state, result)
            step.status, step.finished_at = StepStatus.succeeded, workflow.now()
            metrics.step_outcome(name, "succeeded", step.started_at)
            step.detail = getattr(result, "detail", None)
            step.queue_position = None
            self._event(SYSTEM, f"step:{name}", "succeeded", step.detail)
            self._touch(step=name)
            return True

    async def _execute(self, spec: StepSpec) -> Any:
        if spec.run is not None:
            return await getattr(self, spec.run)()
        assert spec.activity is not None and spec.make_input is not None
        return await self._activity(spec.activity, spec.make_input(self._input, self._state))

    async def _activity(self, method: Any, arg: Any, *, quick: bool = False) -> Any:
        """Run one activity with the request's step policy (``quick``: a short lookup)."""
        return await workflow.execute_activity_method(
            method, arg, **activity_options(self._input.step_policy, quick=quick)
        )

    # ------------------------------------------------------------------ Control Tower
    async def _enroll_control_tower(self) -> EnrollResult:
        inp, state = self._input, self._state
        assert state.account_id and state.organizational_unit_id
        ou = await self._activity(
            ControlTowerActivities.find_ou_baseline,
            OuBaselineInput(ou_id=state.organizational_unit_id),
            quick=True,
        )
        current = await self._activity(
            ControlTowerActivities.account_enrollment,
            AccountInput(account_id=state.account_id),
            quick=True,
        )
        strategy = inp.ou.enrollment
        if current.status == "SUCCEEDED":
            await self._release_slot()
            return EnrollResult(strategy=strategy.value, detail="already enrolled")
        if strategy == EnrollmentStrategy.baseline_reset or (
            current.status == "FAILED" and strategy == EnrollmentStrategy.auto_enroll
        ):
            # A failed auto-enrollment is remediated the way Control Tower documents it:
            # by resetting the OU's baseline, which re-enrolls the accounts in it.
            await self._release_slot()
            return await self._enroll_via_ou(ou.enabled_baseline_arn)
        # Hold a Control Tower slot only around the account operation itself: the execution
        # role is IAM work in the member account, and once Account Factory's record has
        # succeeded the operation is over (the benchmark showed slots idle behind both).
        factory = strategy == EnrollmentStrategy.account_factory
        if factory and workflow.patched("coordinator-runs-account-factory"):
            return await self._enroll_via_coordinator(strategy)
        narrow = workflow.patched("ct-slot-only-around-the-operation")
        if narrow and factory:
            await self._activity(
                ControlTowerActivities.ensure_execution_role,
                AccountInput(account_id=state.account_id),
            )
        if not self._slot_held:
            await self._acquire_slot()
        try:
            if factory:
                if not narrow:
                    await self._activity(
                        ControlTowerActivities.ensure_execution_role,
                        AccountInput(account_id=state.account_id),
                    )
                self._detail("provisioning through Account Factory")
                await self._activity(
                    ControlTowerActivities.provision_account_factory, self._factory_input()
                )
                if narrow:
                    await self._release_slot()
            result = await self._wait_for_enrollment()
        finally:
            await self._release_slot()
        return EnrollResult(strategy=strategy.value, detail="enrolled", attempt=result.attempt)

    async def _enroll_via_coordinator(self, strategy: EnrollmentStrategy) -> EnrollResult:
        """Account Factory, run by the coordinator in one of its slots (see
        ``ControlTowerCoordinator._provision``); this request waits for the outcome."""
        inp, state = self._input, self._state
        assert state.account_id and state.organizational_unit_id
        await self._activity(
            ControlTowerActivities.ensure_execution_role, AccountInput(account_id=state.account_id)
        )
        self._provisioned = None
        self._slot_granted = False
        await self._coordinator().signal(
            ControlTowerCoordinator.provision,
            SlotRequest(
                workflow_id=workflow.info().workflow_id,
                request_id=inp.request_id,
                factory=self._factory_input(),
                policy=inp.step_policy,
            ),
        )
        self._detail("waiting for a Control Tower account-operation slot")
        await workflow.wait_condition(lambda: self._provisioned is not None)
        outcome = self._provisioned
        assert outcome is not None
        if outcome.status != "SUCCEEDED":
            raise ApplicationError(
                f"Account Factory: {outcome.message or 'no reason given'}",
                {"attempt": outcome.attempt or 1},
                type=outcome.error_type or "AccountFactoryFailed",
            )
        result = await self._wait_for_enrollment()
        return EnrollResult(strategy=strategy.value, detail="enrolled", attempt=result.attempt)

    def _factory_input(self) -> AccountFactoryInput:
        inp, state = self._input, self._state
        assert state.account_id and state.organizational_unit_id
        return AccountFactoryInput(
            request_id=inp.request_id,
            account_id=state.account_id,
            account_name=inp.request.account_name,
            account_email=inp.request.account_email,
            ou_name=inp.ou.path.rsplit("/", 1)[-1],
            ou_id=state.organizational_unit_id,
            sso_user_email=inp.request.owner_email,
            product_name=inp.ou.account_factory_product,
            run=self._step("enroll_control_tower").attempts + 1,
        )

    async def _wait_for_enrollment(self) -> EnrollResult:
        assert self._state.account_id
        self._detail("waiting for Control Tower to report the account enrolled")
        result: EnrollResult = await self._activity(
            ControlTowerActivities.wait_for_enrollment,
            WaitEnrollmentInput(
                account_id=self._state.account_id,
                timeout_seconds=self._input.ou.enrollment_timeout_seconds,
            ),
        )
        return result

    async def _enroll_via_ou(self, enabled_baseline_arn: str) -> EnrollResult:
        """Ask the coordinator for an OU reset; requests for the same OU share one reset."""
        assert self._state.account_id
        self._ou_notice = None
        await self._coordinator().signal(
            ControlTowerCoordinator.enroll_via_ou,
            OuEnrollmentRequest(
                workflow_id=workflow.info().workflow_id,
                request_id=self._input.request_id,
                account_id=self._state.account_id,
                enabled_baseline_arn=enabled_baseline_arn,
            ),
        )
        self._detail("queued for an OU baseline reset (one OU operation at a time)")
        await workflow.wait_condition(lambda: self._ou_notice is not None)
        notice = self._ou_notice
        assert notice is not None
        if notice.status != "SUCCEEDED":
            raise ApplicationError(
                f"ResetEnabledBaseline {notice.operation_id or ''} {notice.status}: "
                f"{notice.message or 'no reason given'}",
                type="EnrollmentFailed",
            )
        await self._activity(
            ControlTowerActivities.wait_for_enrollment,
            WaitEnrollmentInput(account_id=self._state.account_id, timeout_seconds=120),
        )
        return EnrollResult(
            strategy=EnrollmentStrategy.baseline_reset.value,
            detail=f"enrolled by OU operation {notice.operation_id}",
        )

    def _coordinator(self) -> workflow.ExternalWorkflowHandle[ControlTowerCoordinator]:
        return workflow.get_external_workflow_handle_for(
            ControlTowerCoordinator.run, COORDINATOR_ID
        )

    async def _acquire_slot(self) -> None:
        if self._slot_held:
            return
        self._slot_granted = False
        await self._coordinator().signal(
            ControlTowerCoordinator.acquire,
            SlotRequest(workflow_id=workflow.info().workflow_id, request_id=self._input.request_id),
        )
        self._detail("waiting for a Control Tower account-operation slot")
        await workflow.wait_condition(lambda: self._slot_granted)
        self._slot_held = True

    async def _release_slot(self) -> None:
        if not self._slot_held:
            return
        self._slot_held = False
        await self._coordinator().signal(
            ControlTowerCoordinator.release, workflow.info().workflow_id
        )

    @workflow.signal(name=NOTICE_SIGNAL)
    def control_tower_notice(self, notice: Notice) -> None:
        if notice.kind == "granted":
            self._slot_granted = True
            if self._provisioned is None:  # notices may cross: the outcome may come first
                self._detail("running a Control Tower account operation", position=None)
        elif notice.kind == "queued" and not self._slot_granted:
            # Notices travel separately: a position sent just before the grant may arrive after.
            self._detail(
                f"queued for a Control Tower slot (position {notice.position})",
                position=notice.position,
            )
        elif notice.kind == "ou_started":
            self._detail("OU baseline reset in progress", position=None)
        elif notice.kind == "ou_done":
            self._ou_notice = notice
        elif notice.kind == "provisioned":
            self._provisioned = notice

    def _detail(self, text: str, position: int | None = None) -> None:
        if self._current_step is None:
            return
        step = self._step(self._current_step)
        step.detail, step.queue_position = text, position
        self._state.updated_at = workflow.now()

    # ------------------------------------------------------------------ compensation
    async def _compensate(self) -> None:
        """Undo, newest first, every step that did (or may have half-done) something.

        Each undo is idempotent; one that fails is recorded and the others still run, so a
        cancellation never parks again."""
        for name in reversed(STEP_NAMES):
            step, spec = self._step(name), STEPS.get(name)
            if spec is None or step.status not in (StepStatus.succeeded, StepStatus.failed):
                continue
            try:
                if spec.undo_run is not None:
                    result = await getattr(self, spec.undo_run)()
                elif spec.undo is not None and spec.undo_input is not None:
                    arg = spec.undo_input(self._input, self._state)
                    if arg is None:
                        continue
                    result = await self._activity(spec.undo, arg)
                else:
                    continue
                outcome, detail = "undone", str(getattr(result, "detail", "") or "done")
            except (ActivityError, ApplicationError) as err:
                error = _error_of(err)
                outcome, detail = "failed", f"{error.type}: {error.message}"
            self._state.compensations.append(
                CompensationRecord(step=name, status=outcome, detail=detail, at=workflow.now())
            )
            self._event(SYSTEM, f"undo:{name}", outcome, detail)
            self._touch()

    async def _remove_baselines(self) -> BaselinesResult:
        inp, state = self._input, self._state
        if not state.account_id:
            return BaselinesResult(stack_sets=[], detail="no account")
        removed = []
        for baseline in inp.ou.baseline_stack_sets:
            result: DeployBaselineResult = await self._activity(
                StackSetActivities.remove_baseline,
                DeployBaselineInput(
                    request_id=inp.request_id,
                    account_id=state.account_id,
                    ou_id=state.organizational_unit_id or "",
                    baseline=baseline,
                    preferences=inp.ou.stack_set_preferences,
                ),
            )
            if not result.already_current:
                removed.append(result.stack_set_name)
        return BaselinesResult(
            stack_sets=removed,
            detail=f"deleted instances of {', '.join(removed)}" if removed else "none to delete",
        )

    # ------------------------------------------------------------------ baselines
    async def _apply_baselines(self) -> BaselinesResult:
        inp, state = self._input, self._state
        assert state.account_id and state.organizational_unit_id
        limit = asyncio.Semaphore(inp.ou.stack_set_preferences.max_parallel_stack_sets)

        async def deploy(baseline: StackSetBaseline) -> DeployBaselineResult:
            async with limit:
                result: DeployBaselineResult = await self._activity(
                    StackSetActivities.deploy_baseline,
                    DeployBaselineInput(
                        request_id=inp.request_id,
                        account_id=state.account_id or "",
                        ou_id=state.organizational_unit_id or "",
                        baseline=baseline,
                        preferences=inp.ou.stack_set_preferences,
                    ),
                )
                return result

        outcomes = await asyncio.gather(
            *(deploy(b) for b in inp.ou.baseline_stack_sets), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            first = failures[0]
            if len(failures) == 1 or not isinstance(first, ActivityError):
                raise first
            messages = "; ".join(
                _error_of(f).message for f in failures if isinstance(f, ActivityError)
            )
            raise ApplicationError(messages, type=_error_of(first).type)
        done = [o for o in outcomes if isinstance(o, DeployBaselineResult)]
        deployed = [d.stack_set_name for d in done if not d.already_current]
        current = [d.stack_set_name for d in done if d.already_current]
        detail = ", ".join(
            part
            for part in (
                f"deployed {', '.join(deployed)}" if deployed else "",
                f"already current {', '.join(current)}" if current else "",
            )
            if part
        )
        return BaselinesResult(
            stack_sets=[d.stack_set_name for d in done],
            detail=detail,
            attempt=max((d.attempt for d in done), default=1),
        )

    def _step(self, name: str) -> StepState:
        return next(s for s in self._state.steps if s.name == name)

    # ------------------------------------------------------------------ bookkeeping
    def _event(self, actor: str, action: str, outcome: str, detail: str | None) -> None:
        self._events.append(
            AuditEvent(
                at=workflow.now(), actor=actor, action=action, outcome=outcome, detail=detail
            )
        )

    def _set_status(self, status: RequestStatus) -> None:
        self._state.status = status
        metrics.request_status(status.value)
        self._touch()
        event = NOTIFY_ON.get(status)
        if event is not None:
            self._notify(event)

    def _notify(self, event: str) -> None:
        """Best effort and in the background: a notification never holds up or parks a request."""
        if not workflow.patched("notify-on-status-change"):
            return  # requests started before notifications existed replay without them
        failed = next((s for s in self._state.steps if s.status == StepStatus.failed), None)
        note = Notification(
            event=event,
            request_id=self._input.request_id,
            account_name=self._input.request.account_name,
            organizational_unit=self._input.ou.path,
            requested_by=self._state.requested_by,
            status=self._state.status.value,
            at=workflow.now(),
            step=failed.name if failed and event == "waiting_for_operator" else None,
            error=f"{failed.error.type}: {failed.error.message}"
            if failed and failed.error and event == "waiting_for_operator"
            else None,
            requester_email=self._input.requested_by.email,
            owner_email=self._input.request.owner_email,
        )
        channels = [NotificationActivities.notify]
        if workflow.patched("notify-by-email"):
            channels.append(NotificationActivities.notify_email)
        for channel in channels:
            self._notifications.append(
                workflow.start_activity_method(
                    channel,
                    note,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(
                        maximum_attempts=5, maximum_interval=timedelta(seconds=30)
                    ),
                )
            )

    def _touch(self, step: str | None = None) -> None:
        self._state.updated_at = workflow.now()
        updates = [sa.STATUS.value_set(self._state.status.value)]
        if step is not None:
            updates.append(sa.STEP.value_set(step))
        if self._state.account_id:
            updates.append(sa.ACCOUNT_ID.value_set(self._state.account_id))
        workflow.upsert_search_attributes(updates)


def _unknown_customer(known: CustomerResult, customer: str) -> tuple[str, str] | None:
    if known.known is False:
        return (
            "InvalidBillingCustomer",
            f"billing.customer_id: Sunny Pay has no customer {customer!r}",
        )
    return None


def _error_of(err: ActivityError | ApplicationError) -> StepError:
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError):
        return StepError(type=cause.type or "ApplicationError", message=cause.message)
    if isinstance(cause, TemporalTimeoutError):
        return StepError(
            type=f"Timeout.{cause.type.name if cause.type else 'UNKNOWN'}", message=str(cause)
        )
    return StepError(
        type=type(cause).__name__ if cause else "ActivityError", message=str(cause or err)
    )
