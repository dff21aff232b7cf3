"""CloseQuotaQueue: the organization's account closures, in line for AWS's close quota.

AWS closes at most the higher of 250 or 20 % of an organization's member accounts (at most
1,000) in a rolling 30 days and refuses the rest with ``ConstraintViolationException``.
Refusals are not an operator's problem: every ``close_account`` step asks this one workflow
(id ``CLOSE_QUOTA_ID``) for its turn. It counts the closures it let through inside the window,
grants the first in line when the count is below the limit, and otherwise tells each waiting
request its position and when the window next frees a place. When AWS refuses anyway (closures
made outside the engine count too), the head keeps its place and asks again later.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field

CLOSE_QUOTA_ID = "close-quota"
CLOSE_NOTICE = "close_quota_notice"


class CloseTurn(BaseModel):
    request_id: str
    workflow_id: str
    limit: int  # what the organization's size allows, as the asking request found it


class CloseOutcome(BaseModel):
    request_id: str
    outcome: str  # "closed" (CloseAccount accepted) | "refused" (AWS's quota) | "withdrawn"


class CloseNotice(BaseModel):
    kind: str  # "queued" | "granted"
    position: int | None = None
    next_free_at: datetime | None = None


class CloseQuotaState(BaseModel):
    window_seconds: float = 30 * 86400.0
    refused_retry_seconds: float = 900.0
    closures: list[datetime] = Field(default_factory=list)  # inside the window only
    queue: list[CloseTurn] = Field(default_factory=list)
    granted: str | None = None  # the request now calling CloseAccount
    refused_until: datetime | None = None


@workflow.defn(name="CloseQuotaQueue", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class CloseQuotaQueue:
    @workflow.init
    def __init__(self, state: CloseQuotaState) -> None:
        self._s = state
        self._changed = False
        self._told: dict[str, int] = {}  # the position each request was last told

    @workflow.run
    async def run(self, state: CloseQuotaState) -> None:
        while not workflow.info().is_continue_as_new_suggested():
            self._changed = False
            self._expire()
            await self._grant()
            wake = self._next_wake()
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._changed,
                    timeout=None if wake is None else max(wake, timedelta(seconds=1)),
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._s)

    def _expire(self) -> None:
        start = workflow.now() - timedelta(seconds=self._s.window_seconds)
        self._s.closures = [at for at in self._s.closures if at > start]
        if self._s.refused_until is not None and self._s.refused_until <= workflow.now():
            self._s.refused_until = None

    def _limit(self) -> int:
        return min((t.limit for t in self._s.queue), default=10)

    def _free_at(self, nth: int) -> datetime:
        """When the window has room for the ``nth`` request in line (0: the head)."""
        window = timedelta(seconds=self._s.window_seconds)
        over = len(self._s.closures) - self._limit() + nth
        if over < 0:
            free = workflow.now()
        elif over < len(self._s.closures):
            free = sorted(self._s.closures)[over] + window
        else:
            free = workflow.now() + window
        if self._s.refused_until is not None:
            free = max(free, self._s.refused_until)
        return free

    async def _grant(self) -> None:
        s = self._s
        room = len(s.closures) < self._limit()
        if s.granted is None and s.queue and s.refused_until is None and room:
            s.granted = s.queue[0].request_id
            self._told.pop(s.granted, None)
            await self._tell(s.queue[0], CloseNotice(kind="granted"))
        for position, turn in enumerate(s.queue, start=1):
            if turn.request_id != s.granted and self._told.get(turn.request_id) != position:
                self._told[turn.request_id] = position
                notice = CloseNotice(
                    kind="queued", position=position, next_free_at=self._free_at(position - 1)
                )
                await self._tell(turn, notice)

    def _next_wake(self) -> timedelta | None:
        s, now = self._s, workflow.now()
        moments = []
        if s.refused_until is not None:
            moments.append(s.refused_until)
        if s.queue and s.closures and len(s.closures) >= self._limit():
            moments.append(min(s.closures) + timedelta(seconds=s.window_seconds))
        return min(moments) - now if moments else None

    async def _tell(self, turn: CloseTurn, notice: CloseNotice) -> None:
        await workflow.get_external_workflow_handle(turn.workflow_id).signal(CLOSE_NOTICE, notice)

    @workflow.signal
    def ask(self, turn: CloseTurn) -> None:
        if not any(t.request_id == turn.request_id for t in self._s.queue):
            self._s.queue.append(turn)
        self._changed = True

    @workflow.signal
    def done(self, outcome: CloseOutcome) -> None:
        s = self._s
        if outcome.outcome == "refused":
            # AWS counts closures the engine did not make: keep the head's place, ask later.
            s.refused_until = workflow.now() + timedelta(seconds=s.refused_retry_seconds)
        else:
            if outcome.outcome == "closed":
                s.closures.append(workflow.now())
            s.queue = [t for t in s.queue if t.request_id != outcome.request_id]
        if s.granted == outcome.request_id:
            s.granted = None
        self._changed = True

    @workflow.signal
    def configure(self, settings: CloseQuotaState) -> None:
        self._s.window_seconds = settings.window_seconds
        self._s.refused_retry_seconds = settings.refused_retry_seconds
        self._changed = True

    @workflow.query
    def get_state(self) -> CloseQuotaState:
        return self._s
