"""What accounts spend, and what AWS Budgets and Cost Explorer make of it.

moto's Budgets stores budgets and their notifications but never sees a cent spent, has no
UpdateBudget and no budget actions; its Cost Explorer answers whatever a test stored, for every
account alike. Sandbox leases need all three to behave as on AWS:

- **spend** is made by tests (``POST /_sandbox/spend {"account_id", "usd"}``): the ledger;
- **Budgets** sees a linked account's spend after ``budgets_lag_seconds`` (AWS refreshes
  budgets several times a day), fills ``CalculatedSpend`` from it, and runs **budget actions**:
  an ``APPLY_SCP_POLICY`` action whose threshold the spend reaches is executed (its SCP attached
  to its targets, as the management account) when its approval model is automatic, its status
  going ``STANDBY`` → ``EXECUTION_SUCCESS`` (``EXECUTION_FAILURE`` when the execution role does
  not exist or the policy is gone); reversing detaches it, resetting re-arms it;
- **Cost Explorer** ``GetCostAndUsage`` answers the ledger per day (or month, or hour) for the
  linked accounts filtered on, counting only spend older than ``cost_explorer_lag_seconds``
  (12 to 24 hours on AWS: ISB #153's $1,102 in a day before anyone saw it).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from moto.budgets.models import budgets_backends


class SpendError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class BudgetAction:
    payer: str
    budget: str
    spec: dict[str, Any]  # as created (threshold, definition, role, approval, subscribers)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "STANDBY"
    history: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        keys = [
            "NotificationType",
            "ActionType",
            "ActionThreshold",
            "Definition",
            "ExecutionRoleArn",
            "ApprovalModel",
            "Subscribers",
        ]
        return {
            "ActionId": self.id,
            "BudgetName": self.budget,
            **{k: self.spec[k] for k in keys},
            "Status": self.status,
        }


@dataclass
class SpendEmulator:
    # (policy id, target id, attach?) as the management account: Organizations' own call
    apply_scp: Callable[[str, str, bool], None]
    role_exists: Callable[[str], bool]
    budgets_lag_seconds: float = 2.0
    cost_explorer_lag_seconds: float = 12 * 3600.0
    ledger: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    actions: dict[str, BudgetAction] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ the ledger
    def spend(self, account_id: str, usd: float, at: float | None = None) -> None:
        with self._lock:
            self.ledger.setdefault(account_id, []).append((at or time.time(), float(usd)))

    def _seen(self, accounts: list[str], start: float, end: float, lag: float) -> float:
        cutoff = min(end, time.time() - lag)
        return sum(
            usd
            for account in accounts
            for at, usd in self.ledger.get(account, [])
            if start <= at < cutoff
        )

    # ------------------------------------------------------------------ Budgets
    def budgets_call(self, action: str, req: dict[str, Any]) -> dict[str, Any] | None:
        """The answer for what moto lacks or gets wrong; None: moto answers."""
        with self._lock:
            if action == "UpdateBudget":
                return self._update_budget(req)
            if action == "CreateBudgetAction":
                return self._create_action(req)
            if action == "DescribeBudgetAction":
                found = self._action(req)
                return {
                    "AccountId": found.payer,
                    "BudgetName": found.budget,
                    "Action": found.describe(),
                }
            if action == "DescribeBudgetActionsForBudget":
                self._budget(req["AccountId"], req["BudgetName"])
                return {
                    "Actions": [
                        a.describe()
                        for a in self.actions.values()
                        if (a.payer, a.budget) == (req["AccountId"], req["BudgetName"])
                    ]
                }
            if action == "DeleteBudgetAction":
                found = self._action(req)
                if found.status.endswith("IN_PROGRESS"):
                    raise SpendError("ResourceLockedException", "the action is in progress")
                del self.actions[found.id]
                return {
                    "AccountId": found.payer,
                    "BudgetName": found.budget,
                    "Action": found.describe(),
                }
            if action == "ExecuteBudgetAction":
                return self._execute(req)
            if action == "DeleteBudget":  # its actions go with it
                for key in [
                    k
                    for k, a in self.actions.items()
                    if (a.payer, a.budget) == (req.get("AccountId"), req.get("BudgetName"))
                ]:
                    del self.actions[key]
            return None

    def spent(self, budget: dict[str, Any]) -> float:
        """A budget's actual spend as Budgets sees it: its linked accounts, from its start."""
        accounts = list((budget.get("CostFilters") or {}).get("LinkedAccount") or [])
        start = _epoch(budget.get("TimePeriod", {}).get("Start", 0))
        return self._seen(accounts, start, time.time(), self.budgets_lag_seconds)

    def with_spend(self, answer: dict[str, Any]) -> dict[str, Any]:
        """DescribeBudget(s) with the spend Budgets has seen in ``CalculatedSpend`` (and moto's
        ``nextToken`` spelt as the model does)."""
        token = answer.pop("nextToken", None)
        if token:
            answer["NextToken"] = token
        with self._lock:
            for budget in [answer.get("Budget"), *(answer.get("Budgets") or [])]:
                if budget:
                    spend = budget.setdefault("CalculatedSpend", {})
                    spend["ActualSpend"] = {"Amount": f"{self.spent(budget):.2f}", "Unit": "USD"}
        return answer

    def _budget(self, payer: str, name: str) -> Any:
        for backends in list(budgets_backends.values()):
            for backend in backends.values():
                found = backend.budgets.get(payer, {}).get(name)
                if found is not None:
                    return found
        raise SpendError(
            "NotFoundException", f"Unable to get budget: {name} - the budget doesn't exist."
        )

    def _update_budget(self, req: dict[str, Any]) -> dict[str, Any]:
        new = req["NewBudget"]
        budget = self._budget(req["AccountId"], new["BudgetName"])
        for key in ("BudgetLimit", "CostFilters", "TimeUnit", "TimePeriod", "CostTypes"):
            if key in new:
                budget.budget[key] = new[key]
        budget.budget["LastUpdatedTime"] = time.time()
        return {}

    def _create_action(self, req: dict[str, Any]) -> dict[str, Any]:
        self._budget(req["AccountId"], req["BudgetName"])
        if req["ActionType"] != "APPLY_SCP_POLICY":
            raise SpendError(
                "InvalidParameterException", "the sandbox runs APPLY_SCP_POLICY actions only"
            )
        if "ScpActionDefinition" not in req.get("Definition", {}):
            raise SpendError(
                "InvalidParameterException", "APPLY_SCP_POLICY needs ScpActionDefinition"
            )
        same = [
            a
            for a in self.actions.values()
            if (a.payer, a.budget) == (req["AccountId"], req["BudgetName"])
            and a.spec["ActionThreshold"] == req["ActionThreshold"]
            and a.spec["Definition"] == req["Definition"]
        ]
        if same:
            raise SpendError(
                "DuplicateRecordException", "an identical action exists for this budget"
            )
        created = BudgetAction(req["AccountId"], req["BudgetName"], dict(req))
        self.actions[created.id] = created
        return {"AccountId": created.payer, "BudgetName": created.budget, "ActionId": created.id}

    def _action(self, req: dict[str, Any]) -> BudgetAction:
        found = self.actions.get(req["ActionId"])
        if found is None or (found.payer, found.budget) != (req["AccountId"], req["BudgetName"]):
            raise SpendError("NotFoundException", f"action {req['ActionId']} not found")
        return found

    def _execute(self, req: dict[str, Any]) -> dict[str, Any]:
        found = self._action(req)
        kind = req["ExecutionType"]
        if kind == "APPROVE_BUDGET_ACTION" and found.status == "PENDING":
            self._apply(found, attach=True)
        elif kind == "REVERSE_BUDGET_ACTION" and found.status == "EXECUTION_SUCCESS":
            self._apply(found, attach=False)
        elif kind == "RESET_BUDGET_ACTION" and found.status != "EXECUTION_IN_PROGRESS":
            found.status = "STANDBY"
        else:
            raise SpendError(
                "InvalidParameterException", f"cannot {kind} an action in {found.status}"
            )
        return {
            "AccountId": found.payer,
            "BudgetName": found.budget,
            "ActionId": found.id,
            "ExecutionType": kind,
        }

    def _apply(self, action: BudgetAction, attach: bool) -> None:
        scp = action.spec["Definition"]["ScpActionDefinition"]
        if not self.role_exists(action.spec["ExecutionRoleArn"]):
            action.status = "EXECUTION_FAILURE" if attach else "REVERSE_FAILURE"
            return
        try:
            for target in scp["TargetIds"]:
                self.apply_scp(scp["PolicyId"], target, attach)
        except Exception:  # the policy or a target is gone: as AWS reports it
            action.status = "EXECUTION_FAILURE" if attach else "REVERSE_FAILURE"
            return
        action.status = "EXECUTION_SUCCESS" if attach else "REVERSE_SUCCESS"
        action.history.append({"status": action.status, "at": time.time()})

    def tick(self) -> int:
        """Run every armed action whose threshold its budget's spend has reached."""
        ran = 0
        with self._lock:
            for action in list(self.actions.values()):
                if action.status != "STANDBY":
                    continue
                try:
                    budget = self._budget(action.payer, action.budget).budget
                except SpendError:
                    continue
                limit = float(budget["BudgetLimit"]["Amount"])
                threshold = action.spec["ActionThreshold"]
                value = float(threshold["ActionThresholdValue"])
                if threshold["ActionThresholdType"] == "PERCENTAGE":
                    value = limit * value / 100
                if self.spent(budget) < value:
                    continue
                if action.spec["ApprovalModel"] == "MANUAL":
                    action.status = "PENDING"
                else:
                    self._apply(action, attach=True)
                ran += 1
        return ran

    # ------------------------------------------------------------------ Cost Explorer
    def cost_and_usage(self, req: dict[str, Any]) -> dict[str, Any]:
        period = req["TimePeriod"]
        start, end = (
            date.fromisoformat(period["Start"][:10]),
            date.fromisoformat(period["End"][:10]),
        )
        if end <= start:
            raise SpendError("ValidationException", "Start date must be before End date")
        granularity = req.get("Granularity", "DAILY")
        metrics = req.get("Metrics") or ["UnblendedCost"]
        accounts = _linked_accounts(req.get("Filter") or {})
        with self._lock:
            accounts = accounts if accounts is not None else list(self.ledger)
            results = []
            for lo, hi in _periods(start, end, granularity):
                usd = self._seen(accounts, _day(lo), _day(hi), self.cost_explorer_lag_seconds)
                results.append(
                    {
                        "TimePeriod": {"Start": lo.isoformat(), "End": hi.isoformat()},
                        "Total": {m: {"Amount": f"{usd:.2f}", "Unit": "USD"} for m in metrics},
                        "Groups": [],
                        "Estimated": hi > datetime.now(UTC).date(),
                    }
                )
        return {"ResultsByTime": results, "DimensionValueAttributes": []}


def _linked_accounts(expression: dict[str, Any]) -> list[str] | None:
    dims = expression.get("Dimensions") or {}
    if dims.get("Key") == "LINKED_ACCOUNT":
        return list(dims.get("Values") or [])
    for inner in expression.get("And") or []:
        found = _linked_accounts(inner)
        if found is not None:
            return found
    return None


def _periods(start: date, end: date, granularity: str) -> list[tuple[date, date]]:
    out, lo = [], start
    while lo < end:
        if granularity == "MONTHLY":
            hi = (lo.replace(day=1) + timedelta(days=32)).replace(day=1)
        else:  # DAILY (HOURLY is read by the day here: simpler, never kinder)
            hi = lo + timedelta(days=1)
        out.append((lo, min(hi, end)))
        lo = min(hi, end)
    return out


def _day(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return 0.0
