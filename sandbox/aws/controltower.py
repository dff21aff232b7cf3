"""A Control Tower and Account Factory emulator (moto has neither).

It speaks the real wire protocols (``controltower`` REST-JSON, ``servicecatalog`` RPC v2 CBOR)
and shares state with moto's Organizations and IAM backends in the same process. What it
enforces, because the engine must cope with it in real AWS:
- operations are asynchronous, with ids, and take time;
- at most ``account_limit`` concurrent account operations (Account Factory provisioning and
  auto-enrollment) and one OU operation (ResetEnabledBaseline) at a time: the excess fails with
  ServiceQuotaExceeded/Conflict, and the emulator records the largest concurrency it saw;
- unregistered OUs are refused, Account Factory needs ``AWSControlTowerExecution``;
- a fault plan can throttle, fail with 5xx, or make an operation end FAILED/TAINTED.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.iam.models import iam_backends
from moto.organizations.models import OrganizationsBackend, organizations_backends

from sandbox.aws.faults import FaultPlan, release
from sandbox.aws.scp_enforcement import role_refusal

CONTROL_TOWER_BASELINE = "arn:aws:controltower:us-east-1::baseline/17BSJV3IGJ2QSGA2"
# The other baselines a landing zone 4.0 OU may carry (ARNs as ListBaselines gives them).
CONFIG_BASELINE = "arn:aws:controltower:us-east-1::baseline/1XPQKQAB9GHAH1DA"
IDENTITY_CENTER_BASELINE = "arn:aws:controltower:us-east-1::baseline/LN25R72TTG6IGPTQ"
BASELINE_NAMES = {
    CONFIG_BASELINE: "ConfigBaseline",
    IDENTITY_CENTER_BASELINE: "IdentityCenterBaseline",
    CONTROL_TOWER_BASELINE: "AWSControlTowerBaseline",
}
EXECUTION_ROLE = "AWSControlTowerExecution"
AF_PRODUCT_ID = "prod-ctaf0accountfac"
AF_ARTIFACT_ID = "pa-ctaf0accountfac01"


class EmulatorError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


# Control Tower enables these on every registered OU (a sample of the real mandatory set).
MANDATORY_CONTROLS = frozenset(
    {
        "AWS-GR_CLOUDTRAIL_CHANGE_PROHIBITED",
        "AWS-GR_CONFIG_CHANGE_PROHIBITED",
        "AWS-GR_CLOUDWATCH_EVENTS_CHANGE_PROHIBITED",
    }
)


def control_arn(control: str) -> str:
    """A control's identifier as Control Tower's APIs give it (legacy guardrail ARNs)."""
    return (
        control
        if control.startswith("arn:")
        else f"arn:aws:controltower:us-east-1::control/{control}"
    )


def _page(items: list[dict[str, Any]], key: str, req: dict[str, Any]) -> dict[str, Any]:
    """One page of a list, as AWS pages it: at most ``maxResults`` (5 to 100; AWS does not
    document the default, so the sandbox takes the largest) and a ``nextToken`` for the rest."""
    size = int(req.get("maxResults") or 100)
    if not 5 <= size <= 100:
        raise EmulatorError("ValidationException", "maxResults must be between 5 and 100")
    token = req.get("nextToken")
    try:
        start = int(token) if token else 0
    except ValueError as err:
        raise EmulatorError("ValidationException", "invalid nextToken") from err
    out: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        out["nextToken"] = str(start + size)
    return out


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Operation:
    id: str
    kind: str  # "account" or "ou"
    operation_type: str
    target: str  # enabled baseline ARN (OU ops) or account id (account ops)
    started: float
    ready_at: float
    accounts: list[str] = field(default_factory=list)
    status: str = "IN_PROGRESS"
    message: str | None = None
    ended: float | None = None
    on_done: Any = None  # callback(op) when it succeeds
    held: bool = False  # paused by the fault plan until /_sandbox/release


@dataclass
class EnabledBaseline:
    arn: str
    target: str  # OU or account ARN
    parent: str | None
    status: str = "SUCCEEDED"
    last_operation: str | None = None
    drifted: bool = False  # inheritance drift: the account left the OU it was enrolled through
    # Which baseline: landing zone 4.0 OUs carry ConfigBaseline and IdentityCenterBaseline
    # beside AWSControlTowerBaseline; only the last one's reset enrolls accounts.
    baseline: str = CONTROL_TOWER_BASELINE


@dataclass
class Record:
    id: str
    token: str
    name: str
    params: dict[str, str]
    status: str
    created: datetime
    errors: list[dict[str, str]] = field(default_factory=list)
    account_id: str | None = None
    product_id: str = AF_PRODUCT_ID
    pp_id: str = ""
    record_type: str = "PROVISION_PRODUCT"
    terminated: bool = False  # the provisioned product is gone (its records stay, as in AWS)


@dataclass
class ControlTowerEmulator:
    faults: FaultPlan
    account_operation_seconds: float = 3.0
    ou_operation_seconds: float = 3.0
    account_limit: int = 5
    baseline_operation_limit: int = 10
    auto_enroll_ous: set[str] = field(default_factory=set)  # OU ids
    baselines: dict[str, EnabledBaseline] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    # Controls in force, by OU ARN -> control ARNs (mandatory ones come with registration).
    enabled_controls: dict[str, set[str]] = field(default_factory=dict)
    landing_zone_status: str = "ACTIVE"  # ACTIVE | PROCESSING | FAILED (a test can break it)
    # The landing zone's remediationTypes (3.1 or later): INHERITANCE_DRIFT is what makes
    # Control Tower enroll accounts moved into a registered OU; without it, nothing does.
    remediation_types: set[str] = field(default_factory=set)
    account_factory_shared: bool = True  # the Account Factory portfolio is shared with the caller
    landing_zone_drift: str = "IN_SYNC"
    # What tests read: the largest concurrency seen, and every operation's interval.
    max_account_ops: int = 0
    max_ou_ops: int = 0
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ organization access
    @staticmethod
    def org() -> OrganizationsBackend:
        for account_backends in organizations_backends.values():
            for backend in account_backends.values():
                if backend.org is not None:
                    return backend
        raise EmulatorError("AccessDeniedException", "no organization in the sandbox")

    def _ou(self, ou_id: str) -> Any:
        return self.org().get_organizational_unit_by_id(ou_id)

    def _account(self, account_id: str) -> Any:
        return self.org().get_account_by_id(account_id)

    # ------------------------------------------------------------------ registration (seeding)
    def register_ou(self, ou_id: str) -> str:
        """EnableBaseline(AWSControlTowerBaseline) on an OU, done at once (sandbox seeding)."""
        with self._lock:
            arn = self._ou(ou_id).arn
            existing = self._baseline_for_target(arn)
            if existing:
                return existing.arn
            eb = EnabledBaseline(arn=self._new_baseline_arn(), target=arn, parent=None)
            self.baselines[eb.arn] = eb
            self.enabled_controls.setdefault(arn, set()).update(
                control_arn(c) for c in MANDATORY_CONTROLS
            )
            return eb.arn

    def enable_control_now(self, ou_id: str, control: str) -> None:
        """EnableControl, done at once (sandbox seeding of the landing zone's elective ones)."""
        with self._lock:
            self.enabled_controls.setdefault(self._ou(ou_id).arn, set()).add(control_arn(control))

    def _new_baseline_arn(self) -> str:
        suffix = secrets.token_hex(8).upper()
        return f"arn:aws:controltower:us-east-1:{self.org().account_id}:enabledbaseline/{suffix}"

    def _baseline_for_target(self, target_arn: str) -> EnabledBaseline | None:
        """The target's AWSControlTowerBaseline (its enrollment), never another baseline."""
        return next(
            (
                b
                for b in self.baselines.values()
                if b.target == target_arn and b.baseline == CONTROL_TOWER_BASELINE
            ),
            None,
        )

    def enable_other_baselines(self, ou_id: str) -> None:
        """ConfigBaseline and IdentityCenterBaseline on a registered OU, as landing zone 4.0
        enables them (sandbox seeding): listed before its AWSControlTowerBaseline."""
        with self._lock:
            target = self._ou(ou_id).arn
            for baseline in (CONFIG_BASELINE, IDENTITY_CENTER_BASELINE):
                if not any(
                    b.target == target and b.baseline == baseline for b in self.baselines.values()
                ):
                    eb = EnabledBaseline(
                        arn=self._new_baseline_arn(), target=target, parent=None, baseline=baseline
                    )
                    self.baselines[eb.arn] = eb

    def is_registered(self, ou_id: str) -> bool:
        return self._registered_baseline_of_ou(ou_id) is not None

    def seed_enrollments(self, ou_id: str, account_arns: list[str]) -> None:
        """Accounts enrolled through the OU long ago (a benchmark's fleet): their enabled
        baselines, SUCCEEDED, children of the OU's."""
        with self._lock:
            registered = self._registered_baseline_of_ou(ou_id)
            if registered is None:
                raise EmulatorError("ValidationException", f"{ou_id} is not registered")
            for arn in account_arns:
                eb = EnabledBaseline(
                    arn=self._new_baseline_arn(), target=arn, parent=registered.arn
                )
                self.baselines[eb.arn] = eb

    def _registered_baseline_of_ou(self, ou_id: str) -> EnabledBaseline | None:
        try:
            arn = self._ou(ou_id).arn
        except Exception:
            return None
        eb = self._baseline_for_target(arn)
        return eb if eb is not None and eb.parent is None else None

    # ------------------------------------------------------------------ operations
    def _in_progress(self, kind: str) -> list[Operation]:
        return [o for o in self.operations.values() if o.kind == kind and o.status == "IN_PROGRESS"]

    def _start(self, op: Operation) -> Operation:
        self.operations[op.id] = op
        accounts = len(self._in_progress("account"))
        ous = len(self._in_progress("ou"))
        self.max_account_ops = max(self.max_account_ops, accounts)
        self.max_ou_ops = max(self.max_ou_ops, ous)
        if accounts > self.account_limit:
            self.violations.append(f"{accounts} concurrent account operations at {op.id}")
        if ous > 1:
            self.violations.append(f"{ous} concurrent OU operations at {op.id}")
        return op

    def tick(self) -> None:
        with self._lock:
            now = time.time()
            for op in list(self.operations.values()):
                if op.status != "IN_PROGRESS" or op.held or now < op.ready_at:
                    continue
                op.ended = now
                if op.message:  # decided at start by the fault plan
                    op.status = "FAILED"
                else:
                    op.status = "SUCCEEDED"
                    if op.on_done is not None:
                        op.on_done(op)
                self._settle_baselines(op)

    def _settle_baselines(self, op: Operation) -> None:
        for eb in self.baselines.values():
            if eb.last_operation == op.id:
                eb.status = "SUCCEEDED" if op.status == "SUCCEEDED" else "FAILED"

    def _enroll_account(self, account_id: str, parent_arn: str, op: Operation) -> None:
        account_arn = self._account(account_id).arn
        eb = self._baseline_for_target(account_arn)
        if eb is None:
            eb = EnabledBaseline(
                arn=self._new_baseline_arn(), target=account_arn, parent=parent_arn
            )
            self.baselines[eb.arn] = eb
        eb.parent, eb.status, eb.last_operation = parent_arn, "UNDER_CHANGE", op.id
        eb.drifted = False

    def _failure_for(self, service: str, action: str, body: str) -> str | None:
        rule = self.faults.take(service, action, body, "failure_reason")
        return rule.failure_reason if rule else None

    def _held(self, service: str, action: str, body: str) -> bool:
        return self.faults.take(service, action, body, "hold") is not None

    def release_holds(self) -> int:
        """Let held operations finish (at once if their time has already come)."""
        with self._lock:
            released = release(self.operations.values())
        self.tick()
        return released

    # ------------------------------------------------------------------ hooks
    def on_account_moved(self, account_id: str, dest_ou_id: str) -> None:
        """Auto-enrollment: a registered OU with it enrolls accounts moved into it."""
        with self._lock:
            parent = self._registered_baseline_of_ou(dest_ou_id)
            mine = self._baseline_for_target(self._account(account_id).arn)
            if mine is not None and (parent is None or mine.parent != parent.arn):
                # As Control Tower reports an enrolled account moved to another OU: inheritance
                # drift, until the account is enrolled again through its new OU.
                mine.drifted = True
            elif mine is not None and parent is not None and mine.parent == parent.arn:
                mine.drifted = False  # back in the OU it was enrolled through
            auto = "INHERITANCE_DRIFT" in self.remediation_types
            if parent is None or not auto or dest_ou_id not in self.auto_enroll_ous:
                return
            now = time.time()
            op = Operation(
                id=str(uuid.uuid4()),
                kind="account",
                operation_type="ENROLL_ACCOUNT",
                target=account_id,
                started=now,
                ready_at=now + self.account_operation_seconds,
                accounts=[account_id],
                message=self._failure_for("controltower", "AutoEnroll", account_id),
                held=self._held("controltower", "AutoEnroll", account_id),
            )
            self._start(op)
            self._enroll_account(account_id, parent.arn, op)

    # ------------------------------------------------------------------ Control Tower API
    def controltower(self, action: str, req: dict[str, Any]) -> dict[str, Any]:
        self.tick()
        with self._lock:
            handler = getattr(self, f"_ct_{action}", None)
            if handler is None:
                raise EmulatorError("ValidationException", f"{action} is not emulated")
            return handler(req)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ landing zone, controls
    def _landing_zone_arn(self) -> str:
        return f"arn:aws:controltower:us-east-1:{self.org().account_id}:landingzone/SANDBOX1"

    def _ct_ListLandingZones(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"landingZones": [{"arn": self._landing_zone_arn()}]}

    def _ct_GetLandingZone(self, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("landingZoneIdentifier") != self._landing_zone_arn():
            raise EmulatorError("ResourceNotFoundException", "landing zone not found")
        zone: dict[str, Any] = {
            "arn": self._landing_zone_arn(),
            "version": "3.3",
            "latestAvailableVersion": "3.3",
            "status": self.landing_zone_status,
            "driftStatus": {"status": self.landing_zone_drift},
            "manifest": {"governedRegions": ["us-east-1"]},
        }
        if self.remediation_types:
            zone["remediationTypes"] = sorted(self.remediation_types)
        return {"landingZone": zone}

    def _ct_ListEnabledControls(self, req: dict[str, Any]) -> dict[str, Any]:
        target = req.get("targetIdentifier")
        if not target:
            raise EmulatorError("ValidationException", "targetIdentifier is required")
        if self._baseline_for_target(target) is None and target not in self.enabled_controls:
            raise EmulatorError(
                "ResourceNotFoundException", f"{target} is not a registered organizational unit"
            )
        return {
            "enabledControls": [
                {
                    "arn": f"{target}/enabledcontrol/{control.rsplit('/', 1)[-1]}",
                    "controlIdentifier": control,
                    "targetIdentifier": target,
                    "statusSummary": {"status": "SUCCEEDED"},
                    "driftStatusSummary": {"driftStatus": "IN_SYNC"},
                }
                for control in sorted(self.enabled_controls.get(target, set()))
            ]
        }

    def _ct_DisableControl(self, req: dict[str, Any]) -> dict[str, Any]:
        target, control = req.get("targetIdentifier", ""), req.get("controlIdentifier", "")
        controls = self.enabled_controls.get(target, set())
        if control not in controls:
            raise EmulatorError(
                "ResourceNotFoundException", f"{control} is not enabled on {target}"
            )
        if control.rsplit("/", 1)[-1] in MANDATORY_CONTROLS:
            raise EmulatorError("ValidationException", "a mandatory control cannot be disabled")
        controls.discard(control)
        return {"operationIdentifier": secrets.token_hex(16)}

    def _ct_ListBaselines(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"baselines": [{"arn": arn, "name": name} for arn, name in BASELINE_NAMES.items()]}

    def _ct_ListEnabledBaselines(self, req: dict[str, Any]) -> dict[str, Any]:
        flt = req.get("filter") or {}
        targets = set(flt.get("targetIdentifiers") or [])
        parents = set(flt.get("parentIdentifiers") or [])
        include_children = bool(req.get("includeChildren"))
        items = []
        # As AWS: child (account) enabled baselines only with includeChildren; the OU's other
        # baselines first, so that a caller taking the first one found takes the wrong one.
        ordered = sorted(
            self.baselines.values(), key=lambda b: b.baseline == CONTROL_TOWER_BASELINE
        )
        for eb in ordered:
            if eb.parent and not include_children:
                continue
            match = not targets or eb.target in targets
            if not match and include_children and eb.parent:
                parent = self.baselines.get(eb.parent)
                match = parent is not None and parent.target in targets
            if parents and eb.parent not in parents:
                match = False
            if match:
                items.append(self._summary(eb))
        return _page(items, "enabledBaselines", req)

    def _summary(self, eb: EnabledBaseline) -> dict[str, Any]:
        out: dict[str, Any] = {
            "arn": eb.arn,
            "baselineIdentifier": eb.baseline,
            "baselineVersion": "4.0",
            "targetIdentifier": eb.target,
            "statusSummary": {"status": eb.status},
            "driftStatusSummary": {
                "types": {"inheritance": {"status": "DRIFTED" if eb.drifted else "IN_SYNC"}}
            },
        }
        if eb.last_operation:
            out["statusSummary"]["lastOperationIdentifier"] = eb.last_operation
        if eb.parent:
            out["parentIdentifier"] = eb.parent
        return out

    def _ct_GetEnabledBaseline(self, req: dict[str, Any]) -> dict[str, Any]:
        eb = self.baselines.get(req.get("enabledBaselineIdentifier", ""))
        if eb is None:
            raise EmulatorError("ResourceNotFoundException", "enabled baseline not found")
        return {"enabledBaselineDetails": self._summary(eb)}

    def _ct_ResetEnabledBaseline(self, req: dict[str, Any]) -> dict[str, Any]:
        arn = req.get("enabledBaselineIdentifier", "")
        eb = self.baselines.get(arn)
        if eb is None:
            raise EmulatorError("ResourceNotFoundException", f"enabled baseline {arn} not found")
        if eb.parent is not None:
            raise EmulatorError(
                "ValidationException", "reset an OU's enabled baseline, not an account's"
            )
        if self._in_progress("ou"):
            raise EmulatorError(
                "ConflictException",
                "AWS Control Tower cannot run more than one OU operation at a time",
            )
        if (
            len(self._in_progress("ou")) + len(self._in_progress("account"))
            >= self.baseline_operation_limit
        ):
            raise EmulatorError(
                "ServiceQuotaExceededException", "the limit is 10 concurrent operations"
            )
        ou_id = eb.target.rsplit("/", 1)[-1]
        accounts = [a.id for a in self.org().accounts if a.parent_id == ou_id]
        if eb.baseline != CONTROL_TOWER_BASELINE:
            accounts = []  # only AWSControlTowerBaseline's reset enrolls the OU's accounts
        now = time.time()
        op = Operation(
            id=str(uuid.uuid4()),
            kind="ou",
            operation_type="RESET_ENABLED_BASELINE",
            target=arn,
            started=now,
            ready_at=now + self.ou_operation_seconds,
            accounts=accounts,
            message=self._failure_for(
                "controltower", "ResetEnabledBaseline", " ".join([arn, *accounts])
            ),
            held=self._held("controltower", "ResetEnabledBaseline", " ".join([arn, *accounts])),
        )
        self._start(op)
        eb.status, eb.last_operation = "UNDER_CHANGE", op.id
        for account_id in accounts:
            self._enroll_account(account_id, arn, op)
        return {"operationIdentifier": op.id}

    def _ct_GetBaselineOperation(self, req: dict[str, Any]) -> dict[str, Any]:
        op = self.operations.get(req.get("operationIdentifier", ""))
        if op is None:
            raise EmulatorError("ResourceNotFoundException", "operation not found")
        out: dict[str, Any] = {
            "operationIdentifier": op.id,
            "operationType": op.operation_type if op.kind == "ou" else "RESET_ENABLED_BASELINE",
            "status": op.status,
            "startTime": datetime.fromtimestamp(op.started, UTC).isoformat(),
        }
        if op.ended:
            out["endTime"] = datetime.fromtimestamp(op.ended, UTC).isoformat()
        if op.message:
            out["statusMessage"] = op.message
        return {"baselineOperation": out}

    # ------------------------------------------------------------------ Service Catalog API
    def servicecatalog(self, action: str, req: dict[str, Any]) -> dict[str, Any]:
        self.tick()
        with self._lock:
            handler = getattr(self, f"_sc_{action}", None)
            if handler is None:
                raise EmulatorError("InvalidParametersException", f"{action} is not emulated")
            return handler(req)  # type: ignore[no-any-return]

    def _sc_SearchProducts(self, req: dict[str, Any]) -> dict[str, Any]:
        if not self.account_factory_shared:  # the portfolio does not reach the caller
            return {"ProductViewSummaries": []}
        return {
            "ProductViewSummaries": [
                {
                    "Id": f"prodview-{AF_PRODUCT_ID[5:]}",
                    "ProductId": AF_PRODUCT_ID,
                    "Name": "AWS Control Tower Account Factory",
                    "Owner": "AWS Control Tower",
                    "Type": "CLOUD_FORMATION_TEMPLATE",
                }
            ]
        }

    def _sc_SearchProductsAsAdmin(self, req: dict[str, Any]) -> dict[str, Any]:
        summaries = self._sc_SearchProducts(req)["ProductViewSummaries"]
        return {
            "ProductViewDetails": [
                {"ProductViewSummary": summary, "Status": "AVAILABLE"} for summary in summaries
            ]
        }

    def _sc_ListProvisioningArtifacts(self, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("ProductId") != AF_PRODUCT_ID:
            raise EmulatorError("ResourceNotFoundException", "product not found")
        return {
            "ProvisioningArtifactDetails": [
                {
                    "Id": AF_ARTIFACT_ID,
                    "Name": "AWS Control Tower Account Factory",
                    "Active": True,
                    "Guidance": "DEFAULT",
                    "Type": "CLOUD_FORMATION_TEMPLATE",
                }
            ]
        }

    def _sc_ProvisionProduct(self, req: dict[str, Any]) -> dict[str, Any]:
        if (
            req.get("ProductId") != AF_PRODUCT_ID
            or req.get("ProvisioningArtifactId") != AF_ARTIFACT_ID
        ):
            raise EmulatorError(
                "ResourceNotFoundException", "product or provisioning artifact not found"
            )
        token, name = req.get("ProvisionToken", ""), req.get("ProvisionedProductName", "")
        for rec in self.records.values():
            if rec.token == token:
                return {"RecordDetail": self._record_detail(rec)}  # idempotent replay
            # As AWS: a provisioned product keeps its name, failed (ERROR) or not, until it is
            # terminated; provisioning the name again before that is a duplicate.
            if rec.name == name and not rec.terminated and rec.record_type == "PROVISION_PRODUCT":
                raise EmulatorError(
                    "DuplicateResourceException", f"provisioned product {name} exists"
                )
        params = {p["Key"]: p.get("Value", "") for p in req.get("ProvisioningParameters", [])}
        required = [
            "AccountEmail",
            "AccountName",
            "ManagedOrganizationalUnit",
            "SSOUserEmail",
            "SSOUserFirstName",
            "SSOUserLastName",
        ]
        missing = [k for k in required if not params.get(k)]
        if missing:
            raise EmulatorError("InvalidParametersException", f"missing parameters: {missing}")
        rec = Record(
            id=f"rec-{secrets.token_hex(6)}",
            token=token,
            name=name,
            params=params,
            status="IN_PROGRESS",
            created=_now(),
            pp_id=f"pp-{secrets.token_hex(6)}",
        )
        self.records[rec.id] = rec
        problem = self._af_precondition(params)
        op = self._account_operation(
            rec,
            "PROVISION",
            params["AccountEmail"],
            ("ProvisionProduct", repr(params)),
            on_done=lambda o: self._af_done(rec),
            problem=problem,
        )
        if rec.account_id:
            self._enroll_account(rec.account_id, self._af_parent(params) or "", op)
        return {"RecordDetail": self._record_detail(rec)}

    def _account_operation(
        self,
        rec: Record,
        operation_type: str,
        target: str,
        fault_key: tuple[str, str],
        on_done: Any,
        problem: str | None = None,
    ) -> Operation:
        """A Service Catalog record's Control Tower account operation: it takes one of the
        account-operation places (past them it fails, as AWS's quota does), may be failed or
        held by the fault plan (``fault_key``: action, body matched), and ends after a while."""
        action, body = fault_key
        now = time.time()
        op = Operation(
            id=rec.id,
            kind="account",
            operation_type=operation_type,
            target=target,
            started=now,
            ready_at=now + self.account_operation_seconds,
            message=problem or self._failure_for("servicecatalog", action, body),
            held=self._held("servicecatalog", action, body),
        )
        if len(self._in_progress("account")) >= self.account_limit:
            op.message = (
                "ServiceQuotaExceededException: AWS Control Tower cannot run more than "
                f"{self.account_limit} concurrent account operations"
            )
        op.on_done = on_done
        return self._start(op)

    def _af_parent(self, params: dict[str, str]) -> str | None:
        ou_id = self._af_ou_id(params.get("ManagedOrganizationalUnit", ""))
        eb = self._registered_baseline_of_ou(ou_id) if ou_id else None
        return eb.arn if eb else None

    def _af_ou_id(self, value: str) -> str | None:
        if "(" in value and value.endswith(")"):
            return value.rsplit("(", 1)[1].rstrip(")")
        return next((ou.id for ou in self.org().ou if ou.name == value), None)

    def _af_precondition(self, params: dict[str, str]) -> str | None:
        ou_id = self._af_ou_id(params["ManagedOrganizationalUnit"])
        if ou_id is None or self._registered_baseline_of_ou(ou_id) is None:
            ou = params["ManagedOrganizationalUnit"]
            return f"The organizational unit {ou} is not registered with AWS Control Tower"
        account = next(
            (a for a in self.org().accounts if a.email.lower() == params["AccountEmail"].lower()),
            None,
        )
        if account is None:
            email = params["AccountEmail"]
            return f"No account with email {email} in the organization (only existing accounts)"
        try:
            iam_backends[account.id]["global"].get_role(EXECUTION_ROLE)
        except Exception:
            return (
                f"The {EXECUTION_ROLE} role is missing from account {account.id}; "
                "it is required to enroll an existing account"
            )
        record = next(r for r in self.records.values() if r.params is params)
        record.account_id = account.id
        return None

    def _af_done(self, rec: Record) -> None:
        ou_id = self._af_ou_id(rec.params["ManagedOrganizationalUnit"])
        if rec.account_id and ou_id:
            self._account(rec.account_id).parent_id = ou_id  # CT places the account in the OU

    def _record_status(self, rec: Record) -> str:
        op = self.operations.get(rec.id)
        if op is None:
            return rec.status
        if op.status == "FAILED":
            message = op.message or "failed"
            # The code says what kind of failure it was (the engine decides on the code, never
            # on the wording): a failure of the concurrency limit is the quota's.
            code, sep, _ = message.partition(": ")
            code = code if sep and code.endswith("Exception") else "ControlTowerError"
            rec.errors = [{"Code": code, "Description": message}]
            return "FAILED"
        return "SUCCEEDED" if op.status == "SUCCEEDED" else "IN_PROGRESS"

    def _record_detail(self, rec: Record) -> dict[str, Any]:
        return {
            "RecordId": rec.id,
            "ProvisionedProductName": rec.name,
            "Status": self._record_status(rec),
            "CreatedTime": rec.created,
            "UpdatedTime": _now(),
            "ProvisionedProductType": "CFN_STACK",
            "RecordType": rec.record_type,
            "ProvisionedProductId": rec.pp_id,
            "ProductId": rec.product_id,
            "ProvisioningArtifactId": AF_ARTIFACT_ID,
            "RecordErrors": rec.errors,
        }

    def _sc_DescribeRecord(self, req: dict[str, Any]) -> dict[str, Any]:
        rec = self.records.get(req.get("Id", ""))
        if rec is None:
            raise EmulatorError("ResourceNotFoundException", "record not found")
        detail = self._record_detail(rec)
        outputs = []
        if detail["Status"] == "SUCCEEDED" and rec.account_id:
            outputs = [{"OutputKey": "AccountId", "OutputValue": rec.account_id}]
        return {"RecordDetail": detail, "RecordOutputs": outputs}

    def _sc_SearchProvisionedProducts(self, req: dict[str, Any]) -> dict[str, Any]:
        queries = (req.get("Filters") or {}).get("SearchQuery") or []
        names = {q.split(":", 1)[1] for q in queries if q.startswith("name:")}
        physical = {q.split(":", 1)[1] for q in queries if q.startswith("physicalId:")}
        items = []
        for rec in self.records.values():
            if rec.terminated or rec.record_type != "PROVISION_PRODUCT":
                continue
            if (names and rec.name not in names) or (physical and rec.account_id not in physical):
                continue
            status = {"IN_PROGRESS": "UNDER_CHANGE", "SUCCEEDED": "AVAILABLE", "FAILED": "ERROR"}[
                self._record_status(rec)
            ]
            items.append(
                {
                    "Name": rec.name,
                    "Id": rec.pp_id,
                    "Type": "CONTROL_TOWER_ACCOUNT",
                    "Status": status,
                    "StatusMessage": rec.errors[0]["Description"] if rec.errors else "",
                    "IdempotencyToken": rec.token,
                    "LastRecordId": rec.id,
                    "ProductId": rec.product_id,
                    "PhysicalId": rec.account_id or "",
                    "CreatedTime": rec.created,
                }
            )
        return {"ProvisionedProducts": items, "TotalResultsCount": len(items)}

    def _sc_TerminateProvisionedProduct(self, req: dict[str, Any]) -> dict[str, Any]:
        """Unmanage an Account Factory account, as AWS does it: asynchronous (DescribeRecord),
        one of Control Tower's account operations; on success Control Tower removes what it
        put in the account (its execution role too) and moves the account to the Root."""
        pp_id, name = req.get("ProvisionedProductId"), req.get("ProvisionedProductName")
        if bool(pp_id) == bool(name):
            raise EmulatorError(
                "InvalidParametersException",
                "specify exactly one of ProvisionedProductId and ProvisionedProductName",
            )
        token = req.get("TerminateToken", "")
        for rec in self.records.values():
            if rec.record_type != "PROVISION_PRODUCT" and token and rec.token == token:
                return {"RecordDetail": self._record_detail(rec)}  # idempotent replay
        product = next(
            (
                r
                for r in self.records.values()
                if r.record_type == "PROVISION_PRODUCT"
                and not r.terminated
                and (r.pp_id == pp_id or (name and r.name == name))
            ),
            None,
        )
        if product is None:
            raise EmulatorError("ResourceNotFoundException", "provisioned product not found")
        if self._record_status(product) == "IN_PROGRESS" or any(
            r.pp_id == product.pp_id and self._record_status(r) == "IN_PROGRESS"
            for r in self.records.values()
        ):
            raise EmulatorError(
                "InvalidStateException", f"provisioned product {product.name} is under change"
            )
        rec = Record(
            id=f"rec-{secrets.token_hex(6)}",
            token=token,
            name=product.name,
            params=product.params,
            status="IN_PROGRESS",
            created=_now(),
            account_id=product.account_id,
            pp_id=product.pp_id,
            record_type="TERMINATE_PROVISIONED_PRODUCT",
        )
        self.records[rec.id] = rec
        # Control Tower works in the account through its execution role, which the account's
        # SCPs bind as they bind any role (its own SCPs exempt it; a quarantine's may not).
        why = role_refusal(
            self.org(), product.account_id or "", EXECUTION_ROLE, "cloudformation:DeleteStack"
        )
        self._account_operation(
            rec,
            "UNMANAGE",
            product.account_id or "",
            ("TerminateProvisionedProduct", product.name),
            on_done=lambda o: self._unmanaged(product),
            problem=f"AccessDeniedException: {why}" if why else None,
        )
        return {"RecordDetail": self._record_detail(rec)}

    def _unmanaged(self, product: Record) -> None:
        product.terminated = True
        if not product.account_id or self._record_status(product) != "SUCCEEDED":
            return  # a failed provisioning set nothing up: its termination only frees the name
        account = self._account(product.account_id)
        mine = self._baseline_for_target(account.arn)
        if mine is not None:
            del self.baselines[mine.arn]
        iam = iam_backends[product.account_id]["global"]
        role = next((r for r in iam.roles.values() if r.name == EXECUTION_ROLE), None)
        if role is not None:  # Control Tower removes its role even if it was added by hand
            del iam.roles[role.id]
        org = self.org().org
        assert org is not None
        account.parent_id = org.root_id

    # ------------------------------------------------------------------ what tests read
    def reset_metrics(self) -> None:
        """Start a fresh measurement (operations still in progress keep counting)."""
        with self._lock:
            self.max_account_ops = len(self._in_progress("account"))
            self.max_ou_ops = len(self._in_progress("ou"))
            self.violations.clear()

    def record(self) -> dict[str, Any]:
        self.tick()
        with self._lock:
            return {
                "max_account_ops": self.max_account_ops,
                "max_ou_ops": self.max_ou_ops,
                "violations": list(self.violations),
                "operations": [
                    {
                        "id": o.id,
                        "kind": o.kind,
                        "type": o.operation_type,
                        "target": o.target,
                        "status": o.status,
                        "started": o.started,
                        "ended": o.ended,
                        "accounts": o.accounts,
                        "message": o.message,
                    }
                    for o in self.operations.values()
                ],
                "enrolled_accounts": {
                    eb.target.rsplit("/", 1)[-1]: eb.status
                    for eb in self.baselines.values()
                    if eb.parent is not None
                },
            }
