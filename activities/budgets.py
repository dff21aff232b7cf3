"""AWS Budgets: a monthly cost budget per vended account, kept in the management account (the
payer sees every member's costs) and filtered to the account, with alerts mailed at the OU's
thresholds to the owner and the landing zone's subscribers.

Named ``vend-<account id>``: looking it up by name makes creation idempotent (AWS refuses a
second budget of the same name with DuplicateRecordException, which is taken as done).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel
from temporalio import activity

from activities.aws_errors import error_code, to_application_error
from activities.setting_result import SettingResult
from common.account_settings import EffectiveBudget
from common.leases import LeaseBudget


class BudgetInput(BaseModel):
    account_id: str
    budget: EffectiveBudget


class BudgetRemoval(BaseModel):
    account_id: str


def budget_name(account_id: str) -> str:
    return f"vend-{account_id}"


@dataclass
class BudgetActivities:
    budgets: Any
    sts: Any

    def payer(self) -> str:
        return str(self.sts.get_caller_identity()["Account"])

    @activity.defn(no_thread_cancel_exception=True)
    def create_budget(self, inp: BudgetInput) -> SettingResult:
        name, amount = budget_name(inp.account_id), inp.budget.monthly_usd
        try:
            payer = self.payer()
            existing = self.find(payer, name)
            if existing is not None:
                limit = float(existing["BudgetLimit"]["Amount"])
                if limit != float(amount):
                    self.budgets.update_budget(AccountId=payer, NewBudget=self._budget(inp))
                return SettingResult(
                    detail=f"budget {name}: {amount} USD a month (already in place)",
                    attempt=activity.info().attempt,
                )
            try:
                self.budgets.create_budget(
                    AccountId=payer,
                    Budget=self._budget(inp),
                    NotificationsWithSubscribers=[
                        {
                            "Notification": {
                                "NotificationType": "ACTUAL",
                                "ComparisonOperator": "GREATER_THAN",
                                "Threshold": float(threshold),
                                "ThresholdType": "PERCENTAGE",
                            },
                            "Subscribers": [
                                {"SubscriptionType": "EMAIL", "Address": address}
                                for address in inp.budget.subscribers  # at most 10 (landing zone)
                            ],
                        }
                        for threshold in inp.budget.alert_thresholds  # at most 5 (landing zone)
                    ],
                )
            except ClientError as err:
                if error_code(err) != "DuplicateRecordException":
                    raise  # a duplicate: an earlier attempt made it
        except ClientError as err:
            raise to_application_error(err, action="CreateBudget") from err
        alerts = ", ".join(f"{t}%" for t in inp.budget.alert_thresholds)
        return SettingResult(
            detail=f"budget {name}: {amount} USD a month, alerts at {alerts}",
            attempt=activity.info().attempt,
        )

    @activity.defn(no_thread_cancel_exception=True)
    def delete_budget(self, inp: BudgetRemoval) -> SettingResult:
        name = budget_name(inp.account_id)
        try:
            self.budgets.delete_budget(AccountId=self.payer(), BudgetName=name)
        except ClientError as err:
            if error_code(err) != "NotFoundException":
                raise to_application_error(err, action="DeleteBudget") from err
        return SettingResult(detail=f"budget {name} deleted", attempt=activity.info().attempt)

    @activity.defn(no_thread_cancel_exception=True)
    def create_lease_budget(self, inp: LeaseBudget) -> str:
        """A lease's budget: the account's cost from the grant on (an annual budget starting
        then, which a lease never outlasts), with the template's alert thresholds. Made again
        with a new amount when an unfreeze raises it."""
        budget = {
            "BudgetName": inp.name,
            "BudgetLimit": {"Amount": str(inp.amount_usd), "Unit": "USD"},
            "BudgetType": "COST",
            "TimeUnit": "ANNUALLY",
            "TimePeriod": {"Start": inp.start},
            "CostFilters": {"LinkedAccount": [inp.account_id]},
        }
        try:
            payer = self.payer()
            existing = self.find(payer, inp.name)
            if existing is not None:
                if float(existing["BudgetLimit"]["Amount"]) != float(inp.amount_usd):
                    self.budgets.update_budget(AccountId=payer, NewBudget=budget)
                return f"budget {inp.name}: {inp.amount_usd} USD (in place)"
            try:
                self.budgets.create_budget(
                    AccountId=payer,
                    Budget=budget,
                    NotificationsWithSubscribers=[
                        {
                            "Notification": {
                                "NotificationType": "ACTUAL",
                                "ComparisonOperator": "GREATER_THAN",
                                "Threshold": float(percent),
                                "ThresholdType": "PERCENTAGE",
                            },
                            "Subscribers": [
                                {"SubscriptionType": "EMAIL", "Address": address}
                                for address in inp.subscribers[:10]
                            ],
                        }
                        for percent in inp.notify_percents[:5]
                        if inp.subscribers
                    ],
                )
            except ClientError as err:
                if error_code(err) != "DuplicateRecordException":
                    raise
        except ClientError as err:
            raise to_application_error(err, action="CreateBudget") from err
        return f"budget {inp.name}: {inp.amount_usd} USD"

    @activity.defn(no_thread_cancel_exception=True)
    def delete_lease_budget(self, inp: LeaseBudget) -> str:
        try:
            self.budgets.delete_budget(AccountId=self.payer(), BudgetName=inp.name)
        except ClientError as err:
            if error_code(err) != "NotFoundException":
                raise to_application_error(err, action="DeleteBudget") from err
        return f"budget {inp.name} deleted"

    def find(self, payer: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.budgets.describe_budget(AccountId=payer, BudgetName=name)["Budget"])
        except ClientError as err:
            if error_code(err) == "NotFoundException":
                return None
            raise

    @staticmethod
    def _budget(inp: BudgetInput) -> dict[str, Any]:
        return {
            "BudgetName": budget_name(inp.account_id),
            "BudgetLimit": {"Amount": str(inp.budget.monthly_usd), "Unit": "USD"},
            "BudgetType": "COST",
            "TimeUnit": "MONTHLY",
            "CostFilters": {"LinkedAccount": [inp.account_id]},
        }
