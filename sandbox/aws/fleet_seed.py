"""A large fleet made inside the sandbox at once (``POST /_sandbox/fleet``), for the fleet
benchmark: 10,000 accounts cannot be made through the API as an organization that has run for
years made them (CreateAccount takes minutes on AWS and a fifth of a second here, one at a time
per caller), and what is measured is the engine with them under management, not their making.

The accounts are what Organizations' own CreateAccount would have left (its execution role in
each, moto's account model) in the OU asked for, enrolled in Control Tower through that OU's
registered baseline when asked, as an account enrolled years ago is. Nothing here is reachable
through an AWS API.

An account's IAM (its execution role) is made when something first looks at the account's IAM,
not at once: moto makes every account's copy of the AWS-managed policy catalogue with it, about
60 ms and a thousand objects an account, which for 10,000 accounts is ten minutes and gigabytes
spent on accounts nothing touches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import moto.iam
from moto.iam import models as iam_models

from sandbox.aws.controltower import ControlTowerEmulator, EmulatorError
from sandbox.aws.realism import _ORIGINAL_CREATE

MAX_FLEET = 20_000
_deferred_roles: dict[str, tuple[str, str]] = {}  # account -> (role name, trust policy)
_original_iam_init = iam_models.IAMBackend.__init__


def _iam_init(self: Any, region_name: str, account_id: str) -> None:
    _original_iam_init(self, region_name, account_id)
    deferred = _deferred_roles.pop(account_id, None)
    if deferred is not None:
        self.create_role(
            role_name=deferred[0],
            assume_role_policy_document=deferred[1],
            path="",
            permissions_boundary=None,
            description="",
            tags=[],
            max_session_duration="3600",
        )


class _DeferredIam:
    """Stands in for moto's IAM backends while the fleet's accounts are made (moto's account
    model asks for them by ``from moto.iam import iam_backends`` as it is made)."""

    def __init__(self, account_id: str = "") -> None:
        self.account_id = account_id

    def __getitem__(self, key: str) -> _DeferredIam:
        return _DeferredIam(key) if not self.account_id else self

    def create_role(self, role_name: str, assume_role_policy_document: str, **_: Any) -> None:
        _deferred_roles[self.account_id] = (role_name, assume_role_policy_document)


@contextlib.contextmanager
def _iam_deferred() -> Iterator[None]:
    """Called under the sandbox's Organizations lock: no other account is made meanwhile."""
    iam_models.IAMBackend.__init__ = _iam_init  # type: ignore[method-assign]
    package: Any = moto.iam
    real = package.iam_backends
    package.iam_backends = _DeferredIam()
    try:
        yield
    finally:
        package.iam_backends = real


def ou_by_path(org: Any, path: str) -> str:
    """The OU's id from its path of names ("Bench/Fleet")."""
    parent = org.org.root_id
    for name in path.split("/"):
        found = [ou for ou in org.ou if ou.parent_id == parent and ou.name == name]
        if not found:
            raise EmulatorError("ValidationException", f"no OU {name!r} on the path {path!r}")
        parent = found[0].id
    return str(parent)


def seed_fleet(
    controltower: ControlTowerEmulator, path: str, count: int, prefix: str, enrolled: bool
) -> list[str]:
    """``count`` accounts named ``{prefix}-00000``... in the OU at ``path``."""
    if not 1 <= count <= MAX_FLEET:
        raise EmulatorError("ValidationException", f"count must be between 1 and {MAX_FLEET}")
    org = controltower.org()
    ou_id = ou_by_path(org, path)
    if enrolled and not controltower.is_registered(ou_id):
        raise EmulatorError("ValidationException", f"{path} is not registered with Control Tower")
    names = [f"{prefix}-{i:05d}" for i in range(count)]
    taken = {a.email.lower() for a in org.accounts} & {f"{n}@example.com" for n in names}
    if taken:  # refused before any is made: a fleet is made whole or not at all
        raise EmulatorError("ValidationException", f"{min(taken)} exists (seeded twice?)")
    made = []
    with _iam_deferred():
        for name in names:
            _ORIGINAL_CREATE(org, AccountName=name, Email=f"{name}@example.com")
            account = org.accounts[-1]
            account.parent_id = ou_id
            made.append(account)
    if enrolled:
        controltower.seed_enrollments(ou_id, [a.arn for a in made])
    return [str(a.id) for a in made]
