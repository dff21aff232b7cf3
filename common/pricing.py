"""The monthly cost an approver sees before approving (price table from the Sunny Pay deck).

Workload Security is billed per instance-hour through AWS Marketplace; the managed-operations
service has an initial fee and a monthly fee. A Sunny Pay subscription takes 5% off both.
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
    sunny_pay_discount_percent: Decimal = Decimal("5")


class CostEstimate(BaseModel):
    instances: int
    workload_security_monthly_usd: Decimal
    workload_security_monthly_usd_discounted: Decimal
    managed_initial_fee_jpy: int
    managed_monthly_fee_jpy: int
    managed_monthly_fee_jpy_discounted: int
    discount_percent: Decimal
    notes: list[str] = Field(default_factory=list)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def estimate(counts: InstanceCounts, table: PriceTable, protected: bool) -> CostEstimate:
    hourly = (
        counts.micro_to_medium * table.hourly_usd_micro_to_medium
        + counts.large * table.hourly_usd_large
        + counts.xlarge_and_up * table.hourly_usd_xlarge_and_up
    )
    ws = hourly * table.hours_per_month if protected else Decimal(0)
    keep = (Decimal(100) - table.sunny_pay_discount_percent) / Decimal(100)
    managed = (
        table.managed_monthly_base_jpy + counts.total * table.managed_monthly_per_instance_jpy
        if protected
        else 0
    )
    notes = [f"{table.hours_per_month} hours a month; prices before tax"]
    if not protected:
        notes.append("Workload Security is off for this request: no agent or managed fees")
    elif counts.total > table.managed_initial_covers_instances:
        notes.append(
            f"the initial fee covers up to {table.managed_initial_covers_instances} instances; "
            "larger fleets are quoted separately"
        )
    return CostEstimate(
        instances=counts.total,
        workload_security_monthly_usd=_cents(ws),
        workload_security_monthly_usd_discounted=_cents(ws * keep),
        managed_initial_fee_jpy=table.managed_initial_fee_jpy if protected else 0,
        managed_monthly_fee_jpy=managed,
        managed_monthly_fee_jpy_discounted=int(
            (Decimal(managed) * keep).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        ),
        discount_percent=table.sunny_pay_discount_percent,
        notes=notes,
    )
