"""A Trend Micro Cloud One Workload Security emulator: the ``/api`` routes the engine uses.

It runs inside the sandbox AWS process, because what it answers depends on that AWS:
- a connector is accepted only if the role exists in the account and trusts Trend Micro's
  account with this tenant's external id; a second connector for an account is refused;
- computers are discovered from the account's EC2 instances ``sync_seconds`` after the
  connector is made, and new instances appear as they launch;
- an agent turns ``active`` only after an SSM association installed it on that instance with
  this tenant's activation token (read from the member account's Parameter Store).
It checks keys (401) and ``api-version``, rate-limits per key over a sliding 60 s window (429),
and takes a fault plan (5xx, 429, slow sync).
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from moto.iam.models import iam_backends
from moto.ssm.models import ssm_backends
from werkzeug.wrappers import Request, Response

from sandbox.aws import ssm_associations
from sandbox.aws.faults import FaultPlan
from sandbox.aws.ssm_associations import Association, SsmAssociations

TREND_ACCOUNT = "147995105371"
POLICIES = {1: "Base Policy", 2: "Linux Server", 3: "Windows Server"}


@dataclass
class Connector:
    id: int
    account_id: str
    role_arn: str
    display_name: str
    created: float


@dataclass
class WorkloadSecurityEmulator:
    faults: FaultPlan
    ssm: SsmAssociations
    api_key: str
    external_id: str
    tenant_id: str
    activation_token: str
    regions: list[str] = field(default_factory=lambda: ["us-east-1"])
    sync_seconds: float = 1.0
    rate_limit_per_minute: int = 600
    connectors: dict[int, Connector] = field(default_factory=dict)
    policy_of: dict[int, int] = field(default_factory=dict)  # computer id -> policy id

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._calls: deque[float] = deque()
        self.next_id = 1

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._respond(request)
        return response(environ, start_response)

    def _respond(self, req: Request) -> Response:
        path = req.path
        if path.startswith("/_sandbox/"):
            return self._control(req)
        key = req.headers.get("api-secret-key")
        auth = req.headers.get("Authorization", "")
        if auth.startswith("ApiKey "):
            key = auth[len("ApiKey ") :]
        self.faults.record_call("workload-security", f"{req.method} {path}")
        if key != self.api_key:
            return _json({"message": "Invalid API key"}, 401)
        if req.headers.get("api-version") != "v1":
            return _json({"message": "api-version header must be v1"}, 400)
        if not self._admit():
            return _json({"message": "Too many API requests"}, 429, {"Retry-After": "1"})
        body_text = req.get_data(as_text=True)
        rule = self.faults.take("workload-security", f"{req.method} {path}", body_text, "error")
        if rule is not None:
            return _json(
                {"message": rule.message},
                rule.status,
                {"Retry-After": "1"} if rule.status == 429 else None,
            )
        try:
            body = json.loads(body_text) if body_text.strip() else {}
        except ValueError:
            return _json({"message": "the body is not JSON"}, 400)
        with self._lock:
            return self._route(req.method, path, body, req.args)

    def _admit(self) -> bool:
        now = time.time()
        with self._lock:
            while self._calls and now - self._calls[0] > 60:
                self._calls.popleft()
            if len(self._calls) >= self.rate_limit_per_minute:
                return False
            self._calls.append(now)
            return True

    def _route(self, method: str, path: str, body: dict[str, Any], args: Any) -> Response:
        if method == "GET" and path == "/api/awsconnectorsettings":
            return _json({"externalId": self.external_id})
        if method == "POST" and path == "/api/awsconnectors":
            return self._create_connector(body)
        if method == "POST" and path == "/api/awsconnectors/search":
            return _json({"awsConnectors": [self._connector(c) for c in self._search(body)]})
        if m := re.fullmatch(r"/api/awsconnectors/(\d+)", path):
            connector = self.connectors.get(int(m.group(1)))
            if connector is None:
                return _json({"message": "connector not found"}, 404)
            if method == "DELETE":
                del self.connectors[connector.id]
                return Response(status=204)
            return _json(self._connector(connector))
        if method == "GET" and path == "/api/computers":
            return _json({"computers": self._computers()})
        if m := re.fullmatch(r"/api/computers/(\d+)", path):
            computer = next((c for c in self._computers() if c["ID"] == int(m.group(1))), None)
            if computer is None:
                return _json({"message": "computer not found"}, 404)
            if method == "POST":
                policy = body.get("policyID")
                if policy not in POLICIES:
                    return _json({"message": f"policy {policy} does not exist"}, 400)
                self.policy_of[computer["ID"]] = int(policy)
                computer["policyID"] = int(policy)
            return _json(computer)
        if method == "GET" and path == "/api/policies":
            return _json({"policies": [{"ID": i, "name": n} for i, n in POLICIES.items()]})
        if method == "POST" and path == "/api/policies/search":
            wanted = {
                c.get("stringValue")
                for c in body.get("searchCriteria", [])
                if c.get("fieldName") == "name"
            }
            found = [{"ID": i, "name": n} for i, n in POLICIES.items() if not wanted or n in wanted]
            return _json({"policies": found})
        if method == "POST" and path == "/api/agentdeploymentscripts":
            return self._script(body)
        return _json({"message": f"no route {method} {path}"}, 404)

    # ------------------------------------------------------------------ connectors
    def _search(self, body: dict[str, Any]) -> list[Connector]:
        found = list(self.connectors.values())
        for crit in body.get("searchCriteria", []):
            if crit.get("fieldName") == "accountId":
                found = [c for c in found if c.account_id == crit.get("stringValue")]
        return found[: int(body.get("maxItems") or 5000)]

    def _create_connector(self, body: dict[str, Any]) -> Response:
        account, role_arn = str(body.get("accountId", "")), str(body.get("crossAccountRoleArn", ""))
        if not re.fullmatch(r"\d{12}", account):
            return _json({"message": "accountId must be a 12-digit AWS account id"}, 400)
        if any(c.account_id == account for c in self.connectors.values()):
            return _json({"message": f"A connector for AWS account {account} already exists"}, 400)
        problem = self._role_problem(account, role_arn)
        if problem:
            return _json({"message": problem}, 400)
        connector = Connector(
            self.next_id, account, role_arn, body.get("displayName") or account, time.time()
        )
        self.next_id += 1
        self.connectors[connector.id] = connector
        return _json(self._connector(connector))

    def _role_problem(self, account: str, role_arn: str) -> str | None:
        m = re.fullmatch(rf"arn:aws:iam::{account}:role/(?:.*/)?([\w+=,.@-]+)", role_arn)
        if not m:
            return f"crossAccountRoleArn must be a role in account {account}"
        try:
            role = _iam(account).get_role(m.group(1))
        except Exception:
            return f"Unable to assume role {role_arn}: it does not exist"
        policy = role.assume_role_policy_document
        doc = json.loads(policy) if isinstance(policy, str) else policy
        for stmt in doc.get("Statement", []):
            principal = json.dumps(stmt.get("Principal", {}))
            external = stmt.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId")
            if TREND_ACCOUNT in principal and external == self.external_id:
                return None
        return (
            f"Unable to assume role {role_arn}: the trust policy does not allow Trend Micro's "
            "account with this tenant's external id"
        )

    def _connector(self, c: Connector) -> dict[str, Any]:
        synced = time.time() >= c.created + self.sync_seconds
        return {
            "ID": c.id,
            "displayName": c.display_name,
            "accountId": c.account_id,
            "crossAccountRoleArn": c.role_arn,
            "syncedRegions": self.regions if synced else [],
            "lastSyncTime": int((c.created + self.sync_seconds) * 1000) if synced else None,
        }

    # ------------------------------------------------------------------ computers
    def _computers(self) -> list[dict[str, Any]]:
        out = []
        for c in self.connectors.values():
            if time.time() < c.created + self.sync_seconds:
                continue  # not yet synced
            for region in self.regions:
                for inst in ssm_associations.instances(c.account_id, region):
                    if inst.state not in ("running", "stopped"):
                        continue
                    out.append(self._computer(c.account_id, region, inst))
        return out

    def _computer(self, account: str, region: str, inst: Any) -> dict[str, Any]:
        cid = zlib.crc32(inst.id.encode()) % 10_000_000
        installer = self.ssm.agent_installed(account, region, inst, self._installs_agent)
        active = installer is not None and self._token_ok(account, region)
        if active and cid not in self.policy_of and installer is not None:
            policy = _policy_from(installer)
            if policy is not None:
                self.policy_of[cid] = policy
        return {
            "ID": cid,
            "hostName": inst.private_dns_name,
            "displayName": inst.id,
            "policyID": self.policy_of.get(cid, 0),
            "computerStatus": {"agentStatus": "active" if active else "inactive"},
            "ec2VirtualMachineSummary": {
                "instanceID": inst.id,
                "accountID": account,
                "region": region,
            },
            "lastAgentCommunication": int(time.time() * 1000) if active else None,
        }

    @staticmethod
    def _installs_agent(assoc: Association) -> bool:
        if assoc.name == "AWS-ConfigureAWSPackage":
            return assoc.parameters.get("action", [""])[0] == "Install"
        return "ds_agent" in assoc.name or "workload-security" in assoc.name.lower()

    def _token_ok(self, account: str, region: str) -> bool:
        """The agent activates only with this tenant's id and token in the account."""
        try:
            params = ssm_backends[account][region]._parameters
            tenant = params["dsTenantId"][-1].value
            stored = params["dsToken"][-1]
            token = stored.decrypt(stored.value)  # moto keeps SecureStrings "encrypted"
        except (KeyError, IndexError):
            return False
        return bool(tenant == self.tenant_id and token == self.activation_token)

    def _script(self, body: dict[str, Any]) -> Response:
        platform = body.get("platform")
        if platform not in ("linux", "windows", "solaris"):
            return _json({"message": "platform must be linux, windows or solaris"}, 400)
        policy = body.get("policyID")
        script = (
            "#!/bin/bash\n# Trend Micro Cloud One Workload Security agent (sandbox)\n"
            "/opt/ds_agent/dsa_control -r\n"
            f"/opt/ds_agent/dsa_control -a dsm://agents.sandbox:443/ "
            f'"tenantID:{self.tenant_id}" "token:{self.activation_token}"'
            + (f' "policyid:{policy}"' if policy else "")
            + "\n"
        )
        return _json({"scriptBody": script})

    # ------------------------------------------------------------------ control
    def _control(self, req: Request) -> Response:
        if req.path == "/_sandbox/state":
            with self._lock:
                return _json(
                    {
                        "connectors": [self._connector(c) for c in self.connectors.values()],
                        "computers": self._computers(),
                        **self.faults.describe(),
                    }
                )
        if req.path == "/_sandbox/faults":
            if req.method == "DELETE":
                self.faults.clear()
                return _json({"cleared": True})
            return _json({"added": self.faults.add(**json.loads(req.get_data())).__dict__})
        if req.path == "/_sandbox/config" and req.method == "POST":
            cfg = json.loads(req.get_data())
            if "sync_seconds" in cfg:
                self.sync_seconds = float(cfg["sync_seconds"])
            if "rate_limit_per_minute" in cfg:
                self.rate_limit_per_minute = int(cfg["rate_limit_per_minute"])
                self._calls.clear()
            return _json({"configured": cfg})
        return _json({"message": "unknown sandbox endpoint"}, 404)


def _iam(account: str) -> Any:
    backends = iam_backends[account]
    return backends["global"] if "global" in backends else backends["aws"]


def _policy_from(assoc: Association) -> int | None:
    raw = assoc.parameters.get("additionalArguments", ["{}"])[0]
    try:
        value = json.loads(raw).get("SSM_DS_POLICY_ID")
    except ValueError:
        return None
    return int(value) if value else None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=headers, content_type="application/json"
    )
