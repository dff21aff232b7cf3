"""SSM State Manager associations, which moto lacks (CreateAssociation answers 500 there).

An association applies to the instances its targets match: those running when it is created and
those launched later, each ``run_seconds`` after whichever came last. The Workload Security
emulator asks ``agent_installed`` to decide when an agent turns active.
"""

from __future__ import annotations

import calendar
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ssm.models import ssm_backends

from sandbox.aws.controltower import EmulatorError


@dataclass
class Association:
    id: str
    account: str
    region: str
    name: str  # the SSM document
    association_name: str | None
    targets: list[dict[str, Any]]
    parameters: dict[str, list[str]]
    created: float
    schedule: str | None = None
    version: int = 1

    def listed(self) -> dict[str, Any]:
        """An item of ListAssociations: the model's ``Association`` shape, which has no
        Parameters and no Date (only DescribeAssociation says what parameters it has)."""
        out: dict[str, Any] = {
            "AssociationId": self.id,
            "Name": self.name,
            "AssociationVersion": str(self.version),
            "Targets": self.targets,
            "Overview": {"Status": "Success", "AssociationStatusAggregatedCount": {}},
        }
        if self.association_name:
            out["AssociationName"] = self.association_name
        if self.schedule:
            out["ScheduleExpression"] = self.schedule
        return out

    def describe(self) -> dict[str, Any]:
        """DescribeAssociation's AssociationDescription: the listed item, its Parameters and
        its Date."""
        return {**self.listed(), "Parameters": self.parameters, "Date": self.created}


@dataclass
class SsmAssociations:
    run_seconds: float = 1.0
    associations: dict[str, Association] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()

    def handle(self, action: str, account: str, region: str, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            handler = getattr(self, f"_{action}", None)
            if handler is None:
                raise EmulatorError("ValidationException", f"{action} is not emulated")
            return handler(account, region, req)  # type: ignore[no-any-return]

    def _CreateAssociation(self, account: str, region: str, req: dict[str, Any]) -> dict[str, Any]:
        name = req.get("Name", "")
        if not name.startswith("AWS-"):
            docs = ssm_backends[account][region]._documents
            if name not in docs:
                raise EmulatorError("InvalidDocument", f"Document {name} does not exist")
        assoc_name = req.get("AssociationName")
        if assoc_name and any(
            a.association_name == assoc_name and a.account == account and a.region == region
            for a in self.associations.values()
        ):
            raise EmulatorError("AssociationAlreadyExists", f"{assoc_name} already exists")
        targets = req.get("Targets") or []
        if not targets and req.get("InstanceId"):
            targets = [{"Key": "InstanceIds", "Values": [req["InstanceId"]]}]
        if not targets:
            raise EmulatorError("InvalidTarget", "an association needs Targets")
        assoc = Association(
            id=str(uuid.uuid4()),
            account=account,
            region=region,
            name=name,
            association_name=assoc_name,
            targets=targets,
            parameters=req.get("Parameters") or {},
            created=time.time(),
            schedule=req.get("ScheduleExpression"),
        )
        self.associations[assoc.id] = assoc
        return {"AssociationDescription": assoc.describe()}

    def _mine(self, account: str, region: str) -> list[Association]:
        return [
            a for a in self.associations.values() if a.account == account and a.region == region
        ]

    def _ListAssociations(self, account: str, region: str, req: dict[str, Any]) -> dict[str, Any]:
        found = self._mine(account, region)
        for flt in req.get("AssociationFilterList") or []:
            key, value = flt["key"], flt["value"]
            if key == "AssociationName":
                found = [a for a in found if a.association_name == value]
            elif key == "Name":
                found = [a for a in found if a.name == value]
            elif key == "AssociationId":
                found = [a for a in found if a.id == value]
        return {"Associations": [a.listed() for a in found]}

    def _get(self, account: str, region: str, req: dict[str, Any]) -> Association:
        for a in self._mine(account, region):
            if a.id == req.get("AssociationId") or (req.get("Name") and a.name == req.get("Name")):
                return a
        raise EmulatorError("AssociationDoesNotExist", "no such association")

    def _DescribeAssociation(
        self, account: str, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        return {"AssociationDescription": self._get(account, region, req).describe()}

    def _UpdateAssociation(self, account: str, region: str, req: dict[str, Any]) -> dict[str, Any]:
        """A new version of the association: the parameters (and schedule, targets) given
        replace the old. Agents it installed stay installed (a new version changes what later
        installs are told, here the policy they activate with)."""
        assoc = self._get(account, region, {"AssociationId": req.get("AssociationId")})
        if "Parameters" in req:
            assoc.parameters = dict(req["Parameters"] or {})
        if req.get("Targets"):
            assoc.targets = list(req["Targets"])
        if req.get("ScheduleExpression"):
            assoc.schedule = req["ScheduleExpression"]
        assoc.version += 1
        return {"AssociationDescription": assoc.describe()}

    def _DeleteAssociation(self, account: str, region: str, req: dict[str, Any]) -> dict[str, Any]:
        del self.associations[self._get(account, region, req).id]
        return {}

    # ------------------------------------------------------------------ for the WS emulator
    def agent_installed(
        self, account: str, region: str, instance: Any, matches_agent: Any
    ) -> Association | None:
        """The association that installed an agent on this instance, once it has run."""
        for assoc in self._mine(account, region):
            if not matches_agent(assoc) or not _targets(assoc, instance):
                continue
            launched = calendar.timegm(instance.launch_time.utctimetuple())
            if time.time() >= max(assoc.created, launched) + self.run_seconds:
                return assoc
        return None


def _targets(assoc: Association, instance: Any) -> bool:
    if instance.state != "running":
        return False
    tags = (
        {t["key"]: t["value"] for t in instance.get_tags()} if hasattr(instance, "get_tags") else {}
    )
    for target in assoc.targets:
        key, values = target.get("Key", ""), target.get("Values", [])
        if key == "InstanceIds" and ("*" in values or instance.id in values):
            return True
        if key.startswith("tag:") and tags.get(key[4:]) in values:
            return True
    return False


def instances(account: str, region: str) -> list[Any]:
    try:
        return list(ec2_backends[account][region].all_instances())
    except KeyError:
        return []
