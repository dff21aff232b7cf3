"""What an account's own workflow starts with: shared by the workflow, the request that puts a
vended account in the inventory, and the local activity that starts the workflow for it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.models import AccountEvent, ChangeTurn, ManagedAccount


class ManagedAccountInput(BaseModel):
    account: ManagedAccount
    events: list[AccountEvent] = Field(default_factory=list)
    events_dropped: int = 0  # lines of the trail before ``events`` (beyond the window)
    turns: list[ChangeTurn] = Field(default_factory=list)  # carried over continue-as-new
