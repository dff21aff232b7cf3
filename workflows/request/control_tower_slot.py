"""This request's side of the Control Tower coordinator: its slot, and the answers it waits for.

Control Tower allows a few account operations and one OU operation at a time across the whole
organization (see ``coordinator.py``). A request holds at most one slot; everything the
coordinator tells it (queue position, grant, outcomes of the operations it ran on the request's
behalf) arrives as one signal, handled by :meth:`ControlTowerSlot.on_notice`. The flags below are
the only state that signal changes, and only this class reads them.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.control_tower import AccountFactoryInput
    from common.models import StepPolicy
    from workflows.coordinator import (
        COORDINATOR_ID,
        ControlTowerCoordinator,
        Notice,
        OuEnrollmentRequest,
        SlotRequest,
    )

Show = Callable[[str, int | None], None]


class ControlTowerSlot:
    def __init__(self, request_id: str, show: Show) -> None:
        self._request_id = request_id
        self._show = show
        self.held = False
        self._granted = False
        self._ou_done: Notice | None = None
        self._provisioned: Notice | None = None

    def _coordinator(self) -> workflow.ExternalWorkflowHandle[ControlTowerCoordinator]:
        return workflow.get_external_workflow_handle_for(
            ControlTowerCoordinator.run, COORDINATOR_ID
        )

    def _slot_request(
        self, factory: AccountFactoryInput | None = None, policy: StepPolicy | None = None
    ) -> SlotRequest:
        return SlotRequest(
            workflow_id=workflow.info().workflow_id,
            request_id=self._request_id,
            factory=factory,
            policy=policy,
        )

    async def acquire(self) -> None:
        """Wait for a slot (first come, first served); a slot already held is kept."""
        if self.held:
            return
        self._granted = False
        await self._coordinator().signal(ControlTowerCoordinator.acquire, self._slot_request())
        self._show("waiting for a Control Tower account-operation slot", None)
        await workflow.wait_condition(lambda: self._granted)
        self.held = True

    async def release(self) -> None:
        """Give the slot back; safe to call whether or not one is held."""
        if not self.held:
            return
        self.held = False
        await self._coordinator().signal(
            ControlTowerCoordinator.release, workflow.info().workflow_id
        )

    async def provision(self, factory: AccountFactoryInput, policy: StepPolicy) -> Notice:
        """Have the coordinator run Account Factory in one of its slots; wait for the outcome."""
        self._provisioned = None
        self._granted = False
        await self._coordinator().signal(
            ControlTowerCoordinator.provision, self._slot_request(factory, policy)
        )
        self._show("waiting for a Control Tower account-operation slot", None)
        await workflow.wait_condition(lambda: self._provisioned is not None)
        assert self._provisioned is not None
        return self._provisioned

    async def reset_ou(self, account_id: str, enabled_baseline_arn: str) -> Notice:
        """Queue for the OU's baseline reset (requests for one OU share one); wait for its end."""
        self._ou_done = None
        await self._coordinator().signal(
            ControlTowerCoordinator.enroll_via_ou,
            OuEnrollmentRequest(
                workflow_id=workflow.info().workflow_id,
                request_id=self._request_id,
                account_id=account_id,
                enabled_baseline_arn=enabled_baseline_arn,
            ),
        )
        self._show("queued for an OU baseline reset (one OU operation at a time)", None)
        await workflow.wait_condition(lambda: self._ou_done is not None)
        assert self._ou_done is not None
        return self._ou_done

    def on_notice(self, notice: Notice) -> None:
        if notice.kind == "granted":
            self._granted = True
            if self._provisioned is None:  # notices may cross: the outcome may come first
                self._show("running a Control Tower account operation", None)
        elif notice.kind == "queued" and not self._granted:
            # Notices travel separately: a position sent just before the grant may arrive after.
            self._show(
                f"queued for a Control Tower slot (position {notice.position})", notice.position
            )
        elif notice.kind == "ou_started":
            self._show("OU baseline reset in progress", None)
        elif notice.kind == "ou_done":
            self._ou_done = notice
        elif notice.kind == "provisioned":
            self._provisioned = notice
