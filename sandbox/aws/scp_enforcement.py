"""SCPs enforced on the calls made inside member accounts (moto stores SCPs but never applies
them, so a quarantined account would let the engine do what AWS refuses it).

The caller is found from the request's access key: keys that moto's STS issued for an assumed
role carry the role's ARN, and the account is the role's. The levels are the organization's
path to that account (root, OUs, the account), each with the SCPs attached to it; the verdict
is ``common.scp``'s, the same evaluation `vend doctor` applies to a real organization.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from moto.iam import models as iam_models

from common import scp

# Signing names whose IAM action prefix differs.
_PREFIX = {"monitoring": "cloudwatch", "email": "ses", "sso": "sso"}
_ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role/")


class ScpEnforcement:
    def __init__(self) -> None:
        self._callers: dict[str, tuple[str, str] | None] = {}
        self._lock = threading.Lock()
        self.refused = 0  # calls refused so far (the state endpoint shows it)

    def caller(self, access_key: str) -> tuple[str, str] | None:
        """(account, role ARN) of an assumed-role key; None for any other key."""
        with self._lock:
            if access_key in self._callers:
                return self._callers[access_key]
        found: tuple[str, str] | None = None
        if access_key.startswith("ASIA"):
            account = iam_models.get_account_id_from(access_key)
            key = iam_models.iam_backends[account]["global"].access_keys.get(access_key)
            role = getattr(key, "role_arn", None) if key is not None else None
            if role and (match := _ROLE_ARN.match(role)):
                found = (match.group(1), role)
        with self._lock:
            self._callers[access_key] = found
        return found

    def refusal(
        self, org: Any, access_key: str, service: str, action: str, region: str
    ) -> str | None:
        """Why AWS would refuse this call by an SCP, or None."""
        who = self.caller(access_key)
        if who is None or org.org is None:
            return None
        account, role = who
        if account == org.org.master_account_id:
            return None  # SCPs never apply to the management account
        levels = levels_for(org, account)
        if levels is None:
            return None  # not a member of this organization
        call = scp.Call(f"{_PREFIX.get(service, service)}:{action}", role, account, region)
        why = scp.refusal(levels, call)
        if why is not None:
            self.refused += 1
        return why


def levels_for(org: Any, account_id: str) -> list[scp.Level] | None:
    """The root, each OU down to the account, and the account, with their SCPs."""
    account = next((a for a in org.accounts if a.id == account_id), None)
    if account is None:
        return None
    chain: list[Any] = [account]
    parent = account.parent_id
    ous = {ou.id: ou for ou in org.ou}
    while parent in ous:
        chain.append(ous[parent])
        parent = getattr(ous[parent], "parent_id", None)
    root = chain[-1]
    if not any(
        t.get("Type") == "SERVICE_CONTROL_POLICY" and t.get("Status") == "ENABLED"
        for t in getattr(root, "policy_types", [])
    ):
        return None  # AWS applies SCPs only once the root has the policy type enabled
    levels = []
    for target in reversed(chain):
        policies = [
            (p.name, p.content or "")
            for p in target.attached_policies
            if p.type == "SERVICE_CONTROL_POLICY"
        ]
        kind = type(target).__name__.removeprefix("Fake")
        levels.append(scp.Level(f"{kind} {target.id}", policies))
    return levels


def role_refusal(org: Any, account_id: str, role_name: str, action: str) -> str | None:
    """Why an SCP stops a role of a member account (one AWS assumes on the engine's behalf,
    as StackSets and Control Tower do) from ``action``, or None."""
    if org.org is None or account_id == org.org.master_account_id:
        return None
    levels = levels_for(org, account_id)
    if levels is None:
        return None
    role = f"arn:aws:iam::{account_id}:role/{role_name}"
    return scp.refusal(levels, scp.Call(action, role, account_id))
