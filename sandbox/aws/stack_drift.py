"""Drift of a stack instance's resources, as DetectStackSetDrift finds it.

moto has no drift detection. AWS compares each supported resource's live properties with what
the stack last deployed; here each instance's resources are recorded when an operation leaves
the instance deployed, and compared with the member account's moto backends when a detection
runs. Two resource types are looked at, those the baselines use: an IAM role (gone, or its trust
policy or managed policies changed) and an SSM parameter (gone, or its value changed). Others are
not checked, as AWS leaves unsupported types out of drift detection.
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.models import iam_backends
from moto.ssm.models import ssm_backends
from moto.utilities.utils import get_partition

Snapshot = dict[str, tuple[str, ...]]  # logical id -> what was deployed


def snapshot(instance: Any) -> Snapshot:
    """What the instance's stack deployed, to compare with later."""
    out: Snapshot = {}
    for logical_id in list(getattr(instance.stack, "resource_map", {}) or {}):
        live = _live(instance, instance.stack.resource_map[logical_id])
        if live is not None:
            out[logical_id] = live
    return out


def drifted(instance: Any, deployed: Snapshot) -> bool:
    """Whether a resource the instance deployed is gone or was changed outside the stack."""
    for logical_id, expected in deployed.items():
        resource = instance.stack.resource_map[logical_id]
        if _live(instance, resource) != expected:
            return True
    return False


def _live(instance: Any, resource: Any) -> tuple[str, ...] | None:
    kind = type(resource).__name__
    module = type(resource).__module__
    account, region = instance.account_id, instance.region_name
    if kind == "Role" and module.startswith("moto.iam"):
        backend = iam_backends[account][get_partition(region)]
        role = next((r for r in backend.roles.values() if r.name == resource.name), None)
        if role is None:
            return ("DELETED",)
        return (
            role.name,
            json.dumps(_document(role.assume_role_policy_document), sort_keys=True),
            ",".join(sorted(role.managed_policies)),
        )
    if kind == "Parameter" and module.startswith("moto.ssm"):
        found = ssm_backends[account][region].get_parameter(resource.name)
        return ("DELETED",) if found is None else (found.name, str(found.value))
    return None


def _document(document: Any) -> Any:
    if isinstance(document, str):
        try:
            return json.loads(document)
        except ValueError:
            return document
    return document
