"""Checks a request against the landing zone before anything starts.

Field-level rules live on the pydantic model; these are the rules that need configuration
(which OUs exist and are open, which environments fit them, which email domains are allowed).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel

from common.account_settings import EffectiveSettings, SettingsProblem, resolve
from common.landing_zone import (
    LandingZone,
    OrganizationalUnitPolicy,
    WorkloadSecurityRequirement,
)
from common.models import AccountRequest, OuSnapshot
from common.step_registry import ALL_STEP_NAMES, SKIPPABLE_BY_DEFAULT


class IntakeRefused(ValueError):
    """A request the landing zone refuses, field by field (the API answers it as a 422)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def check_against_landing_zone(
    body: AccountRequest, lz: LandingZone, *, email_domain: bool = True, settings: bool = True
) -> OuSnapshot:
    """``email_domain``: off for an adoption, whose account's email was chosen before the
    engine's rules applied to it. ``settings``: off for an update, which does not apply the
    vend-time settings again."""
    errors: list[dict[str, Any]] = []
    ou: OrganizationalUnitPolicy | None = lz.find(body.organizational_unit)
    if ou is None:
        errors.append(
            {
                "loc": ["body", "organizational_unit"],
                "msg": f"unknown OU {body.organizational_unit!r}; known: "
                + ", ".join(o.path for o in lz.organizational_units if o.open_for_vending),
            }
        )
    elif not ou.open_for_vending:
        errors.append(
            {"loc": ["body", "organizational_unit"], "msg": f"OU {ou.path} is closed for vending"}
        )
    elif body.environment not in ou.environments:
        allowed = ", ".join(e.value for e in ou.environments)
        errors.append(
            {
                "loc": ["body", "environment"],
                "msg": f"environment {body.environment.value} does not fit OU {ou.path} "
                f"(allowed: {allowed})",
            }
        )
    # Ownership rights follow owner_email (and mail reaches the contacts): both are held to the
    # organization's own domains, so nobody names an outside address as an account's owner.
    if not lz.email_domain_allowed(body.owner_email):
        errors.append(
            {
                "loc": ["body", "owner_email"],
                "msg": "owner email domain not allowed; use one of "
                + ", ".join(lz.allowed_email_domains),
            }
        )
    contacts = body.alternate_contacts
    for kind in ("billing", "operations", "security"):
        contact = getattr(contacts, kind) if contacts is not None else None
        if contact is not None and not lz.email_domain_allowed(contact.email):
            errors.append(
                {
                    "loc": ["body", "alternate_contacts", kind, "email"],
                    "msg": "contact email domain not allowed; use one of "
                    + ", ".join(lz.allowed_email_domains),
                }
            )
    if email_domain and not lz.email_domain_allowed(body.account_email):
        errors.append(
            {
                "loc": ["body", "account_email"],
                "msg": "email domain not allowed; use one of "
                + ", ".join(lz.allowed_email_domains),
            }
        )
    if (
        ou is not None
        and ou.workload_security == WorkloadSecurityRequirement.required
        and not body.workload_security.enabled
    ):
        errors.append(
            {
                "loc": ["body", "workload_security", "enabled"],
                "msg": f"OU {ou.path} requires Workload Security protection",
            }
        )
    if errors or ou is None:
        raise IntakeRefused(errors)
    snapshot = ou_snapshot(ou, lz)
    if settings:
        settings_of(body, snapshot)
    return snapshot


def skippable_steps(lz: LandingZone) -> list[str]:
    """The landing zone's, or the registry's default; a name of no step is a mistake in the
    file, refused rather than ignored."""
    named = list(SKIPPABLE_BY_DEFAULT) if lz.skippable_steps is None else lz.skippable_steps
    unknown = sorted(set(named) - set(ALL_STEP_NAMES))
    if unknown:
        raise ValueError(f"skippable_steps names no step: {unknown}; steps: {ALL_STEP_NAMES}")
    return named


def ou_snapshot(ou: OrganizationalUnitPolicy, lz: LandingZone) -> OuSnapshot:
    """The OU's policy as a request carries it (a later edit of the file changes no history)."""
    return OuSnapshot(
        path=ou.path,
        approvals_required=ou.approvals_required,
        approval_window_seconds=ou.approval_window.total_seconds(),
        baselines=ou.baselines,
        workload_security=ou.workload_security,
        enrollment=lz.enrollment_for(ou),
        enrollment_timeout_seconds=lz.control_tower.enrollment_timeout.total_seconds(),
        account_factory_product=lz.control_tower.account_factory_product,
        baseline_stack_sets=lz.baselines_for(ou),
        stack_set_preferences=lz.stack_set_preferences,
        skippable_steps=skippable_steps(lz),
        suspended_ou=lz.suspended_ou,
        close_cancelled_accounts=lz.close_cancelled_accounts,
        settings=lz.settings_for(ou),
    )


def settings_of(body: AccountRequest, ou: OuSnapshot) -> EffectiveSettings:
    """The account settings this request gets in its OU (422 with the field when they do not
    fit the OU's bounds)."""
    try:
        return resolve(
            ou.settings,
            account_name=body.account_name,
            owner_email=body.owner_email,
            access=body.access,
            budget=body.budget,
            contacts=body.alternate_contacts,
            ou_path=ou.path,
        )
    except SettingsProblem as err:
        raise IntakeRefused([{"loc": ["body", *err.loc], "msg": err.msg}]) from err


def body_fingerprint(body: BaseModel) -> str:
    """Same request (or lease) body, same fingerprint: what an Idempotency-Key replay is
    compared by."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def protects(body: AccountRequest, ou: OuSnapshot) -> bool:
    """Whether the account gets Workload Security: the OU requires it, or allows it and the
    request asks for it."""
    if ou.workload_security == WorkloadSecurityRequirement.required:
        return True
    if ou.workload_security == WorkloadSecurityRequirement.off:
        return False
    return body.workload_security.enabled
