"""SandboxLease: one person's (or one group's) lease of a pool account, from asking to return.

Asked → approved (when the template says so) → an account from the pool → granted (Identity
Center access, a budget, tags: nothing in Organizations or Control Tower, so seconds) → active
until its end (its timers: the duration thresholds, the 24-hour warning, the end itself, all
durable, so a lease ends on time however many workers restart) → access removed at once →
returned to the pool, whose keeper cleans the account. The lease never waits on cleaning: the
holder is done when access is gone.

Decisions (approve, reject, extend, end, unfreeze) arrive as updates, each checked before it is
accepted, so the caller learns at once whether it took.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.identity_center import AccessInput, IdentityCenterActivities
    from activities.notifications import Notification
    from activities.stack_sets import DeployBaselineInput, DeployBaselineResult
    from common import leases as contract
    from common import search_attributes as sa
    from common.account_settings import EffectiveAccess
    from common.lease_policy import ThresholdAction
    from common.leases import (
        Approval,
        Assignment,
        Ending,
        Extension,
        LeaseBudget,
        LeaseClaim,
        LeaseEvent,
        LeaseGrant,
        LeaseInput,
        LeaseSpend,
        LeaseState,
        LeaseStatus,
        Returned,
        Unfreeze,
    )
    from workflows.leasing import metrics

WARN_BEFORE_END = timedelta(hours=24)
RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))


@workflow.defn(name=contract.LEASE_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class SandboxLease:
    @workflow.init
    def __init__(self, inp: LeaseInput) -> None:
        self._in = inp
        self._s = LeaseState(
            lease_id=inp.lease_id,
            status=LeaseStatus.pending_approval
            if inp.template.approvals_required
            else LeaseStatus.waiting_for_account,
            template=inp.template.name,
            organizational_unit=inp.template.organizational_unit,
            holder=inp.holder.sub,
            for_group=inp.for_group,
            justification=inp.justification,
            budget_usd=inp.budget_usd,
            duration_seconds=inp.duration_seconds,
            approvals_required=inp.template.approvals_required,
            sign_in_url=inp.sign_in_url,
        )
        self._rejected: Approval | None = None
        self._ending: Ending | None = None
        self._changed = False
        self._frozen_by: str | None = None
        self._freeze_wanted = False
        self._budget_changed = False
        self._retry_by: str | None = None
        self._budget_start: datetime | None = None
        self._published: LeaseStatus | None = None
        self._asked_at = inp.created_at
        self._next_spend_check = inp.created_at

    # ------------------------------------------------------------------ the life
    @workflow.run
    async def run(self, inp: LeaseInput) -> LeaseState:
        self._event(inp.holder.sub, "requested", f"{inp.template.name}: {inp.justification}")
        self._publish()
        if inp.template.approvals_required and not await self._approved():
            return self._s
        if self._ending is not None:  # ended before it had an account: nothing to give back
            return await self._close(None)
        account = await self._account()
        if account is None:
            return await self._close(None)
        await self._step("grant", lambda: self._grant(account))
        if inp.baselines:
            await self._step("blueprints", lambda: self._blueprints(account, "deploy_baseline"))
        await self._hold()
        return await self._close(account)

    async def _approved(self) -> bool:
        window = timedelta(seconds=self._in.approval_window_seconds)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: (
                    self._rejected is not None
                    or self._ending is not None
                    or len(self._s.approvals) >= self._in.template.approvals_required
                ),
                timeout=window,
            )
        if self._rejected is not None or self._ending is not None:
            self._s.status = LeaseStatus.rejected
        elif len(self._s.approvals) < self._in.template.approvals_required:
            self._s.status = LeaseStatus.expired
            self._event("system", "expired", "not approved within the approval window")
        else:
            self._s.status = LeaseStatus.waiting_for_account
            self._asked_at = workflow.now()  # the time to grant counts from the approval
            self._publish()
            return True
        self._s.ended_at = workflow.now()
        self._publish()
        await self._notify(self._s.status.value)
        return False

    async def _account(self) -> str | None:
        """Ask the pool; it answers with an account (least recently used first) when it has one
        (at once from a warm pool), or the lease is ended before then."""
        pool = workflow.get_external_workflow_handle(self._in.pool)
        claim = LeaseClaim(lease_id=self._in.lease_id, workflow_id=workflow.info().workflow_id)
        await pool.signal(contract.WANT, claim)
        await workflow.wait_condition(
            lambda: self._s.account_id is not None or self._ending is not None
        )
        if self._s.account_id is None:
            await pool.signal(contract.WITHDRAW, claim)
            return None
        self._event("system", "assigned", f"account {self._s.account_id} from the pool")
        return self._s.account_id

    async def _grant(self, account: str) -> None:
        """The budget (and its freeze) and the access at once: the lease is usable when both
        are in place, and its time starts then; the tags, which carry its end, follow."""
        self._s.status = LeaseStatus.granting
        self._publish()
        self._budget_start = workflow.now()
        await asyncio.gather(
            self._set_budget(account),
            self._access(IdentityCenterActivities.assign_access, account),
        )
        self._s.granted_at = workflow.now()
        self._s.ends_at = self._s.granted_at + timedelta(seconds=self._in.duration_seconds)
        self._s.status = LeaseStatus.active
        metrics.granted(self._in.template.name, self._asked_at)
        self._event("system", "granted", f"account {account} until {self._s.ends_at.isoformat()}")
        self._publish()
        grant = LeaseGrant(
            account_id=account,
            lease_id=self._in.lease_id,
            holder=self._holder(),
            ends_at=self._s.ends_at,
        )
        await self._quick("tag_lease_account", grant)
        await self._notify("granted")

    async def _hold(self) -> None:
        """Active (or frozen) until the end: the durable timers of the thresholds and the end."""
        while self._ending is None:
            now = workflow.now()
            assert self._s.ends_at is not None
            if now >= self._s.ends_at:
                self._ending = Ending(by="system", reason="the lease reached its end")
                break
            await self._reach_thresholds(now)
            if self._spend_checked and now >= self._next_spend_check:
                await self._check_spend()
            if self._freeze_wanted and self._s.status == LeaseStatus.active:
                await self._step("freeze", self._freeze)
            if self._s.status == LeaseStatus.frozen and self._frozen_by is None:
                await self._step("unfreeze", self._unfreeze)
            self._changed = False
            wake = min(self._moments(now), default=self._s.ends_at)
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._changed, timeout=max(wake - now, timedelta(seconds=1))
                )

    def _moments(self, now: datetime) -> list[datetime]:
        """What the lease next wakes for: its end, its warning, its duration thresholds."""
        assert self._s.ends_at is not None and self._s.granted_at is not None
        found = [self._s.ends_at]
        if self._spend_checked:
            found.append(self._next_spend_check)
        warn = self._s.ends_at - WARN_BEFORE_END
        if "ending_soon" not in self._s.thresholds_reached and warn > now:
            found.append(warn)
        for key, at, _ in self._duration_thresholds():
            if key not in self._s.thresholds_reached and at > now:
                found.append(at)
        return found

    def _duration_thresholds(self) -> list[tuple[str, datetime, ThresholdAction]]:
        assert self._s.ends_at is not None and self._s.granted_at is not None
        span = self._s.ends_at - self._s.granted_at
        return [
            (f"duration {t.duration_percent}%", self._s.granted_at + span * pct, t.action)
            for t in self._in.template.thresholds
            if t.duration_percent is not None and (pct := t.duration_percent / 100)
        ]

    async def _reach_thresholds(self, now: datetime) -> None:
        assert self._s.ends_at is not None
        for key, at, action in self._duration_thresholds():
            if key in self._s.thresholds_reached or at > now:
                continue
            self._s.thresholds_reached.append(key)
            self._event("system", "threshold", f"{key}: {action.value}")
            if action == ThresholdAction.freeze:
                self._freeze_wanted, self._frozen_by = True, key
            self._publish()
            await self._notify("threshold", key)
        warn = self._s.ends_at - WARN_BEFORE_END
        if "ending_soon" not in self._s.thresholds_reached and now >= warn:
            self._s.thresholds_reached.append("ending_soon")
            self._publish()
            await self._notify("ending_soon", f"ends at {self._s.ends_at.isoformat()}")

    @property
    def _spend_checked(self) -> bool:
        return any(t.budget_percent for t in self._in.template.thresholds)

    async def _check_spend(self) -> None:
        """What Budgets and Cost Explorer say: the budget's notices, and whether AWS Budgets
        applied the freeze (it does not wait for this check; the lease confirms it here)."""
        assert self._s.account_id is not None
        spend: LeaseSpend = await workflow.execute_activity(
            "lease_spend",
            self._budget(self._s.account_id),
            result_type=LeaseSpend,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        self._next_spend_check = workflow.now() + timedelta(seconds=self._in.spend_check_seconds)
        changed = (spend.budget_usd, spend.cost_explorer_usd) != (
            self._s.spent_usd,
            self._s.cost_explorer_usd,
        )
        self._s.spent_usd, self._s.cost_explorer_usd = spend.budget_usd, spend.cost_explorer_usd
        for t in self._in.template.thresholds:
            if t.budget_percent is None:
                continue
            key = f"budget {t.budget_percent}%"
            reached = spend.budget_usd >= self._s.budget_usd * t.budget_percent / 100
            if reached and key not in self._s.thresholds_reached:
                self._s.thresholds_reached.append(key)
                self._event("system", "threshold", f"{key}: {spend.budget_usd:.2f} USD")
                changed = True
                await self._notify("threshold", key)
        freeze_at = self._freeze_percent()
        over = freeze_at is not None and spend.budget_usd >= self._s.budget_usd * freeze_at / 100
        if (spend.freeze_applied or over) and self._s.status == LeaseStatus.active:
            self._freeze_wanted, self._frozen_by = True, self._budget_freeze_key()
        if changed:
            self._publish()

    def _budget_freeze_key(self) -> str:
        return f"budget {self._freeze_percent()}%"

    def _freeze_percent(self) -> int | None:
        found = [
            t.budget_percent
            for t in self._in.template.thresholds
            if t.budget_percent and t.action == ThresholdAction.freeze
        ]
        return min(found) if found else None

    async def _set_budget(self, account: str) -> None:
        """The lease's budget, and the budget action that freezes at its threshold."""
        budget = self._budget(account)
        await self._quick("create_lease_budget", budget)
        if budget.freeze_percent is not None:
            try:
                await self._quick("arm_lease_freeze", budget)
            except ActivityError as err:
                # Budgets cannot freeze on its own here: the spend checks still do, later.
                self._event("system", "freeze not armed", str(err.cause or err))
                await self._notify("freeze_not_armed", str(err.cause or err))

    async def _freeze(self) -> None:
        assert self._s.account_id is not None
        await self._quick("freeze_account", self._s.account_id)
        self._freeze_wanted = False
        self._s.status = LeaseStatus.frozen
        self._event("system", "frozen", self._frozen_by or "")
        self._publish()
        await self._notify("frozen", self._frozen_by)

    async def _unfreeze(self) -> None:
        """The budget action that fired is taken away first (else it fires again), then the
        SCP; the budget is raised and the action armed again at the new amount."""
        account = self._s.account_id
        assert account is not None
        if self._freeze_percent() is not None:
            await self._quick("disarm_lease_freeze", self._budget(account))
        await self._quick("unfreeze_account", account)
        if self._budget_changed or self._freeze_percent() is not None:
            await self._set_budget(account)
            self._budget_changed = False
        self._s.thresholds_reached = [
            t for t in self._s.thresholds_reached if not t.startswith("budget ")
        ]
        self._s.status = LeaseStatus.active
        self._publish()

    async def _quick(self, activity: str, arg: Any) -> Any:
        """One AWS call or a few (a tag, a budget, the freeze SCP): retried until it goes
        through (each is idempotent). It does not heartbeat, so a lost worker's attempt is
        given up after its start-to-close time: six heartbeat timeouts, 30 s to 2 minutes."""
        limit = min(120.0, max(30.0, 6 * self._in.heartbeat_seconds))
        return await workflow.execute_activity(
            activity, arg, start_to_close_timeout=timedelta(seconds=limit), retry_policy=RETRY
        )

    async def _step(self, what: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a step until it goes through. What AWS refuses for good (access denied, a
        missing permission set) parks the lease with AWS's reason, an operator is told, and
        the step runs again when they ask (every step is idempotent)."""
        while True:
            try:
                await run()
                return
            except ActivityError as err:
                reason = str(err.cause or err)
            self._s.problem = f"{what}: {reason}"
            self._event("system", "parked", self._s.problem)
            self._publish()
            await self._notify("waiting_for_operator", self._s.problem)
            await workflow.wait_condition(lambda: self._retry_by is not None)
            self._event(self._retry_by or "", "retry", what)
            self._retry_by, self._s.problem = None, None
            self._publish()

    async def _close(self, account: str | None) -> LeaseState:
        """Access goes first (at once), then what the grant made; the pool cleans the account.
        A frozen account stays frozen until cleaned: the pool lifts it."""
        self._s.status = LeaseStatus.ending
        ending = self._ending or Ending(by="system")
        self._event(ending.by, "end", ending.reason)
        self._publish()
        if account is not None:
            await self._step("end", lambda: self._take_back(account))
            pool = workflow.get_external_workflow_handle(self._in.pool)
            await pool.signal(
                contract.RETURNED, Returned(account_id=account, lease_id=self._in.lease_id)
            )
        self._s.status = LeaseStatus.ended
        self._s.ended_at = workflow.now()
        self._publish()
        await self._notify("ended", ending.reason)
        return self._s

    async def _blueprints(self, account: str, activity: str) -> None:
        """The template's baselines on top (after access: the account is usable meanwhile),
        or taken away at the end (the cleaner keeps StackSet stacks, so the engine removes
        what it deployed)."""
        await asyncio.gather(
            *(
                workflow.execute_activity(
                    activity,
                    DeployBaselineInput(
                        request_id=f"lease-{self._in.lease_id}",
                        account_id=account,
                        ou_id="",  # self-managed StackSets only: no OU target
                        baseline=baseline,
                        preferences=self._in.stack_set_preferences,
                    ),
                    result_type=DeployBaselineResult,
                    start_to_close_timeout=timedelta(hours=2),
                    heartbeat_timeout=timedelta(seconds=self._in.heartbeat_seconds),
                    retry_policy=RETRY,
                )
                for baseline in self._in.baselines
            )
        )
        names = ", ".join(b.stack_set_name for b in self._in.baselines)
        verb = "deployed" if activity == "deploy_baseline" else "removed"
        self._event("system", f"blueprints {verb}", names)
        self._publish()

    async def _take_back(self, account: str) -> None:
        await self._access(IdentityCenterActivities.remove_access, account)
        if self._in.baselines:
            await self._blueprints(account, "remove_baseline")
        await self._quick("delete_lease_budget", self._budget(account))
        await self._quick("untag_lease_account", account)

    # ------------------------------------------------------------------ helpers
    def _holder(self) -> str:
        return self._in.for_group or self._in.holder.sub

    def _budget_name(self) -> str:
        return f"vend-lease-{self._in.lease_id}"

    def _budget(self, account: str) -> LeaseBudget:
        return LeaseBudget(
            account_id=account,
            name=self._budget_name(),
            amount_usd=self._s.budget_usd,
            start=self._budget_start or workflow.now(),
            notify_percents=sorted(
                t.budget_percent
                for t in self._in.template.thresholds
                if t.budget_percent and t.action == ThresholdAction.notify
            ),
            subscribers=[e for e in (self._in.holder_email,) if e],
            freeze_percent=self._freeze_percent(),
        )

    async def _access(self, activity: Callable[..., Any], account: str) -> None:
        group = self._in.for_group
        access = EffectiveAccess(
            permission_sets=self._in.template.permission_sets,
            group=group,
            users=[] if group else [self._in.holder.sub],
        )
        await workflow.execute_activity_method(
            activity,
            AccessInput(account_id=account, access=access),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=self._in.heartbeat_seconds),
            retry_policy=RETRY,
        )

    def _event(self, by: str, action: str, detail: str = "") -> None:
        self._s.events.append(LeaseEvent(at=workflow.now(), by=by, action=action, detail=detail))

    def _publish(self) -> None:
        if self._s.status != self._published:
            self._published = self._s.status
            metrics.lease_status(self._in.template.name, self._s.status.value)
        pairs = [sa.STATUS.value_set(self._s.status.value)]
        if self._s.account_id:
            pairs.append(sa.ACCOUNT_ID.value_set(self._s.account_id))
        workflow.upsert_search_attributes(pairs)
        workflow.upsert_memo({contract.STATE_MEMO: self._s.model_dump(mode="json")})

    async def _notify(self, event: str, detail: str | None = None) -> None:
        note = Notification(
            event=event,
            request_id=self._in.lease_id,
            account_name=self._s.account_id or self._in.template.name,
            organizational_unit=self._in.template.organizational_unit,
            requested_by=self._in.holder.sub,
            status=self._s.status.value,
            at=workflow.now(),
            error=detail,
            requester_email=self._in.holder_email,
            kind="lease",
        )
        await workflow.execute_activity(
            "notify",
            note,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
        )

    # ------------------------------------------------------------------ decisions
    @workflow.signal(name=contract.ASSIGNED)
    def assigned(self, assignment: Assignment) -> None:
        if self._s.account_id is None:
            self._s.account_id = assignment.account_id
        self._changed = True

    @workflow.update(name=contract.APPROVE)
    def approve(self, approval: Approval) -> LeaseState:
        self._s.approvals.append(approval.by)
        self._event(approval.by, "approve", approval.reason)
        self._publish()
        return self._s

    @approve.validator
    def _may_approve(self, approval: Approval) -> None:
        if self._s.status != LeaseStatus.pending_approval:
            raise ApplicationError(f"the lease is {self._s.status.value}", type="Conflict")
        if approval.by == self._in.holder.sub:
            raise ApplicationError("nobody approves their own lease", type="Forbidden")
        if approval.by in self._s.approvals:
            raise ApplicationError("approved by this approver already", type="Conflict")

    @workflow.update(name=contract.REJECT)
    def reject(self, rejection: Approval) -> LeaseState:
        self._rejected = rejection
        self._event(rejection.by, "reject", rejection.reason)
        return self._s

    @reject.validator
    def _may_reject(self, rejection: Approval) -> None:
        if self._s.status != LeaseStatus.pending_approval:
            raise ApplicationError(f"the lease is {self._s.status.value}", type="Conflict")

    @workflow.update(name=contract.EXTEND)
    def extend(self, extension: Extension) -> LeaseState:
        old = self._s.ends_at
        self._s.ends_at = extension.ends_at
        # A threshold passed before the extension is not reached again.
        self._event(
            extension.by,
            "extend",
            f"{old.isoformat() if old else '?'} → {extension.ends_at.isoformat()}",
        )
        self._s.thresholds_reached = [t for t in self._s.thresholds_reached if t != "ending_soon"]
        self._changed = True
        self._publish()
        return self._s

    @extend.validator
    def _may_extend(self, extension: Extension) -> None:
        if self._s.status not in (LeaseStatus.active, LeaseStatus.frozen):
            raise ApplicationError(f"the lease is {self._s.status.value}", type="Conflict")
        assert self._s.granted_at is not None and self._s.ends_at is not None
        latest = self._s.granted_at + self._in.template.max_duration
        if extension.ends_at > latest:
            raise ApplicationError(
                f"the template allows a lease until {latest.isoformat()} at the latest",
                type="Invalid",
            )
        if extension.ends_at <= self._s.ends_at:
            raise ApplicationError("an extension ends later than the lease does", type="Invalid")

    @workflow.update(name=contract.END)
    def end(self, ending: Ending) -> LeaseState:
        self._ending = ending
        self._changed = True
        return self._s

    @end.validator
    def _may_end(self, ending: Ending) -> None:
        if self._s.status in (LeaseStatus.ending, *contract.CLOSED) or self._ending is not None:
            raise ApplicationError(f"the lease is {self._s.status.value}", type="Conflict")

    @workflow.update(name=contract.UNFREEZE)
    def unfreeze(self, change: Unfreeze) -> LeaseState:
        """An approver or operator lifts the freeze, with a higher budget or a later end."""
        self._frozen_by = None
        said = []
        if change.ends_at is not None:
            self._s.ends_at = change.ends_at
            said.append(f"until {change.ends_at.isoformat()}")
        if change.budget_usd is not None:
            self._s.budget_usd = change.budget_usd
            self._budget_changed = True
            said.append(f"budget {change.budget_usd} USD")
        self._event(change.by, "unfreeze", ", ".join(said) or change.reason)
        self._changed = True
        return self._s

    @unfreeze.validator
    def _may_unfreeze(self, change: Unfreeze) -> None:
        if self._s.status != LeaseStatus.frozen or self._frozen_by is None:
            raise ApplicationError(f"the lease is {self._s.status.value}", type="Conflict")
        assert self._s.granted_at is not None and self._s.ends_at is not None
        if change.ends_at is not None and not (
            self._s.ends_at <= change.ends_at <= self._s.granted_at + self._in.template.max_duration
        ):
            raise ApplicationError(
                "the new end is before the current one or past the template's longest lease",
                type="Invalid",
            )
        if change.budget_usd is None and (self._frozen_by or "").startswith("budget "):
            raise ApplicationError(
                "a lease frozen by its budget is unfrozen with a higher budget", type="Invalid"
            )
        if change.budget_usd is not None and not (
            self._s.budget_usd < change.budget_usd <= self._in.template.max_budget_usd
        ):
            raise ApplicationError(
                f"a new budget is above the current one and at most "
                f"{self._in.template.max_budget_usd} USD",
                type="Invalid",
            )

    @workflow.update(name=contract.RETRY)
    def retry(self, action: Ending) -> LeaseState:
        self._retry_by = action.by
        return self._s

    @retry.validator
    def _may_retry(self, action: Ending) -> None:
        if self._s.problem is None:
            raise ApplicationError("the lease waits for no operator", type="Conflict")

    @workflow.query(name=contract.GET_STATE)
    def get_state(self) -> LeaseState:
        return self._s
