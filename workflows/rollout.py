"""BaselineRollout: one baseline StackSet change (or a Workload Security policy) carried to the
fleet in waves.

1. **Plan**: survey the StackSet (which accounts of the OUs have it, which are already where
   the change takes them) and cut the rest into waves, a canary first. The plan answers the
   POST before anything runs.
2. **Approve**: as many approvers as the strictest OU touched asks for.
3. **Run**: wave by wave, one StackSet operation per wave (two for the canary when both the
   template and the parameters change). Before each wave the StackSet is surveyed again, so an
   account brought up meanwhile (by a vend, say) gets no operation. More failed accounts than
   the tolerance halts the rollout for an operator, who resumes or cancels it. Pause takes
   effect between waves (an operation AWS is running is let finish); cancel also stops the
   running operation (StopStackSetOperation), leaving the accounts it did not reach as they were.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.workload_security import ApplyPolicyInput, ApplyPolicyResult
    from common import account_contract
    from common import rollouts as contract
    from common import search_attributes as sa
    from common.drift import DriftTargets, DriftTargetsInput
    from common.rollouts import (
        ACTIVE,
        InstanceSurvey,
        Operation,
        RolloutApplied,
        RolloutEvent,
        RolloutInput,
        RolloutKind,
        RolloutState,
        RolloutStatus,
        RunOperationInput,
        StopOperationInput,
        Wave,
        WaveSurveyInput,
        cut_waves,
        operation_id,
        operation_seconds,
    )


async def _survey(inp: RolloutInput) -> InstanceSurvey:
    if inp.kind == RolloutKind.workload_security_policy:
        await workflow.execute_activity(  # a policy that does not exist: the plan is invalid
            "find_workload_security_policy",
            inp.policy,
            result_type=int,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=10),
        )
    survey: InstanceSurvey = await workflow.execute_activity(
        "survey_policy_rollout"
        if inp.kind == RolloutKind.workload_security_policy
        else "survey_rollout",
        inp,
        result_type=InstanceSurvey,
        start_to_close_timeout=timedelta(minutes=10),
        heartbeat_timeout=timedelta(minutes=2),
        retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=20),
    )
    return survey


async def _managed(accounts: list[str]) -> DriftTargets:
    """Which of these accounts the engine manages (a baseline is given to those only), and which
    of them a change is moving right now."""
    found: DriftTargets = await workflow.execute_activity(
        "drift_targets",
        DriftTargetsInput(account_ids=accounts),
        result_type=DriftTargets,
        start_to_close_timeout=timedelta(minutes=10),
        retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=20),
    )
    return found


async def _assign(op: Operation, policy: str, heartbeat_seconds: float) -> Operation:
    """A wave of a policy rollout: one activity sets the policy account by account."""
    result = await workflow.execute_activity(
        "apply_workload_security_policy",
        ApplyPolicyInput(policy=policy, account_ids=op.accounts),
        result_type=ApplyPolicyResult,
        start_to_close_timeout=timedelta(hours=2),
        heartbeat_timeout=timedelta(seconds=heartbeat_seconds),
        retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=20),
    )
    return op.model_copy(
        update={
            "status": "FAILED" if result.failed else "SUCCEEDED",
            "failed_accounts": sorted(result.failed),
            "reason": "; ".join(f"{a}: {r}" for a, r in sorted(result.failed.items())) or None,
        }
    )


async def _current(inp: RolloutInput, accounts: list[str], instances_total: int) -> list[str]:
    assert inp.baseline is not None
    current: list[str] = await workflow.execute_activity(
        "current_accounts",
        WaveSurveyInput(
            baseline=inp.baseline,
            accounts=accounts,
            template_body=inp.template_body,
            parameters=inp.parameters,
            instances_total=instances_total,
        ),
        result_type=list[str],
        start_to_close_timeout=timedelta(minutes=10),
        retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=20),
    )
    return current


async def _operate(inp: RunOperationInput, heartbeat_seconds: float) -> Operation:
    """One StackSet operation; its id makes every retry find the one it started."""
    ran: Operation = await workflow.execute_activity(
        "run_stack_set_operation",
        inp,
        result_type=Operation,
        start_to_close_timeout=timedelta(hours=12),
        heartbeat_timeout=timedelta(seconds=heartbeat_seconds),
        retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
    )
    return ran


@workflow.defn(name=contract.WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class BaselineRollout:
    @workflow.init
    def __init__(self, inp: RolloutInput) -> None:
        self._input = inp
        self._state = RolloutState(
            rollout_id=inp.rollout_id,
            requested_by=inp.requested_by,
            reason=inp.reason,
            kind=inp.kind,
            stack_set=inp.baseline.stack_set_name if inp.baseline else None,
            policy=inp.policy,
            parameters=inp.parameters,
            created_at=workflow.now(),
            updated_at=workflow.now(),
        )
        self._planned = False
        # The survey for the next wave, started while this wave's operation runs (it looks only
        # at accounts this operation does not touch). Dropped when the rollout stops between
        # waves: after a pause it is looked at again.
        self._next_survey: asyncio.Task[list[str]] | None = None
        self._running: Operation | None = None  # the StackSet operation AWS is running for us
        # Failures an operator saw when resuming a halted rollout: accepted, so the tolerance
        # counts the failures after them (else every later wave would halt it again).
        self._accepted_failures = 0

    @workflow.run
    async def run(self, inp: RolloutInput) -> RolloutState:
        try:
            survey = await _survey(inp)
        except ActivityError as err:
            cause = err.cause
            self._state.problem = str(cause.message if isinstance(cause, ApplicationError) else err)
            self._set(RolloutStatus.invalid, inp.requested_by, "plan", self._state.problem)
            self._planned = True
            return self._state
        managed = await _managed(sorted(survey.without)) if survey.without else DriftTargets()
        left_out = managed.busy + survey.left_out
        self._plan(survey, [t.account_id for t in managed.targets], left_out)
        self._planned = True
        if self._state.status == RolloutStatus.invalid:
            return self._state
        if not self._state.waves:
            self._set(RolloutStatus.completed, "system", "complete", "nothing to change")
            return self._state
        if self._state.status == RolloutStatus.pending_approval:
            await workflow.wait_condition(
                lambda: self._state.status != RolloutStatus.pending_approval
            )
        for wave in self._state.waves:
            await workflow.wait_condition(
                lambda: self._state.status in (RolloutStatus.running, RolloutStatus.cancelled)
            )
            if self._state.status == RolloutStatus.cancelled:
                break
            await self._run_wave(wave)
        await workflow.wait_condition(  # halted by the last wave: an operator still decides
            lambda: self._state.status not in (RolloutStatus.paused, RolloutStatus.halted)
        )
        if self._state.status != RolloutStatus.cancelled:
            self._set(RolloutStatus.completed, "system", "complete", self._summary())
        self._state.eta_seconds = 0.0
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    # ------------------------------------------------------------------ plan
    def _plan(self, survey: InstanceSurvey, missing: list[str], left_out: list[str]) -> None:
        """Cut the accounts into waves: those with an instance to update first (so the canary
        is one of them when the template changes), then those to give the baseline to."""
        inp, state = self._input, self._state
        state.template_changes = survey.template_changes
        state.template_sha256 = survey.template_sha256
        state.current_template_sha256 = survey.current_template_sha256
        state.template_diff = survey.template_diff
        where = {**survey.accounts, **{a: survey.without[a] for a in missing}}
        touched = sorted(set(where.values()))
        state.organizational_units = touched
        state.approvals_required = max(
            (ou.approvals_required for ou in inp.organizational_units if ou.path in touched),
            default=0,
        )
        if survey.template_changes:
            # A new template is the StackSet's for every account that has it and every later
            # vend, whatever accounts the waves name: the strictest OU with the baseline, and
            # at least one approval.
            reach = inp.template_reach or inp.organizational_units
            state.template_reach = sorted(ou.path for ou in reach)
            state.approvals_required = max(
                1, state.approvals_required, *(ou.approvals_required for ou in reach)
            )
        state.accounts_left_out = sorted(left_out)
        new = set(missing)
        outdated = sorted(set(survey.accounts) - set(survey.current))
        to_change = outdated + sorted(new)
        state.accounts_total = len(where)
        state.accounts_skipped = len(survey.current)
        if survey.template_changes and not outdated:
            state.problem = (
                "the template changes but none of the accounts has an instance to carry it"
                " first (a canary): roll the template out to an account that has one"
            )
            self._set(RolloutStatus.invalid, inp.requested_by, "plan", state.problem)
            return
        for number, accounts in enumerate(cut_waves(to_change, inp.waves), start=1):
            update = [a for a in accounts if a not in new]
            create = [a for a in accounts if a in new]
            actions: list[tuple[str, list[str]]] = []
            if inp.kind == RolloutKind.workload_security_policy:
                actions.append(("AssignPolicy", accounts))
            elif number == 1 and survey.template_changes:
                actions.append(("UpdateStackSet", update))
                if inp.parameters:
                    actions.append(("UpdateStackInstances", update))
            elif update:
                actions.append(("UpdateStackInstances", update))
            if create:
                actions.append(("CreateStackInstances", create))
            wave = Wave(number=number, accounts=accounts)
            for index, (action, targets) in enumerate(actions):
                wave.operations.append(
                    Operation(
                        action=action,
                        accounts=targets,
                        regions=survey.regions,
                        operation_id=operation_id(inp.rollout_id, number, index),
                        organizational_unit_ids=sorted(
                            {survey.ou_ids[where[a]] for a in targets if where[a] in survey.ou_ids}
                        ),
                    )
                )
            state.waves.append(wave)
        state.eta_seconds = self._eta()
        detail = (
            f"{len(to_change)} of {state.accounts_total} accounts in {len(state.waves)} waves"
            f" ({state.accounts_skipped} already current"
            + (f", {len(new)} to be given the baseline" if new else "")
            + (f", {len(left_out)} in a change left out" if left_out else "")
            + ")"
        )
        if state.approvals_required:
            self._set(RolloutStatus.pending_approval, inp.requested_by, "plan", detail)
        else:
            self._set(RolloutStatus.running, inp.requested_by, "plan", detail + ", no approval")

    def _eta(self) -> float:
        left = [w for w in self._state.waves if w.status == "planned"]
        done = [op for w in self._state.waves for op in w.operations if op.ended_at]
        if done:  # what the operations took so far, per account, is the better estimate
            spent = sum(((op.ended_at - op.started_at).total_seconds() for op in done), 0.0)  # type: ignore[operator]
            per_op = spent / len(done)
            return sum(per_op * len(w.operations) for w in left)
        return sum(
            operation_seconds(len(w.accounts), len(op.regions), self._input)
            for w in left
            for op in w.operations
        )

    # ------------------------------------------------------------------ run
    async def _run_wave(self, wave: Wave) -> None:
        wave.status = "running"
        looks = self._input.kind == RolloutKind.stack_set  # a policy wave is idempotent as it is
        if wave.number > 1 and looks:
            prefetched, self._next_survey = self._next_survey, None
            current = await (
                prefetched or _current(self._input, wave.accounts, self._instances_total())
            )
            now_current = set(current) & set(wave.accounts)
            if now_current:
                wave.skipped_accounts = sorted(now_current)
                self._state.accounts_skipped += len(now_current)
                for op in wave.operations:
                    op.accounts = [a for a in op.accounts if a not in now_current]
        self._touch()
        if wave.number < len(self._state.waves) and looks:
            after = self._state.waves[wave.number].accounts  # the next wave's (numbered from 1)
            self._next_survey = asyncio.create_task(
                _current(self._input, after, self._instances_total())
            )
        failed: set[str] = set()
        stopped: set[str] = set()
        for op in wave.operations:
            if not op.accounts or self._cancelled():
                op.status = "skipped"
                continue
            op.started_at = workflow.now()
            op.status = "RUNNING"
            self._running = op
            self._touch()
            try:
                ran = await self._run_operation(op)
            except ActivityError as err:
                cause = err.cause
                reason = cause.message if isinstance(cause, ApplicationError) else str(err)
                ran = op.model_copy(
                    update={"status": "FAILED", "failed_accounts": op.accounts, "reason": reason}
                )
            finally:
                self._running = None
            ran.started_at, ran.ended_at = op.started_at, workflow.now()
            wave.operations[wave.operations.index(op)] = ran
            if ran.status == "STOPPED" and self._cancelled():
                stopped.update(op.accounts)  # not failed: left as they were, by the cancel
                continue
            failed.update(ran.failed_accounts)
            if ran.status != "SUCCEEDED" and not ran.failed_accounts:
                failed.update(op.accounts)
        ok = [
            a
            for a in wave.accounts
            if a not in failed
            and a not in stopped
            and a not in wave.skipped_accounts
            and not any(a in o.accounts and o.status == "skipped" for o in wave.operations)
        ]
        self._state.accounts_done += len(ok)
        given = [
            a
            for op in wave.operations
            if op.action == "CreateStackInstances"
            for a in op.accounts
            if a in ok
        ]
        self._state.accounts_created += len(given)
        policy = self._input.kind == RolloutKind.workload_security_policy
        await self._record_given(ok if policy else given)
        self._state.accounts_failed = sorted(set(self._state.accounts_failed) | failed)
        wave.status = "done"
        self._state.eta_seconds = self._eta()
        detail = f"wave {wave.number}: {len(ok)} updated, {len(failed)} failed"
        if stopped:
            detail += f", {len(stopped)} stopped by the cancel"
        if (
            len(self._state.accounts_failed) - self._accepted_failures
            > self._input.max_failed_accounts
        ):
            reasons = [op.reason for op in wave.operations if op.reason]
            self._state.problem = "; ".join(reasons) or "accounts failed"
            self._set(RolloutStatus.halted, "system", "halt", f"{detail}: over the tolerance")
            self._drop_survey()
        else:
            self._event("system", "wave", detail)

    async def _run_operation(self, op: Operation) -> Operation:
        inp = self._input
        if op.action == "AssignPolicy":
            assert inp.policy is not None
            return await _assign(op, inp.policy, inp.heartbeat_seconds)
        assert inp.baseline is not None
        return await _operate(
            RunOperationInput(
                rollout_id=inp.rollout_id,
                baseline=inp.baseline,
                operation=op,
                template_body=inp.template_body,
                parameters=inp.parameters,
                max_failed_accounts=inp.max_failed_accounts,
                max_concurrent_percentage=inp.max_concurrent_percentage,
            ),
            inp.heartbeat_seconds,
        )

    async def _record_given(self, accounts: list[str]) -> None:
        """Tell each account what it was given (a baseline, a policy), so its record (and so its
        drift checks, its decommission, its next update) counts it; an account closed meanwhile
        has nothing to record."""
        inp = self._input
        note = RolloutApplied(rollout_id=inp.rollout_id, by=inp.requested_by)
        if inp.kind == RolloutKind.workload_security_policy:
            note.policy = inp.policy
        elif inp.baseline is not None:
            note.stack_set = inp.baseline.stack_set_name
        for start in range(0, len(accounts), 100):
            await asyncio.gather(
                *(
                    workflow.get_external_workflow_handle(
                        account_contract.account_workflow_id(a)
                    ).signal(account_contract.ROLLOUT_APPLIED, note)
                    for a in accounts[start : start + 100]
                ),
                return_exceptions=True,
            )

    def _instances_total(self) -> int:
        regions = len(self._input.baseline.regions) if self._input.baseline else 1
        return self._state.accounts_total * regions

    def _cancelled(self) -> bool:
        return self._state.status == RolloutStatus.cancelled

    def _drop_survey(self) -> None:
        """Forget the look-ahead; the wave after a stop looks again when it starts. It is left
        to finish, not cancelled: it is one read, and a cancel can cross the activity's
        completion (a command for an activity that has ended, which the server refuses; the
        time-skipping server then stalls the workflow, one run in fifteen)."""
        self._next_survey = None

    def _summary(self) -> str:
        s = self._state
        failed = len(s.accounts_failed)
        created = f" ({s.accounts_created} given the baseline)" if s.accounts_created else ""
        return (
            f"{s.accounts_done} updated{created}, {failed} failed,"
            f" {s.accounts_skipped} already current"
        )

    # ------------------------------------------------------------------ decisions
    @workflow.update(name=contract.PLANNED)
    async def planned(self) -> RolloutState:
        """Answers once the plan is made: what the POST returns."""
        await workflow.wait_condition(lambda: self._planned)
        return self._state

    @workflow.update(name=contract.APPROVE)
    def approve(self, by: str) -> RolloutState:
        self._state.approvals.append(by)
        self._event(
            by, "approve", f"{len(self._state.approvals)} of {self._state.approvals_required}"
        )
        if len(self._state.approvals) >= self._state.approvals_required:
            self._set(RolloutStatus.running, by, "start", "approved")
        return self._state

    @approve.validator
    def _check_approve(self, by: str) -> None:
        self._expect(RolloutStatus.pending_approval)
        if by == self._state.requested_by:
            raise ApplicationError(
                "nobody may approve a rollout they asked for", type="SelfApproval"
            )
        if by in self._state.approvals:
            raise ApplicationError(f"{by} has already approved this rollout", type="Duplicate")

    @workflow.update(name=contract.PAUSE)
    def pause(self, by: str) -> RolloutState:
        self._set(RolloutStatus.paused, by, "pause", "stops before the next wave")
        self._drop_survey()  # the wave after the pause looks again when it starts
        return self._state

    @pause.validator
    def _check_pause(self, by: str) -> None:
        self._expect(RolloutStatus.running)

    @workflow.update(name=contract.RESUME)
    def resume(self, by: str) -> RolloutState:
        if self._state.status == RolloutStatus.halted:
            self._accepted_failures = len(self._state.accounts_failed)
        self._state.problem = None
        self._set(RolloutStatus.running, by, "resume", "")
        return self._state

    @resume.validator
    def _check_resume(self, by: str) -> None:
        self._expect(RolloutStatus.paused, RolloutStatus.halted)

    @workflow.update(name=contract.CANCEL)
    async def cancel(self, by: str) -> RolloutState:
        """No further wave starts, and the StackSet operation running now is stopped (AWS lets
        the instances in flight finish); the accounts it did not reach are left as they were."""
        for wave in self._state.waves:
            if wave.status == "planned":
                wave.status = "cancelled"
        running = self._running
        self._set(RolloutStatus.cancelled, by, "cancel", "no further wave starts")
        self._drop_survey()
        if running is not None and running.action != "AssignPolicy":
            assert self._input.baseline is not None
            stopping = await workflow.execute_activity(
                "stop_stack_set_operation",
                StopOperationInput(
                    baseline=self._input.baseline, operation_id=running.operation_id
                ),
                result_type=bool,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
            if stopping:
                self._event(by, "stop", f"StopStackSetOperation {running.operation_id}")
        return self._state

    @cancel.validator
    def _check_cancel(self, by: str) -> None:
        self._expect(RolloutStatus.pending_approval, *ACTIVE)

    def _expect(self, *allowed: RolloutStatus) -> None:
        if self._state.status not in allowed:
            raise ApplicationError(
                f"the rollout is {self._state.status.value}", type="InvalidState"
            )

    @workflow.query(name=contract.GET_STATE)
    def get_state(self) -> RolloutState:
        return self._state

    # ------------------------------------------------------------------ record
    def _set(self, status: RolloutStatus, by: str, action: str, detail: str) -> None:
        self._state.status = status
        self._event(by, action, detail)
        workflow.upsert_search_attributes([sa.STATUS.value_set(status.value)])

    def _event(self, by: str, action: str, detail: str) -> None:
        self._state.events.append(
            RolloutEvent(at=workflow.now(), by=by, action=action, detail=detail)
        )
        self._touch()

    def _touch(self) -> None:
        self._state.updated_at = workflow.now()
        workflow.upsert_memo({contract.STATE_MEMO: self._state})
