"""The cost an approver sees before approving, following the reseller's price sheet.

The sheet (Trend Micro Cloud One Workload Security managed operations, offered with the Sunny Pay
reseller billing service) has three lines, and only two of them carry a discount:

- Workload Security usage is billed per instance-hour through AWS Marketplace with the AWS bill.
  It normally has no discount; billed through Sunny Pay it is 5 % off.
- The managed-operations service has an initial fee (covering up to six instances) and a monthly
  fee (a base plus a fee per instance). The sheet states no discount for it, so none is applied:
  an estimate that shows less than the invoice will say is worse than none.
- Sunny Pay takes 5 % off the AWS usage bill. That is not part of this estimate (the engine does
  not guess a workload's AWS spend), but a request that states a budget is told, because the
  budget is at list prices and the bill is not.

Every figure is a setting (``VEND_PRICING__…``) whose default is the sheet's value.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, Field


class InstanceCounts(BaseModel):
    """Expected EC2 instances by size class (the request may state them)."""

    micro_to_medium: int = Field(default=0, ge=0, le=10_000, description="1 vCPU")
    large: int = Field(default=0, ge=0, le=10_000, description="2 vCPU")
    xlarge_and_up: int = Field(default=0, ge=0, le=10_000, description="4+ vCPU")

    @property
    def total(self) -> int:
        return self.micro_to_medium + self.large + self.xlarge_and_up


class PriceTable(BaseModel):
    hourly_usd_micro_to_medium: Decimal = Decimal("0.011")
    hourly_usd_large: Decimal = Decimal("0.032")
    hourly_usd_xlarge_and_up: Decimal = Decimal("0.047")
    hours_per_month: int = 730
    managed_initial_fee_jpy: int = 100_000
    managed_initial_covers_instances: int = 6
    managed_monthly_per_instance_jpy: int = 5_000
    managed_monthly_base_jpy: int = 20_000
    workload_security_discount_percent: Decimal = Field(
        default=Decimal("5"),
        description="off Cloud One Workload Security usage when it is billed through Sunny Pay",
    )
    aws_usage_discount_percent: Decimal = Field(
        default=Decimal("5"), description="off the AWS usage bill through Sunny Pay"
    )


class BudgetAtSunnyPay(BaseModel):
    """A stated budget beside what Sunny Pay bills for that much AWS usage at list prices."""

    monthly_usd: int = Field(description="the budget as the request states it (list prices)")
    billed_monthly_usd: Decimal = Field(
        description="what that much usage at list prices is billed through Sunny Pay"
    )
    discount_percent: Decimal


class CostEstimate(BaseModel):
    instances: int = Field(description="expected instances; 0 when the request stated none")
    instances_stated: bool = Field(
        default=True, description="false: only a budget was stated, no fee is estimated"
    )
    workload_security_monthly_usd: Decimal = Field(description="at AWS Marketplace list prices")
    workload_security_monthly_usd_discounted: Decimal = Field(
        description="what Sunny Pay bills for it: the one line of the sheet with a discount"
    )
    workload_security_discount_percent: Decimal
    managed_initial_fee_jpy: int = Field(description="once, when managed operations start")
    managed_monthly_fee_jpy: int = Field(description="base plus per instance; no discount")
    budget: BudgetAtSunnyPay | None = None
    notes: list[str] = Field(default_factory=list)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _off(percent: Decimal) -> Decimal:
    return (Decimal(100) - percent) / Decimal(100)


def estimate(
    counts: InstanceCounts | None,
    table: PriceTable,
    protected: bool,
    budget_monthly_usd: int | None = None,
) -> CostEstimate | None:
    """None when the request states neither instances nor a budget: nothing to estimate from."""
    if counts is None and budget_monthly_usd is None:
        return None
    stated = counts is not None
    protected = protected and stated
    counts = counts or InstanceCounts()
    hourly = (
        counts.micro_to_medium * table.hourly_usd_micro_to_medium
        + counts.large * table.hourly_usd_large
        + counts.xlarge_and_up * table.hourly_usd_xlarge_and_up
    )
    ws = hourly * table.hours_per_month if protected else Decimal(0)
    managed = (
        table.managed_monthly_base_jpy + counts.total * table.managed_monthly_per_instance_jpy
        if protected
        else 0
    )
    notes = [f"{table.hours_per_month} hours a month; prices before tax"]
    if not stated:
        notes.append("no instances stated: Workload Security and managed fees not estimated")
    elif not protected:
        notes.append("Workload Security is off for this request: no agent or managed fees")
    elif counts.total > table.managed_initial_covers_instances:
        notes.append(
            f"the initial fee covers up to {table.managed_initial_covers_instances} instances; "
            "larger fleets are quoted separately"
        )
    budget = None
    if budget_monthly_usd is not None:
        budget = BudgetAtSunnyPay(
            monthly_usd=budget_monthly_usd,
            billed_monthly_usd=_cents(
                Decimal(budget_monthly_usd) * _off(table.aws_usage_discount_percent)
            ),
            discount_percent=table.aws_usage_discount_percent,
        )
        notes.append(
            f"AWS usage through Sunny Pay is billed {table.aws_usage_discount_percent} % below "
            f"list: a budget of ${budget_monthly_usd} at list prices is billed "
            f"${budget.billed_monthly_usd}"
        )
    return CostEstimate(
        instances=counts.total,
        instances_stated=stated,
        workload_security_monthly_usd=_cents(ws),
        workload_security_monthly_usd_discounted=_cents(
            ws * _off(table.workload_security_discount_percent)
        ),
        workload_security_discount_percent=table.workload_security_discount_percent,
        managed_initial_fee_jpy=table.managed_initial_fee_jpy if protected else 0,
        managed_monthly_fee_jpy=managed,
        budget=budget,
        notes=notes,
    )


def summary(cost: CostEstimate) -> str:
    """The estimate in one line, as every place that shows it (CLI, mail) words it."""
    parts = [f"{cost.instances} instance(s)" if cost.instances_stated else "no instances stated"]
    if cost.workload_security_monthly_usd:
        parts.append(
            f"Workload Security ${cost.workload_security_monthly_usd_discounted}/month "
            f"({cost.workload_security_discount_percent} % off through Sunny Pay)"
        )
    if cost.managed_monthly_fee_jpy:
        parts.append(
            f"managed operations ¥{cost.managed_monthly_fee_jpy:,}/month "
            f"and ¥{cost.managed_initial_fee_jpy:,} once"
        )
    if cost.budget is not None:
        parts.append(
            f"budget ${cost.budget.monthly_usd}/month at list prices, billed "
            f"${cost.budget.billed_monthly_usd} through Sunny Pay"
        )
    return "; ".join(parts)
