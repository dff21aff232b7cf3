"""The bodies and answers of ``/v1/leases`` and ``/v1/pools`` (their OpenAPI shapes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from common.leases import LeaseState, PoolAccount, PoolState, Provisioning

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class LeaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: Annotated[str, StringConstraints(min_length=1, max_length=63)] = Field(
        examples=["sandbox-week"]
    )
    justification: Text
    duration: timedelta | None = Field(
        default=None, description="ISO 8601 (P3D) or seconds; the template's default otherwise"
    )
    budget_usd: int | None = Field(default=None, ge=1)
    for_group: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        default=None, description="an Identity Center group the template leases to"
    )


class LeaseView(LeaseState):
    time_left_seconds: float | None = None


class LeasePage(BaseModel):
    items: list[LeaseView]


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(max_length=2000)] = ""


class ExtendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ends_at: AwareDatetime = Field(
        description="the new end (with its time zone), within the template's longest lease"
    )


class UnfreezeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ends_at: AwareDatetime | None = None
    budget_usd: int | None = Field(default=None, ge=1)
    reason: Annotated[str, StringConstraints(max_length=2000)] = ""


class PoolView(BaseModel):
    organizational_unit: str
    min_available: int
    max_accounts: int
    counts: dict[str, int]
    accounts: list[PoolAccount]
    provisioning: list[Provisioning]
    waiting_leases: int
    recent_failures: list[str]
    stale: bool = False

    @classmethod
    def of(cls, state: PoolState, stale: bool) -> PoolView:
        counts: dict[str, int] = {}
        for account in state.accounts.values():
            counts[account.state.value] = counts.get(account.state.value, 0) + 1
        counts["provisioning"] = len(state.provisioning)
        spec = state.config.spec
        return cls(
            organizational_unit=spec.organizational_unit,
            min_available=spec.min_available,
            max_accounts=spec.max_accounts,
            counts=counts,
            accounts=sorted(state.accounts.values(), key=lambda a: a.account_id),
            provisioning=state.provisioning,
            waiting_leases=len(state.waiting),
            recent_failures=state.failures,
            stale=stale,
        )


class PoolPage(BaseModel):
    items: list[PoolView]
