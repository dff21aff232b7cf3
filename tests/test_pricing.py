"""The cost estimate, line by line against the price sheet (no stack: the arithmetic alone)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from activities.notifications import Notification, SmtpConfig, compose
from common.pricing import CostEstimate, InstanceCounts, PriceTable, estimate, summary
from common.settings import Settings

SHEET = PriceTable()


def _estimate(protected: bool = True, budget: int | None = None, **counts: int) -> CostEstimate:
    found = estimate(InstanceCounts(**counts), SHEET, protected, budget_monthly_usd=budget)
    assert found is not None
    return found


def test_workload_security_usage_is_the_one_line_discounted_through_sunny_pay() -> None:
    est = _estimate(micro_to_medium=3)
    # $0.011 x 3 x 730 h = $24.09 at Marketplace list prices; 5 % off through Sunny Pay.
    assert est.workload_security_monthly_usd == Decimal("24.09")
    assert est.workload_security_monthly_usd_discounted == Decimal("22.89")
    assert est.workload_security_discount_percent == Decimal("5")


def test_each_size_class_has_its_hourly_price() -> None:
    assert _estimate(large=1).workload_security_monthly_usd == Decimal("23.36")  # 0.032 x 730
    assert _estimate(xlarge_and_up=1).workload_security_monthly_usd == Decimal("34.31")


def test_managed_operations_fees_carry_no_discount() -> None:
    est = _estimate(micro_to_medium=3)
    assert est.managed_monthly_fee_jpy == 20_000 + 3 * 5_000 == 35_000
    assert est.managed_initial_fee_jpy == 100_000


def test_the_initial_fee_covers_six_instances_and_a_larger_fleet_is_quoted_apart() -> None:
    six = _estimate(micro_to_medium=4, large=2)
    assert six.managed_initial_fee_jpy == 100_000
    assert not any("quoted separately" in n for n in six.notes)
    seven = _estimate(micro_to_medium=4, large=2, xlarge_and_up=1)
    assert seven.managed_monthly_fee_jpy == 20_000 + 7 * 5_000
    assert any("up to 6 instances" in n and "quoted separately" in n for n in seven.notes)


def test_an_account_with_workload_security_off_pays_no_agent_or_managed_fee() -> None:
    est = _estimate(protected=False, micro_to_medium=3, budget=500)
    assert est.workload_security_monthly_usd == est.workload_security_monthly_usd_discounted == 0
    assert est.managed_monthly_fee_jpy == est.managed_initial_fee_jpy == 0
    assert est.budget is not None and est.budget.billed_monthly_usd == Decimal("475.00")


def test_a_stated_budget_is_at_list_prices_and_sunny_pay_bills_aws_usage_below_them() -> None:
    est = _estimate(micro_to_medium=1, budget=5000)
    assert est.budget is not None
    assert (est.budget.monthly_usd, est.budget.billed_monthly_usd) == (5000, Decimal("4750.00"))
    assert any("billed 5 % below list" in n for n in est.notes)
    assert _estimate(micro_to_medium=1).budget is None


def test_a_budget_without_instances_estimates_no_fee_and_nothing_is_none() -> None:
    assert estimate(None, SHEET, True) is None
    only_budget = estimate(None, SHEET, True, budget_monthly_usd=100)
    assert only_budget is not None and not only_budget.instances_stated
    assert only_budget.managed_monthly_fee_jpy == only_budget.managed_initial_fee_jpy == 0
    assert summary(only_budget).startswith("no instances stated")


def test_the_table_is_a_setting_with_the_sheet_as_its_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VEND_PRICING__WORKLOAD_SECURITY_DISCOUNT_PERCENT", "10")
    monkeypatch.setenv("VEND_PRICING__MANAGED_MONTHLY_BASE_JPY", "25000")
    table = Settings().pricing
    assert table.workload_security_discount_percent == Decimal("10")
    assert table.aws_usage_discount_percent == Decimal("5")
    assert table.managed_monthly_base_jpy == 25_000
    est = estimate(InstanceCounts(micro_to_medium=3), table, True)
    assert est is not None
    assert est.workload_security_monthly_usd_discounted == Decimal("21.68")
    assert est.managed_monthly_fee_jpy == 40_000


def test_one_line_summary_and_the_approvers_mail_say_the_same() -> None:
    est = _estimate(micro_to_medium=3, budget=1000)
    line = summary(est)
    assert line == (
        "3 instance(s); Workload Security $22.89/month (5 % off through Sunny Pay); "
        "managed operations ¥35,000/month and ¥100,000 once; "
        "budget $1000/month at list prices, billed $950.00 through Sunny Pay"
    )
    note = Notification(
        event="needs_approval",
        request_id="r-1",
        account_name="shop-dev",
        organizational_unit="Workloads/SDLC",
        requested_by="alice",
        status="pending_approval",
        at=datetime.now(UTC),
        cost=line,
    )
    mail = compose(note, SmtpConfig(host="localhost", port=25, sender="v@example.com"), ["b@x"])
    assert f"Cost estimate: {line}" in mail.get_content()
