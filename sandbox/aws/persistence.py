"""Keep the sandbox AWS across restarts of the embedded stack.

moto holds everything in memory; without this a second ``make run`` would show completed requests
whose accounts no longer exist. The backends and the realism layer are pickled together (one
``dumps`` keeps their shared references) when the server stops, and restored before it serves.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

from moto.backends import get_backend

log = logging.getLogger("sandbox.persistence")

# The services the engine and the sandbox's emulators use.
SERVICES = (
    "organizations",
    "iam",
    "sts",
    "cloudformation",
    "ssm",
    "ec2",
    "servicecatalog",
    "sso-admin",
    "identitystore",
    "budgets",
    "account",
)


def save(path: Path, extra: dict[str, Any]) -> bool:
    """Pickle each service's backends; one that cannot be pickled is left out, with a warning
    (moto's SSM backend holds a lambda: its parameters are re-seeded on start)."""
    backends: dict[str, Any] = {}
    for service in SERVICES:
        state = dict(get_backend(service))  # type: ignore[call-overload]
        try:
            pickle.dumps(state)
        except Exception as err:
            log.warning("sandbox %s state not saved: %s", service, err)
            continue
        backends[service] = state
    try:
        blob = pickle.dumps({"backends": backends, "extra": extra})
    except Exception as err:  # shared references into a skipped service, say
        log.warning("sandbox state not saved: %s", err)
        return False
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    return True


def load(path: Path) -> dict[str, Any] | None:
    """Restore the backends in place; return the extra state saved with them."""
    if not path.exists():
        return None
    try:
        state = pickle.loads(path.read_bytes())
    except Exception as err:
        log.warning("sandbox state in %s unreadable, starting afresh: %s", path, err)
        return None
    for service, accounts in state["backends"].items():
        backend = get_backend(service)
        backend.clear()
        backend.update(accounts)
    extra: dict[str, Any] = state["extra"]
    return extra


def save_organizations(path: Path, extra: dict[str, Any]) -> None:
    """The Organizations backend alone (with the realism layer's creations and closures): small,
    so it is written whole after every call that changed it, before that call is answered.
    AWS never forgets an account it answered for; a sandbox killed at any moment, or whose
    full save is cut short on the way out, must not either."""
    blob = pickle.dumps({"organizations": dict(get_backend("organizations")), "extra": extra})
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        out.write(blob)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def load_organizations(path: Path) -> dict[str, Any] | None:
    """Restore the Organizations backend from its own file (newer than any full save, or as
    new), and give each restored member account its IAM backend and execution role when the
    full save had none for it (the account was created after it); return the extra state."""
    if not path.exists():
        return None
    try:
        state = pickle.loads(path.read_bytes())
    except Exception as err:
        log.warning("sandbox organizations state in %s unreadable: %s", path, err)
        return None
    backend = get_backend("organizations")
    backend.clear()
    backend.update(state["organizations"])
    iam = get_backend("iam")
    for org_backend in state["organizations"].values():
        for region_backend in org_backend.values():
            org = region_backend.org
            if org is None:
                continue
            for account in region_backend.accounts:
                if account.id != org.master_account_id and account.id not in iam:
                    _give_execution_role(account.id, org.master_account_id)
    extra: dict[str, Any] = state["extra"]
    return extra


def _give_execution_role(account_id: str, management: str) -> None:
    """What CreateAccount gives every new member account (moto does it at creation)."""
    from moto.iam.exceptions import EntityAlreadyExists
    from moto.iam.models import iam_backends

    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{management}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    with contextlib.suppress(EntityAlreadyExists):
        iam_backends[account_id]["global"].create_role(
            role_name="OrganizationAccountAccessRole",
            assume_role_policy_document=json.dumps(trust),
            path="",
            permissions_boundary=None,
            description="",
            tags=[],
            max_session_duration="3600",
        )


def give_stack_set_roles() -> int:
    """Every account holding a self-managed StackSet's instances has its execution role, as on
    AWS (where the instances could not exist otherwise): a sandbox saved before the sandbox
    checked for the role gets it back; return how many were given."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.iam.models import iam_backends

    given = 0
    for account_backends in list(cloudformation_backends.values()):
        for backend in list(account_backends.values()):
            for stack_set in list(backend.stacksets.values()):
                if getattr(stack_set, "permission_model", "SELF_MANAGED") != "SELF_MANAGED":
                    continue
                role = stack_set.execution_role_name
                for instance in list(stack_set.stack_instances):
                    iam = iam_backends[instance.account_id]["global"]
                    if any(r.name == role for r in iam.roles.values()):
                        continue
                    with contextlib.suppress(Exception):
                        iam.create_role(
                            role_name=role,
                            assume_role_policy_document="{}",
                            path="",
                            permissions_boundary=None,
                            description="",
                            tags=[],
                            max_session_duration="3600",
                        )
                        given += 1
    return given
