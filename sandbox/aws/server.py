"""The sandbox AWS server: moto's WSGI app behind a thin layer of realism and fault injection.

Control endpoints (not AWS; for tests and the embedded stack):
- ``GET /_sandbox/state``: fault rules, call counts, creations.
- ``POST /_sandbox/faults`` (a rule as JSON) / ``DELETE /_sandbox/faults``.
- ``POST /_sandbox/config`` (``{"create_account_seconds": 0.5}``).
- ``POST /_sandbox/release``: let held operations finish.
- ``POST /_sandbox/fleet``: a benchmark's fleet of accounts, made at once.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.utils import utcnow as moto_utcnow
from moto.iam import models as iam_models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from sandbox.aws import (
    capabilities,
    contract,
    ec2_answers,
    ec2_protection,
    fleet_seed,
    identity_store,
    persistence,
    protocols,
    speed,
)
from sandbox.aws import realism as realism_mod
from sandbox.aws import stacksets as stacksets_mod
from sandbox.aws.account_settings import (
    AccountSettingsEmulator,
    SettingsError,
    install_alias_uniqueness,
)
from sandbox.aws.controltower import ControlTowerEmulator, EmulatorError
from sandbox.aws.faults import FaultPlan
from sandbox.aws.rates import RateLimits
from sandbox.aws.scp_enforcement import ScpEnforcement, role_refusal
from sandbox.aws.spend import SpendEmulator, SpendError
from sandbox.aws.ssm_associations import SsmAssociations

StartResponse = Callable[..., Any]
_ACCESS_KEY = re.compile(r"Credential=([^/]+)/")
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/[^/]+/aws4_request")
_EMULATED_SSM = frozenset(
    {
        "CreateAssociation",
        "ListAssociations",
        "DescribeAssociation",
        "UpdateAssociation",
        "DeleteAssociation",
    }
)
_RPC_V2 = re.compile(r"^/service/[^/]+/operation/(\w+)$")
_READ = re.compile(r"^(Describe|List|Get)")
# Control Tower and the Account API speak REST-JSON: their paths are the operation's route.
_REST_JSON = re.compile(r"^/(?!$)[a-z][A-Za-z-]*$")
# Service Catalog operations the emulator answers (moto has no provisioning); the rest go to moto.
_EMULATED_REGIONS = frozenset(
    {"EnableRegion", "DisableRegion", "GetRegionOptStatus", "ListRegions"}
)
_EMULATED_SSO = frozenset(
    {
        "CreateAccountAssignment",
        "DescribeAccountAssignmentCreationStatus",
        "ListAccountAssignmentCreationStatus",
    }
)
_EMULATED_SC = frozenset(
    {
        "ProvisionProduct",
        "DescribeRecord",
        "SearchProducts",
        "SearchProductsAsAdmin",
        "ListProvisioningArtifacts",
        "SearchProvisionedProducts",
        "TerminateProvisionedProduct",
    }
)


class SandboxAws:
    def __init__(
        self,
        create_account_seconds: float = 2.0,
        control_tower_seconds: float = 3.0,
        stack_set_seconds: float = 1.0,
    ) -> None:
        self.faults = FaultPlan()
        self.rates = RateLimits()  # none until a benchmark sets AWS's (sandbox/aws/rates.py)
        self.controltower = ControlTowerEmulator(
            self.faults,
            account_operation_seconds=control_tower_seconds,
            ou_operation_seconds=control_tower_seconds,
        )
        self.organizations = realism_mod.OrganizationsRealism(
            self.faults,
            create_account_seconds=create_account_seconds,
            on_move=self.controltower.on_account_moved,
        )
        realism_mod.install(self.organizations)
        speed.install()
        self.stacksets = stacksets_mod.StackSetRealism(self.faults, stack_set_seconds)
        stacksets_mod.install(self.stacksets)
        self.ssm = SsmAssociations()
        self.account_settings = AccountSettingsEmulator(self.faults)
        install_alias_uniqueness()
        ec2_protection.install()
        self._moto = DomainDispatcherApplication(create_backend_app)
        # Where the Organizations backend is written after every call that changed it (None:
        # nothing is kept); the lock keeps those calls, and the write, one at a time.
        self.org_state_file: Path | None = None
        self._org_lock = threading.RLock()
        self.seeded = False
        self.denied_actions: set[str] = set()  # what SimulatePrincipalPolicy denies
        # Seconds after an account's creation during which its execution role refuses
        # AssumeRole, as a new account's does on AWS for a while.
        self.role_ready_seconds = 2.0
        # Every answer held to botocore's output shape (sandbox/aws/contract.py); what does not
        # fit is kept here for the tests to fail on.
        self.violations: list[contract.Violation] = []
        self._violations_lock = threading.Lock()
        # SCPs applied to the calls made with a member account's assumed-role credentials.
        self.scps = ScpEnforcement()
        self.stacksets.refuse_instance = self._stack_set_refusal
        # What accounts spend, and Budgets (with its actions) and Cost Explorer over it.
        self.spend = SpendEmulator(apply_scp=self._apply_scp, role_exists=_role_exists)
        threading.Thread(target=self._run_budget_actions, daemon=True).start()

    def _run_budget_actions(self) -> None:
        """AWS runs budget actions on its own, without anyone calling: so does the sandbox."""
        while True:
            time.sleep(0.5)
            try:
                self.spend.tick()
            except Exception:  # never let the sandbox's clock stop
                logging.getLogger("sandbox.aws").exception("budget actions")

    def _apply_scp(self, policy_id: str, target: str, attach: bool) -> None:
        with self._org_lock:
            org = self.controltower.org()
            if attach:
                org.attach_policy(PolicyId=policy_id, TargetId=target)
            else:
                org.detach_policy(PolicyId=policy_id, TargetId=target)
            if self.org_state_file is not None:
                self.save_organizations()

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self._control(environ, start_response)
        body = _read_body(environ)
        service, action = _identify(environ, body)
        key = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
        caller = environ["sandbox.caller"] = key.group(1) if key else ""
        self.faults.record_call(service, action, caller)
        text = body.decode("utf-8", "replace")
        seen: dict[str, Any] = {}

        def started(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            seen.update(status=int(status.split()[0]), headers=headers)
            return start_response(status, headers, *rest)

        if throttled := self.rates.refusal(service, action):
            code, status, message = throttled
            return self._checked(
                service, action, seen, _error(environ, started, status, code, message)
            )

        if self.faults.take(service, action, text, "block") is not None:
            self.faults.block()  # before any lock: the rest of the sandbox goes on meanwhile
        if service == "organizations":
            with self._org_lock:
                created = self.organizations.tick()
                answer = self._answer(environ, started, service, action, body, text)
                if self.org_state_file is not None and (created or not _READ.match(action)):
                    self.save_organizations()
        else:
            answer = self._answer(environ, started, service, action, body, text)
        return self._checked(service, action, seen, answer)

    def _checked(
        self, service: str, action: str, seen: dict[str, Any], answer: Iterable[bytes]
    ) -> Iterable[bytes]:
        """The answer, once held to its operation's output shape (its violations kept)."""
        chunks = list(answer)
        closing = getattr(answer, "close", None)
        if closing is not None:
            closing()
        found = contract.check(
            service, action, seen.get("status", 200), seen.get("headers", []), b"".join(chunks)
        )
        if found:
            with self._violations_lock:
                self.violations.extend(found)
        return chunks

    def save_organizations(self) -> None:
        """Before the call that changed Organizations is answered: what AWS answered for, it
        never forgets (a creation that completed, a move, a closure, a tag)."""
        assert self.org_state_file is not None
        with self._org_lock:
            persistence.save_organizations(
                self.org_state_file,
                {
                    "creations": self.organizations.creations,
                    "closures": self.organizations.closures,
                },
            )

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        service: str,
        action: str,
        body: bytes,
        text: str,
    ) -> Iterable[bytes]:
        rule = self.faults.take(service, action, text, "error", environ.get("sandbox.caller"))
        if rule is not None:
            return _error(
                environ, start_response, rule.status, rule.error or "InternalFailure", rule.message
            )
        if why := self._scp_refusal(environ, service, action):
            code = "AccessDeniedException" if _json_protocol(environ) else "AccessDenied"
            return _error(environ, start_response, 403, code, why)
        if service == "cloudformation" and (why := capabilities.refusal(action, body)):
            return _error(environ, start_response, 400, "InsufficientCapabilitiesException", why)
        if service == "controltower":
            return self._rest_json(start_response, action, body)
        if service == "account" and (why := self._untrusted_account_call(body)):
            start_response(
                "403 Forbidden",
                [
                    ("Content-Type", "application/json"),
                    ("x-amzn-ErrorType", "AccessDeniedException"),
                ],
            )
            return [json.dumps({"message": why}).encode()]
        if service == "account" and action in ("PutAccountName", "GetAccountInformation"):
            return self._account_api(start_response, action, body)
        if service == "account" and action in _EMULATED_REGIONS:
            return self._settings_call(environ, start_response, action, body)
        if service == "sso" and action in _EMULATED_SSO:
            return self._settings_call(environ, start_response, action, body)
        if service == "sso":
            self.account_settings.tick()  # assignments whose time has come exist
        if service == "iam" and action == "SimulatePrincipalPolicy":
            return self._simulate(start_response, body)
        if service == "sts" and action == "AssumeRole" and (why := self._cannot_assume(body)):
            return _error(environ, start_response, 403, "AccessDenied", why)
        if service == "ssm" and action in _EMULATED_SSM:
            return self._ssm(environ, start_response, action, body)
        if service == "servicecatalog" and action in _EMULATED_SC:
            return self._service_catalog(environ, start_response, action, body)
        if service in ("budgets", "ce"):
            return self._spend_call(environ, start_response, service, action, body)
        if service == "identitystore":
            return self._corrected(
                environ, start_response, partial(identity_store.complete, action)
            )
        if service == "ec2":
            return self._corrected(environ, start_response, ec2_answers.platforms)
        return self._moto(environ, start_response)  # type: ignore[no-any-return]

    def _spend_call(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        service: str,
        action: str,
        body: bytes,
    ) -> Iterable[bytes]:
        req = json.loads(body or b"{}")
        try:
            if service == "ce" and action == "GetCostAndUsage":
                result: dict[str, Any] | None = self.spend.cost_and_usage(req)
            elif service == "budgets":
                result = self.spend.budgets_call(action, req)
            else:
                result = None
        except SpendError as err:
            return _error(environ, start_response, err.status, err.code, err.message)
        if result is not None:
            start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1")])
            return [json.dumps(result, default=_json_default).encode()]
        if service == "budgets" and action in ("DescribeBudget", "DescribeBudgets"):
            return self._corrected(environ, start_response, self._budgets_with_spend)
        return self._moto(environ, start_response)  # type: ignore[no-any-return]

    def _budgets_with_spend(self, body: bytes) -> bytes:
        return json.dumps(self.spend.with_spend(json.loads(body)), default=_json_default).encode()

    def _scp_refusal(self, environ: dict[str, Any], service: str, action: str) -> str | None:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        key = _CREDENTIAL.search(authorization)
        if key is None or not key.group(1).startswith("ASIA"):
            return None
        try:
            org = self.controltower.org()
        except EmulatorError:
            return None
        with self._org_lock:
            return self.scps.refusal(org, key.group(1), service, action, key.group(2))

    def _stack_set_refusal(self, stack_set: Any, account: str, action: str) -> str | None:
        """Why AWS could not act on a self-managed StackSet's instance in ``account``: the
        StackSet's execution role is not there, or an SCP stops it."""
        if getattr(stack_set, "permission_model", "SELF_MANAGED") != "SELF_MANAGED":
            return None
        try:
            org = self.controltower.org()
        except EmulatorError:
            return None
        assert org.org is not None
        if account == org.org.master_account_id or not any(a.id == account for a in org.accounts):
            return None
        role = str(stack_set.execution_role_name)
        if not any(
            r.name == role for r in iam_models.iam_backends[account]["global"].roles.values()
        ):
            admin = str(stack_set.administration_role_arn).rsplit("/", 1)[-1]
            return (
                f"Account {account} should have '{role}' role with trust relationship to "
                f"Role '{admin}'."
            )
        verb = {"Delete": "DeleteStack", "Create": "CreateStack"}.get(action[:6], "UpdateStack")
        return role_refusal(org, account, role, f"cloudformation:{verb}")

    def _corrected(
        self, environ: dict[str, Any], start_response: StartResponse, fix: Callable[[bytes], bytes]
    ) -> Iterable[bytes]:
        """moto's answer, corrected where it says what AWS would not (``fix``)."""
        seen: dict[str, Any] = {}

        def held(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            seen.update(status=status, headers=headers)
            return lambda _: None

        answer = self._moto(environ, held)
        body = b"".join(answer)
        if str(seen.get("status", "")).startswith("2"):
            body = fix(body)
        headers = [(k, v) for k, v in seen.get("headers", []) if k.lower() != "content-length"]
        start_response(seen.get("status", "200 OK"), [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def _settings_call(
        self, environ: dict[str, Any], start_response: StartResponse, action: str, body: bytes
    ) -> Iterable[bytes]:
        req = json.loads(body or b"{}")
        emulator = self.account_settings
        try:
            if action == "CreateAccountAssignment":
                result = emulator.create_assignment(req)
            elif action == "DescribeAccountAssignmentCreationStatus":
                result = emulator.describe_assignment(req)
            elif action == "ListAccountAssignmentCreationStatus":
                result = emulator.list_assignment_creations(req)
            else:
                try:
                    self.controltower.org().get_account_by_id(str(req.get("AccountId", "")))
                except Exception as err:
                    raise SettingsError(
                        403, "AccessDeniedException", "the account is not in the organization"
                    ) from err
                result = emulator.region_call(action, req)
        except SettingsError as err:
            if environ.get("HTTP_X_AMZ_TARGET"):
                return _error(environ, start_response, err.status, err.code, err.message)
            start_response(
                f"{err.status} Error",
                [("Content-Type", "application/json"), ("x-amzn-ErrorType", err.code)],
            )
            return [json.dumps({"message": err.message}).encode()]
        content = "application/x-amz-json-1.1" if environ.get("HTTP_X_AMZ_TARGET") else None
        start_response("200 OK", [("Content-Type", content or "application/json")])
        return [json.dumps(result).encode()]

    def _account_api(
        self, start_response: StartResponse, action: str, body: bytes
    ) -> Iterable[bytes]:
        """The Account API's name calls (moto has only alternate contacts): the name is the one
        Organizations shows, as on AWS."""
        req = json.loads(body or b"{}")
        headers = [("Content-Type", "application/json")]

        def refuse(status: str, code: str, message: str) -> Iterable[bytes]:
            start_response(status, [*headers, ("x-amzn-ErrorType", code)])
            return [json.dumps({"message": message}).encode()]

        try:
            org = self.controltower.org()
            account = org.get_account_by_id(str(req.get("AccountId", "")))
        except Exception:
            return refuse(
                "403 Forbidden", "AccessDeniedException", "the account is not in the organization"
            )
        if action == "PutAccountName":
            name = str(req.get("AccountName", ""))
            if not 1 <= len(name) <= 50:
                return refuse(
                    "400 Bad Request", "ValidationException", "AccountName must be 1-50 characters"
                )
            account.name = name
            result: dict[str, Any] = {}
        else:
            result = {
                "AccountId": account.id,
                "AccountName": account.name,
                "AccountCreatedDate": account.create_time.isoformat()
                if hasattr(account.create_time, "isoformat")
                else str(account.create_time),
            }
        start_response("200 OK", headers)
        return [json.dumps(result).encode()]

    def _untrusted_account_call(self, body: bytes) -> str | None:
        """As AWS: the Account API acts on another account of the organization (``AccountId``)
        only once the organization has enabled trusted access for AWS Account Management."""
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return None
        if not isinstance(req, dict) or not req.get("AccountId"):
            return None  # the caller's own account
        try:
            org = self.controltower.org()
        except EmulatorError:
            return None
        enabled = {s.get("ServicePrincipal") for s in org.services}
        if "account.amazonaws.com" in enabled:
            return None
        return (
            "The request failed because the organization has not enabled trusted access for "
            "AWS Account Management (account.amazonaws.com)"
        )

    def _cannot_assume(self, body: bytes) -> str | None:
        """As IAM: a role in a member account can be assumed only if it exists there (moto lets
        any ARN be assumed). The member accounts Organizations creates get their execution role;
        an account made otherwise, or whose role was deleted, refuses."""
        arn = (parse_qs(body.decode("utf-8", "replace")).get("RoleArn") or [""])[0]
        match = re.match(r"^arn:aws:iam::(\d{12}):role/(?:.*/)?([^/]+)$", arn)
        if match is None:
            return None
        account, name = match.groups()
        try:
            org = self.controltower.org()
        except EmulatorError:
            return None
        assert org.org is not None
        members = {a.id for a in org.accounts if a.id != org.org.master_account_id}
        if account not in members:
            return None  # the management account's own roles, or outside the organization
        roles = iam_models.iam_backends[account]["global"].roles.values()
        if not any(r.name == name for r in roles):
            return (
                f"User is not authorized to perform: sts:AssumeRole on resource: {arn} "
                "(the role does not exist in the account)"
            )
        created = next(a.create_time for a in org.accounts if a.id == account)
        age = (moto_utcnow() - created).total_seconds()
        if age < self.role_ready_seconds:
            # AWS: "you might need to wait a few minutes" after CreateAccount before the role
            # that Organizations makes can be assumed.
            return (
                f"User is not authorized to perform: sts:AssumeRole on resource: {arn} "
                "(the account is new: its role is not assumable yet)"
            )
        return None

    def _ssm(
        self, environ: dict[str, Any], start_response: StartResponse, action: str, body: bytes
    ) -> Iterable[bytes]:
        """SSM associations, in the account whose credentials signed the request."""
        cred = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        account = iam_models.get_account_id_from(cred.group(1)) if cred else DEFAULT_ACCOUNT_ID
        region = cred.group(2) if cred else "us-east-1"
        headers = [("Content-Type", "application/x-amz-json-1.1")]
        try:
            result = self.ssm.handle(action, account, region, protocols.json_body(body))
        except EmulatorError as err:
            start_response("400 Bad Request", [*headers, ("x-amzn-ErrorType", err.code)])
            return [json.dumps({"__type": err.code, "message": err.message}).encode()]
        start_response("200 OK", headers)
        return [json.dumps(result, default=_json_default).encode()]

    def _simulate(self, start_response: StartResponse, body: bytes) -> Iterable[bytes]:
        """iam:SimulatePrincipalPolicy (moto has none): every action is allowed except those a
        test denies (``/_sandbox/config {"denied_actions": [...]}``), as if the worker's role
        lacked them. Query protocol, XML answer, as IAM's."""
        form = parse_qs(body.decode("utf-8", "replace"))
        actions = [v[0] for k, v in sorted(form.items()) if k.startswith("ActionNames.member.")]
        results = "".join(
            "<member><EvalActionName>{}</EvalActionName><EvalResourceName>*</EvalResourceName>"
            "<EvalDecision>{}</EvalDecision><MatchedStatements/><MissingContextValues/></member>".format(
                action, "implicitDeny" if action in self.denied_actions else "allowed"
            )
            for action in actions
        )
        xml = (
            '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
            f"<EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            "</SimulatePrincipalPolicyResponse>"
        ).encode()
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))])
        return [xml]

    def _rest_json(
        self, start_response: StartResponse, action: str, body: bytes
    ) -> Iterable[bytes]:
        try:
            result = self.controltower.controltower(action, protocols.json_body(body))
        except EmulatorError as err:
            status = protocols.rest_json_error_status("controltower", err.code)
            payload = json.dumps({"message": err.message}).encode()
            start_response(
                f"{status} Error",
                [("Content-Type", "application/json"), ("x-amzn-ErrorType", err.code)],
            )
            return [payload]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(result, default=str).encode()]

    def _service_catalog(
        self, environ: dict[str, Any], start_response: StartResponse, action: str, body: bytes
    ) -> Iterable[bytes]:
        """botocore speaks JSON 1.1 or RPC v2 CBOR to Service Catalog; answer in kind."""
        cbor = "cbor" in environ.get("CONTENT_TYPE", "") or bool(
            _RPC_V2.match(environ["PATH_INFO"])
        )
        if cbor:
            headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        else:
            headers = [("Content-Type", "application/x-amz-json-1.1")]
        try:
            request = protocols.decode_cbor(body) if cbor else protocols.json_body(body)
            result = self.controltower.servicecatalog(action, request)
        except EmulatorError as err:
            start_response("400 Bad Request", [*headers, ("x-amzn-ErrorType", err.code)])
            if cbor:
                return [protocols.encode_cbor_error(err.code, err.message)]
            return [json.dumps({"__type": err.code, "message": err.message}).encode()]
        start_response("200 OK", headers)
        if cbor:
            return [protocols.encode_cbor("servicecatalog", action, result)]
        return [json.dumps(result, default=_json_default).encode()]

    def configure(self, payload: dict[str, Any]) -> None:
        if "create_account_seconds" in payload:
            self.organizations.create_account_seconds = float(payload["create_account_seconds"])
        if "control_tower_seconds" in payload:
            seconds = float(payload["control_tower_seconds"])
            self.controltower.account_operation_seconds = seconds
            self.controltower.ou_operation_seconds = seconds
        if "stack_set_seconds" in payload:
            self.stacksets.operation_seconds = float(payload["stack_set_seconds"])
        if "stack_set_instance_seconds" in payload:
            self.stacksets.instance_seconds = float(payload["stack_set_instance_seconds"])
        if "role_ready_seconds" in payload:
            self.role_ready_seconds = float(payload["role_ready_seconds"])
        if "control_tower_account_limit" in payload:
            self.controltower.account_limit = int(payload["control_tower_account_limit"])

    def _held(self) -> dict[str, int]:
        """How many operations the fault plan holds, per service: a test waits for one before
        it kills the worker, so the kill lands while the operation is in flight."""
        return {
            "organizations": sum(c.held for c in self.organizations.creations.values()),
            "controltower": sum(o.held for o in self.controltower.operations.values()),
            "cloudformation": sum(p.held for p in self.stacksets.pending.values()),
            "settings": self.account_settings.held(),
            "blocked": self.faults.blocked,
        }

    def _control(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        body = _read_body(environ)
        payload: Any = json.loads(body) if body.strip() else {}
        result: Any
        if path == "/_sandbox/state" and method == "GET":
            result = {
                **self.faults.describe(),
                "creations": [c.describe() for c in self.organizations.creations.values()],
                "create_account_seconds": self.organizations.create_account_seconds,
                "seeded": self.seeded,
                "held": self._held(),
                "rates": self.rates.describe(),
            }
        elif path == "/_sandbox/violations" and method == "GET":
            with self._violations_lock:
                result = [v.as_dict() for v in self.violations]
        elif path == "/_sandbox/settings" and method == "GET":
            result = self.account_settings.record()
        elif path == "/_sandbox/controltower" and method == "GET":
            result = self.controltower.record()
        elif path == "/_sandbox/controltower/reset-metrics" and method == "POST":
            self.controltower.reset_metrics()
            result = {"reset": True}
        elif path == "/_sandbox/faults" and method == "POST":
            result = {"added": self.faults.add(**payload).__dict__}
        elif path == "/_sandbox/faults" and method == "DELETE":
            self.faults.clear()
            result = {"cleared": True}
        elif path == "/_sandbox/config" and method == "POST":
            # Also how a test breaks the organization on purpose for `vend doctor`.
            self.configure(payload)  # the latencies
            if "rates" in payload:
                try:
                    self.rates.configure(dict(payload["rates"] or {}))
                except (ValueError, KeyError, TypeError) as err:
                    start_response("400 Bad Request", [("Content-Type", "application/json")])
                    return [json.dumps({"error": f"rates: {err}"}).encode()]
            if "denied_actions" in payload:
                self.denied_actions = set(payload["denied_actions"])
            orgs = self.organizations
            if "close_account_seconds" in payload:
                orgs.close_account_seconds = float(payload["close_account_seconds"])
            if "close_quota" in payload:
                orgs.close_quota = (
                    None if payload["close_quota"] is None else int(payload["close_quota"])
                )
            if "close_window_seconds" in payload:
                orgs.close_window_seconds = float(payload["close_window_seconds"])
            for key in ("budgets_lag_seconds", "cost_explorer_lag_seconds"):
                if key in payload:
                    setattr(self.spend, key, float(payload[key]))
            for key in ("assignment_seconds", "region_seconds"):
                if key in payload:
                    setattr(self.account_settings, key, float(payload[key]))
            if "landing_zone_status" in payload:
                self.controltower.landing_zone_status = str(payload["landing_zone_status"])
            if "remediation_types" in payload:
                self.controltower.remediation_types = set(payload["remediation_types"])
            if "account_factory_shared" in payload:
                self.controltower.account_factory_shared = bool(payload["account_factory_shared"])
            if "feature_set" in payload:
                org = self.controltower.org().org
                assert org is not None
                org.feature_set = str(payload["feature_set"])
            result = {
                "create_account_seconds": self.organizations.create_account_seconds,
                "denied_actions": sorted(self.denied_actions),
                "landing_zone_status": self.controltower.landing_zone_status,
                "account_factory_shared": self.controltower.account_factory_shared,
                "remediation_types": sorted(self.controltower.remediation_types),
                "close_account_seconds": orgs.close_account_seconds,
                "close_quota": orgs.close_quota,
                "close_window_seconds": orgs.close_window_seconds,
            }
        elif path == "/_sandbox/fleet" and method == "POST":
            # A benchmark's fleet, made at once (sandbox/aws/fleet_seed.py).
            try:
                with self._org_lock:
                    made = fleet_seed.seed_fleet(
                        self.controltower,
                        str(payload["organizational_unit"]),
                        int(payload["count"]),
                        str(payload.get("prefix", "fleet")),
                        bool(payload.get("control_tower", False)),
                    )
            except (EmulatorError, KeyError, ValueError) as err:
                start_response("400 Bad Request", [("Content-Type", "application/json")])
                return [json.dumps({"error": str(getattr(err, "message", err))}).encode()]
            result = {"accounts": made}
        elif path == "/_sandbox/spend" and method == "POST":
            # An account spends (a test's stand-in for running something that costs).
            self.spend.spend(str(payload["account_id"]), float(payload["usd"]))
            result = {"spent": payload}
        elif path == "/_sandbox/spend" and method == "GET":
            result = {
                "ledger": self.spend.ledger,
                "actions": [
                    a.describe() | {"history": a.history} for a in self.spend.actions.values()
                ],
                "budgets_lag_seconds": self.spend.budgets_lag_seconds,
                "cost_explorer_lag_seconds": self.spend.cost_explorer_lag_seconds,
            }
        elif path == "/_sandbox/release" and method == "POST":
            result = {
                "released": self.organizations.release_holds()
                + self.controltower.release_holds()
                + self.stacksets.release_holds()
                + self.account_settings.release_holds()
                + self.faults.release_blocked()
            }
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "unknown sandbox control endpoint"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(result, default=str).encode()]


