"""Service control policies, evaluated as AWS Organizations evaluates them for one call.

Why it is here and not in the sandbox: `vend doctor` must know, before the first decommission,
whether the suspended OU's SCPs would stop the engine's own roles (the in-account steps that run
after quarantine), and the sandbox must refuse exactly what AWS refuses. One evaluation serves
both, so the doctor's promise and the sandbox's behaviour cannot drift apart.

What AWS does (the Organizations user guide, "SCP evaluation"): a call by a principal of a
member account is allowed only if every level from the root down to the account (the root,
each OU on the path, the account itself) has an attached SCP that allows it, and no SCP at any
level denies it. SCPs do not apply to the management account or to service-linked roles.

What is modelled: ``Effect``, ``Action``/``NotAction`` with wildcards, and conditions on
``aws:PrincipalArn``, ``aws:PrincipalAccount`` and ``aws:RequestedRegion`` with the String and
Arn operators (``...IfExists`` too). Whatever is not modelled (a resource ARN, another key or
operator) is read the strict way: a Deny applies, an Allow does not, so an unmodelled policy can
only refuse more than AWS would, never less.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_KEYS = ("aws:principalarn", "aws:principalaccount", "aws:requestedregion")
_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
_LIKE = {"StringLike", "StringNotLike", "ArnLike", "ArnNotLike", "ArnEquals", "ArnNotEquals"}
_OPERATORS = {"StringEquals", "StringEqualsIgnoreCase", *_NEGATED, *_LIKE}


@dataclass(frozen=True)
class Call:
    """One call as an SCP sees it: ``action`` as ``service:Operation``, ``principal_arn`` the
    role's ARN (not the session's), the member ``account`` it is made in."""

    action: str
    principal_arn: str
    account: str
    region: str = ""

    def context(self) -> dict[str, str]:
        return {
            "aws:principalarn": self.principal_arn,
            "aws:principalaccount": self.account,
            "aws:requestedregion": self.region,
        }


@dataclass(frozen=True)
class Level:
    """One target on the path from the root to the account, and the SCPs attached to it."""

    name: str
    policies: Sequence[tuple[str, str]]  # (policy name, its JSON document)


def exempt(principal_arn: str) -> bool:
    """Service-linked roles are outside SCPs (AWS: "SCPs do not affect service-linked roles")."""
    return ":role/aws-service-role/" in principal_arn


def refusal(levels: Sequence[Level], call: Call) -> str | None:
    """Why AWS would refuse ``call`` under these levels, or None when it would allow it."""
    if exempt(call.principal_arn):
        return None
    context = call.context()
    for level in levels:
        for name, document in level.policies:
            if any(
                _applies(s, call.action, context, deny=True) for s in _statements(document, "Deny")
            ):
                return (
                    f"{call.principal_arn} is not authorized to perform: {call.action} "
                    f"with an explicit deny in a service control policy ({name} on {level.name})"
                )
    for level in levels:
        allowed = any(
            _applies(s, call.action, context, deny=False)
            for _, document in level.policies
            for s in _statements(document, "Allow")
        )
        if not allowed:
            return (
                f"{call.principal_arn} is not authorized to perform: {call.action} "
                f"because no service control policy on {level.name} allows it"
            )
    return None


def _statements(document: str, effect: str) -> list[Mapping[str, Any]]:
    try:
        parsed = json.loads(document)
    except ValueError:
        return []
    statements = parsed.get("Statement", []) if isinstance(parsed, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if isinstance(s, dict) and s.get("Effect") == effect]


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _matches(action: str, patterns: list[str]) -> bool:
    action = action.lower()
    return any(fnmatch.fnmatchcase(action, p.lower()) for p in patterns)


def _applies(
    statement: Mapping[str, Any], action: str, context: dict[str, str], *, deny: bool
) -> bool:
    if "NotAction" in statement:
        if _matches(action, _listed(statement["NotAction"])):
            return False
    elif not _matches(action, _listed(statement.get("Action"))):
        return False
    resources = _listed(statement.get("Resource", "*"))
    if "NotResource" in statement or resources != ["*"]:
        return deny  # a resource the sandbox cannot see: the strict reading
    return _conditions_hold(statement.get("Condition") or {}, context, deny=deny)


def _conditions_hold(conditions: Mapping[str, Any], context: dict[str, str], *, deny: bool) -> bool:
    for operator, tests in conditions.items():
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        if base not in _OPERATORS or not isinstance(tests, dict):
            if not deny:
                return False
            continue  # unmodelled: a Deny is read as applying
        for key, wanted in tests.items():
            key = key.lower()
            if key not in _KEYS:
                if not deny:
                    return False
                continue
            actual = context.get(key, "")
            if not actual:
                if if_exists:
                    continue
                if base in _NEGATED:
                    continue  # AWS: a negated operator holds when the key is absent
                return False
            if not _test(base, actual, _listed(wanted)):
                return False
    return True


def _test(operator: str, actual: str, wanted: list[str]) -> bool:
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() in (w.lower() for w in wanted)
    if operator in ("StringEquals", "StringNotEquals"):
        hit = actual in wanted
    else:
        hit = any(fnmatch.fnmatchcase(actual, w) for w in wanted)
    return not hit if operator in _NEGATED else hit


def quarantine_policy(exempt_roles: Sequence[str]) -> str:
    """The suspended OU's SCP the docs recommend: deny everything to everyone but the roles the
    decommission still acts through after quarantine (as Control Tower's own SCPs exempt
    ``AWSControlTowerExecution``)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "QuarantineAllButTheVendingEngine",
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {
                        "ArnNotLike": {
                            "aws:PrincipalArn": [
                                f"arn:aws:iam::*:role/{name}" for name in sorted(set(exempt_roles))
                            ]
                        }
                    },
                }
            ],
        },
        separators=(",", ":"),
    )
