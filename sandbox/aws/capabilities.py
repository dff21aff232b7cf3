"""CloudFormation's capabilities: a template that makes IAM resources needs the caller to say so.

AWS refuses ``CreateStackSet``/``UpdateStackSet`` (and stacks) whose template has IAM resources
unless ``Capabilities`` lists ``CAPABILITY_IAM``, or ``CAPABILITY_NAMED_IAM`` when any of them
is given a name, with ``InsufficientCapabilitiesException`` ("Requires capabilities :
[CAPABILITY_NAMED_IAM]"). moto ignores ``Capabilities``; the sandbox does not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import yaml

CHECKED = frozenset({"CreateStackSet", "UpdateStackSet", "CreateStack", "UpdateStack"})
_NAMES = ("RoleName", "UserName", "GroupName", "ManagedPolicyName", "InstanceProfileName")


class _Loader(yaml.SafeLoader):
    """Short-form intrinsics (!Ref, !Sub, !GetAtt) read as nothing: only the structure counts."""


_Loader.add_multi_constructor("!", lambda _loader, _suffix, _node: None)


def required(template: str) -> str | None:
    """The capability the template needs (None: none, or it cannot be read)."""
    try:
        doc = yaml.load(template, Loader=_Loader)  # a SafeLoader: no object construction
    except yaml.YAMLError:
        return None
    resources = doc.get("Resources") if isinstance(doc, dict) else None
    if not isinstance(resources, dict):
        return None
    needed = None
    for resource in resources.values():
        if not isinstance(resource, dict) or not str(resource.get("Type", "")).startswith(
            "AWS::IAM::"
        ):
            continue
        needed = "CAPABILITY_IAM"
        properties = resource.get("Properties") or {}
        if isinstance(properties, dict) and any(n in properties for n in _NAMES):
            return "CAPABILITY_NAMED_IAM"
    return needed


def refusal(action: str, body: bytes) -> str | None:
    """The message AWS answers with, when the call does not acknowledge what it needs."""
    if action not in CHECKED:
        return None
    form: dict[str, Any] = parse_qs(body.decode("utf-8", "replace"))
    template = (form.get("TemplateBody") or [""])[0]
    if not template:
        return None  # the template stays (UsePreviousTemplate) or comes from a URL
    needed = required(template)
    given = {v[0] for k, v in form.items() if k.startswith("Capabilities.member.")}
    if (
        needed is None
        or needed in given
        or (needed == "CAPABILITY_IAM" and "CAPABILITY_NAMED_IAM" in given)
    ):
        return None
    return f"Requires capabilities : [{needed}]"