def _role_exists(arn: str) -> bool:
    """Whether the role an action runs as exists (Budgets assumes it to act)."""
    match = re.match(r"^arn:aws:iam::(\d{12}):role/(?:.*/)?([^/]+)$", arn)
    if match is None:
        return False
    account, name = match.groups()
    roles = iam_models.iam_backends[account]["global"].roles.values()
    return any(r.name == name for r in roles)


def _json_default(value: Any) -> Any:
    """JSON protocols carry timestamps as epoch seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    return str(value)


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _identify(environ: dict[str, Any], body: bytes) -> tuple[str, str]:
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = scope.group(1) if scope else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1]
    path = environ.get("PATH_INFO", "")
    if rpc := _RPC_V2.match(path):
        return service, rpc.group(1)
    if service == "controltower":
        return service, protocols.rest_routes("controltower").get(path, path)
    if service == "account" and path.strip("/"):
        name = path.strip("/")
        return service, name[0].upper() + name[1:]  # /putAccountName -> PutAccountName
    actions = parse_qs(body.decode("utf-8", "replace")).get("Action") or parse_qs(
        environ.get("QUERY_STRING", "")
    ).get("Action")
    return service, actions[0] if actions else environ.get("REQUEST_METHOD", "?")


def _json_protocol(environ: dict[str, Any]) -> bool:
    return bool(
        environ.get("HTTP_X_AMZ_TARGET")
        or _RPC_V2.match(environ.get("PATH_INFO", ""))
        or _REST_JSON.match(environ.get("PATH_INFO", ""))
        or "json" in environ.get("CONTENT_TYPE", "")
    )


def _error(
    environ: dict[str, Any], start_response: StartResponse, status: int, code: str, message: str
) -> Iterable[bytes]:
    reason = {
        400: "Bad Request",
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }.get(status, "Error")
    headers: list[tuple[str, str]] = []
    if "cbor" in environ.get("CONTENT_TYPE", "") or _RPC_V2.match(environ.get("PATH_INFO", "")):
        # RPC v2 CBOR (Service Catalog, as botocore now speaks it): an error in CBOR too, or
        # botocore raises a parser error instead of the ClientError the engine handles.
        body = protocols.encode_cbor_error(code, message)
        ctype = "application/cbor"
        headers.append(("smithy-protocol", "rpc-v2-cbor"))
    elif environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": code, "message": message}).encode()
        ctype = "application/x-amz-json-1.1"
    elif _REST_JSON.match(environ.get("PATH_INFO", "")) or "json" in environ.get(
        "CONTENT_TYPE", ""
    ):
        body = json.dumps({"message": message}).encode()  # REST-JSON: the code in the header
        ctype = "application/json"
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
            "</ErrorResponse>"
        ).encode()
        ctype = "text/xml"
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", ctype),
            ("x-amzn-ErrorType", code),
            ("Content-Length", str(len(body))),
            *headers,
        ],
    )
    return [body]


def serve(app: SandboxAws, host: str, port: int) -> BaseWSGIServer:
    server: BaseWSGIServer = make_server(host, port, app, threaded=True)
    return server
