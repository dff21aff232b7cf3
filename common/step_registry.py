"""Every step a request can run, declared once: its name, what the preview says it touches, its
typical duration on AWS, whether an operator may skip it by default; and, per kind of request,
which steps it runs, in what order, each with the rule that skips it.

This is the half of a step every process reads (the API previews and names steps; it never
loads an activity). The other half, what a step runs and how a cancel undoes it, is the
workflow's: ``workflows/steps/tables.py`` binds an implementation to each ``Step`` here (by the
object, never by its name) and refuses to load if a kind's table misses one or adds one. The
worker registers the activities those implementations declare. To add a step: declare it here,
put it in its kinds' tables, write its activity and bind it there.
"""

from __future__ import annotations

from dataclasses import dataclass

from common import step_resources as touches
from common import step_rules as rules
from common.models import RequestKind
from common.step_resources import Resources
from common.step_rules import Rule


@dataclass(frozen=True)
class Step:
    name: str
    touches: Resources  # what it creates, changes or removes, for the preview
    typical_seconds: float = 30.0  # on AWS, for the rough ETA (the sandbox is much faster)
    skippable: bool = False  # an operator may skip it when it fails (landing zone default)
    # What an operator may correct when retrying it (fields of the retry: RetryBody).
    corrects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    """A step in a kind's table, with the rule that skips it for that kind (None: always runs)."""

    step: Step
    skip: Rule | None = None


# ------------------------------------------------------------------ the steps
CREATE_ACCOUNT = Step("create_account", touches.create_account, 180.0, corrects=("account_email",))
VERIFY_ACCESS = Step("verify_access", touches.verify_access)
MOVE_TO_OU = Step("move_to_ou", touches.move_to_ou, corrects=("organizational_unit",))
RENAME_ACCOUNT = Step("rename_account", touches.rename_account)
ENROLL_CONTROL_TOWER = Step("enroll_control_tower", touches.enroll_control_tower, 1800.0)
APPLY_BASELINES = Step("apply_baselines", touches.apply_baselines, 300.0)
ASSIGN_ACCESS = Step("assign_access", touches.assign_access)
CREATE_BUDGET = Step("create_budget", touches.create_budget)
SET_ALTERNATE_CONTACTS = Step("set_alternate_contacts", touches.set_alternate_contacts)
SET_ACCOUNT_ALIAS = Step("set_account_alias", touches.set_account_alias)
ENABLE_REGIONS = Step("enable_regions", touches.enable_regions, 900.0)
DELETE_DEFAULT_VPCS = Step("delete_default_vpcs", touches.delete_default_vpcs, 60.0)
ENROLL_WORKLOAD_SECURITY = Step("enroll_workload_security", touches.enroll_workload_security, 120.0)
REMOVE_WORKLOAD_SECURITY = Step("remove_workload_security", touches.remove_workload_security)
REGISTER_BILLING = Step("register_billing", touches.register_billing, skippable=True)
RETAG = Step("retag", touches.retag)
QUARANTINE = Step("quarantine", touches.quarantine)
END_BILLING = Step("end_billing", touches.end_billing)
REMOVE_ACCESS = Step("remove_access", touches.remove_access)
DELETE_BUDGET = Step("delete_budget", touches.delete_budget)
REMOVE_BASELINES = Step("remove_baselines", touches.remove_baselines, 300.0)
UNMANAGE_CONTROL_TOWER = Step("unmanage_control_tower", touches.unmanage_control_tower)
CLOSE_ACCOUNT = Step("close_account", touches.close_account, 600.0)

# ------------------------------------------------------------------ the tables, in order
# A vend: the account, its place, its governance, its baselines; then the account settings
# (after the baselines, so the account is governed before people get in; default VPCs after
# the regions, whose new regions have one too); then protection and billing, which depend on
# none of them.
VEND: tuple[Entry, ...] = (
    Entry(CREATE_ACCOUNT),
    Entry(MOVE_TO_OU),
    Entry(ENROLL_CONTROL_TOWER, rules.not_governed),
    Entry(APPLY_BASELINES, rules.no_baselines),
    Entry(ASSIGN_ACCESS, rules.no_access),
    Entry(CREATE_BUDGET, rules.no_budget),
    Entry(SET_ALTERNATE_CONTACTS, rules.no_contacts),
    Entry(SET_ACCOUNT_ALIAS, rules.no_alias),
    Entry(ENABLE_REGIONS, rules.no_regions),
    Entry(DELETE_DEFAULT_VPCS, rules.keeps_default_vpcs),
    Entry(ENROLL_WORKLOAD_SECURITY, rules.unprotected),
    Entry(REGISTER_BILLING),
)
# An adoption: nothing is created; the rest is the vend's, once the engine can act in the account.
ADOPT: tuple[Entry, ...] = (Entry(VERIFY_ACCESS), *VEND[1:])
# An update, in vending order; each step runs only when the change needs it.
UPDATE: tuple[Entry, ...] = (
    Entry(MOVE_TO_OU, rules.skip_move),
    Entry(RENAME_ACCOUNT, rules.skip_rename),
    Entry(ENROLL_CONTROL_TOWER, rules.skip_enroll),
    Entry(APPLY_BASELINES, rules.skip_baselines),
    Entry(ENROLL_WORKLOAD_SECURITY, rules.skip_protect),
    Entry(REMOVE_WORKLOAD_SECURITY, rules.skip_unprotect),
    Entry(REGISTER_BILLING, rules.skip_billing),
    Entry(RETAG, rules.skip_retag),
)
# A decommission, in the order of the lifecycle contract: shut the account in, stop paying for
# it, take away what the vend gave it, then close it (the one step nothing can undo).
DECOMMISSION: tuple[Entry, ...] = (
    Entry(QUARANTINE),
    Entry(END_BILLING, rules.no_billing),
    Entry(REMOVE_ACCESS, rules.no_access_given),
    Entry(DELETE_BUDGET, rules.no_budget_given),
    Entry(REMOVE_WORKLOAD_SECURITY, rules.not_enrolled_in_ws),
    Entry(REMOVE_BASELINES, rules.no_baselines),
    Entry(UNMANAGE_CONTROL_TOWER, rules.not_account_factory),
    Entry(CLOSE_ACCOUNT),
)
TABLES: dict[RequestKind, tuple[Entry, ...]] = {
    RequestKind.vend: VEND,
    RequestKind.adopt: ADOPT,
    RequestKind.update: UPDATE,
    RequestKind.decommission: DECOMMISSION,
}

STEPS: dict[str, Step] = {e.step.name: e.step for table in TABLES.values() for e in table}
ALL_STEP_NAMES: tuple[str, ...] = tuple(STEPS)
SKIPPABLE_BY_DEFAULT: tuple[str, ...] = tuple(n for n, s in STEPS.items() if s.skippable)


def step_names(kind: RequestKind) -> tuple[str, ...]:
    """The steps a request of this kind runs, in order."""
    return tuple(entry.step.name for entry in TABLES[kind])


def entry(kind: RequestKind, name: str) -> Entry:
    return next(e for e in TABLES[kind] if e.step.name == name)
