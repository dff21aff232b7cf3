"""The landing zone: which OUs exist, who may vend into them and what each implies.

It is policy, so it is a reviewed YAML file rather than environment variables. The API checks
requests against it; the workflow never reads it (a request carries a snapshot of its OU's
policy, so a later edit of the file cannot change a running request's history).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, field_validator, model_validator

from common.account_settings import OPT_IN_REGIONS, SettingsPolicy
from common.lease_policy import LeaseTemplate, PoolSpec


class Environment(StrEnum):
    prod = "prod"
    staging = "staging"
    dev = "dev"
    sandbox = "sandbox"


class WorkloadSecurityRequirement(StrEnum):
    required = "required"
    optional = "optional"
    off = "off"


class EnrollmentStrategy(StrEnum):
    """How an account joins Control Tower (see README, "Control Tower enrollment")."""

    account_factory = "account_factory"  # Service Catalog ProvisionProduct, one account at a time
    baseline_reset = "baseline_reset"  # ResetEnabledBaseline on the OU: an OU operation
    auto_enroll = "auto_enroll"  # the landing zone enrolls accounts moved into a registered OU
    none = "none"  # not governed by Control Tower


class PermissionModel(StrEnum):
    SELF_MANAGED = "SELF_MANAGED"
    SERVICE_MANAGED = "SERVICE_MANAGED"


class StackSetBaseline(BaseModel):
    """A baseline StackSet that accounts of some OUs get (it must exist in the organization)."""

    stack_set_name: str
    regions: list[str] = Field(min_length=1)
    permission_model: PermissionModel = PermissionModel.SELF_MANAGED
    call_as: str = "SELF"  # SELF or DELEGATED_ADMIN
    parameters: dict[str, str] = Field(default_factory=dict)
    # The template the sandbox uses to create the StackSet (relative to the landing-zone file).
    template: str | None = None


class StackSetPreferences(BaseModel):
    failure_tolerance_count: int = Field(default=0, ge=0)
    max_concurrent_count: int = Field(default=1, ge=1)
    region_concurrency_type: str = "PARALLEL"  # or SEQUENTIAL
    max_parallel_stack_sets: int = Field(default=3, ge=1, le=20)


class ControlTowerSettings(BaseModel):
    enrollment: EnrollmentStrategy = EnrollmentStrategy.baseline_reset
    enrollment_timeout: timedelta = timedelta(hours=2)
    account_factory_product: str = "AWS Control Tower Account Factory"


class Guardrails(BaseModel):
    """What an OU's accounts are held to, as the landing zone declares it; ``vend doctor``
    checks that each is in force on the OU, and requesters see them on the form.

    ``controls`` are Control Tower control identifiers (the part after ``control/`` in the
    control's ARN, e.g. ``AWS-GR_RESTRICT_ROOT_USER``), mandatory or elective, preventive or
    detective; ``service_control_policies`` are SCP names attached to the OU itself."""

    controls: list[str] = Field(default_factory=list)
    service_control_policies: list[str] = Field(default_factory=list)


class AdoptionSource(BaseModel):
    """An OU an account may be adopted out of, with the approvals leaving it takes. The Root is
    always one (no approvals of its own); an OU closed for vending never is unless the landing
    zone lists it in ``adoptable_from``: what it holds (Audit, Log Archive) is not the engine's
    to move."""

    path: str
    approvals_required: int = 0
    approval_window_seconds: float | None = None


class OrganizationalUnitPolicy(BaseModel):
    path: str
    open_for_vending: bool = True
    environments: list[Environment] = Field(default_factory=list)
    approvals_required: int = Field(default=1, ge=0, le=10)
    approval_window: timedelta = timedelta(days=7)
    baselines: list[str] = Field(default_factory=list)
    baseline_parameters: dict[str, dict[str, str]] = Field(default_factory=dict)
    control_tower_enrollment: EnrollmentStrategy | None = None  # overrides the landing zone's
    workload_security: WorkloadSecurityRequirement = WorkloadSecurityRequirement.optional
    guardrails: Guardrails = Field(default_factory=Guardrails)
    # Approvals a decommission of one of its accounts needs; unset: its approvals_required, and
    # at least one (closing an account is never automatic).
    decommission_approvals: int | None = Field(default=None, ge=1, le=10)
    # The account settings its vends apply; each key given replaces the landing zone's default.
    settings: SettingsPolicy | None = None

    def decommission_approvals_required(self) -> int:
        if self.decommission_approvals is not None:
            return self.decommission_approvals
        return max(1, self.approvals_required)

    @field_validator("path")
    @classmethod
    def _normalise_path(cls, value: str) -> str:
        parts = [p.strip() for p in value.strip("/").split("/")]
        if not all(parts):
            raise ValueError(f"OU path {value!r} has an empty segment")
        return "/".join(parts)


class LandingZone(BaseModel):
    allowed_email_domains: list[str] = Field(min_length=1)
    organizational_units: list[OrganizationalUnitPolicy]
    control_tower: ControlTowerSettings = Field(default_factory=ControlTowerSettings)
    baselines: dict[str, StackSetBaseline] = Field(default_factory=dict)
    stack_set_preferences: StackSetPreferences = Field(default_factory=StackSetPreferences)
    # Steps an operator may skip (with a reason) when they fail; the others must succeed.
    # Unset: those the step registry marks skippable (common/step_registry.py: billing).
    skippable_steps: list[str] | None = None
    # Where a cancelled request's account goes, and whether it is then closed (CloseAccount).
    suspended_ou: str = "Suspended"
    close_cancelled_accounts: bool = False
    # What holds the suspended OU shut (typically a deny-all SCP); checked by `vend doctor`.
    suspended_ou_guardrails: Guardrails = Field(default_factory=Guardrails)
    # Account settings every OU applies unless it says otherwise (see common/account_settings).
    settings: SettingsPolicy = Field(default_factory=SettingsPolicy)
    # The root email made when a request leaves account_email out, e.g. "aws+{name}@example.com"
    # ({name}: the account name); unset: every request must give one.
    email_template: str | None = None
    # OUs outside the landing zone's open ones that accounts may be adopted out of (e.g. a
    # "Legacy" OU of accounts made before the engine). The Root and every OU open for vending
    # always may; an OU closed for vending (Security) only if listed here.
    adoptable_from: list[str] = Field(default_factory=list)
    # Closures the organization may make in a rolling 30 days, when AWS granted other than its
    # rule (the higher of 250 or 20 % of the member accounts, at most 1,000); unset: the rule.
    close_quota: int | None = Field(default=None, ge=1, le=100_000)
    # Sandbox leases (docs/leases.md): the OUs whose accounts are lent out from a pool, and
    # the templates a lease is asked for by.
    pools: list[PoolSpec] = Field(default_factory=list)
    lease_templates: list[LeaseTemplate] = Field(default_factory=list)

    def pool_for(self, organizational_unit: str) -> PoolSpec | None:
        wanted = organizational_unit.strip().strip("/")
        return next((p for p in self.pools if p.organizational_unit == wanted), None)

    def lease_template(self, name: str) -> LeaseTemplate | None:
        return next((t for t in self.lease_templates if t.name == name), None)

    def adoption_sources(self) -> list[AdoptionSource]:
        """Where an adopted account may come from, and what leaving each takes."""
        listed = {p.strip().strip("/") for p in self.adoptable_from}
        found = []
        for ou in self.organizational_units:
            if ou.open_for_vending or ou.path in listed:
                found.append(
                    AdoptionSource(
                        path=ou.path,
                        approvals_required=ou.approvals_required,
                        approval_window_seconds=ou.approval_window.total_seconds(),
                    )
                )
        known = {ou.path for ou in self.organizational_units}
        found += [AdoptionSource(path=p) for p in sorted(listed - known)]
        return found

    @model_validator(mode="after")
    def _consistent(self) -> LandingZone:
        paths = [ou.path for ou in self.organizational_units]
        dupes = {p for p in paths if paths.count(p) > 1}
        if dupes:
            raise ValueError(f"OU paths listed twice: {sorted(dupes)}")
        for ou in self.organizational_units:
            unknown = [
                b for b in [*ou.baselines, *ou.baseline_parameters] if b not in self.baselines
            ]
            if unknown:
                raise ValueError(f"OU {ou.path} names baselines not in the catalog: {unknown}")
            regions = [r for r in self.settings_for(ou).opt_in_regions if r not in OPT_IN_REGIONS]
            if regions:
                raise ValueError(f"OU {ou.path}: not opt-in regions: {regions}")
        self._leases_consistent()
        if self.email_template is not None:
            made = self.email_template.replace("{name}", "x")
            if "{name}" not in self.email_template or not self.email_domain_allowed(made):
                raise ValueError(
                    "email_template must contain {name} and use an allowed email domain"
                )
        return self

    def _leases_consistent(self) -> None:
        """A pool is an OU open for vending with no approval (its keeper vends unattended);
        a template leases from a pool."""
        seen: set[str] = set()
        if self.pools and self.email_template is None:
            raise ValueError("pools need email_template: the keeper names its accounts' emails")
        for pool in self.pools:
            pool.organizational_unit = pool.organizational_unit.strip().strip("/")
            ou = self.find(pool.organizational_unit)
            if ou is None or not ou.open_for_vending:
                raise ValueError(f"pool {pool.organizational_unit}: not an OU open for vending")
            if ou.approvals_required:
                raise ValueError(
                    f"pool {pool.organizational_unit}: its OU needs approvals to vend, so the "
                    "keeper could not refill it unattended"
                )
            if pool.organizational_unit in seen:
                raise ValueError(f"two pools for {pool.organizational_unit}")
            seen.add(pool.organizational_unit)
        names = [t.name for t in self.lease_templates]
        if len(names) != len(set(names)):
            raise ValueError("lease template names listed twice")
        for template in self.lease_templates:
            template.organizational_unit = template.organizational_unit.strip().strip("/")
            if template.organizational_unit not in seen:
                raise ValueError(
                    f"lease template {template.name}: no pool for {template.organizational_unit}"
                )
            for name in template.baselines:
                baseline = self.baselines.get(name)
                if baseline is None:
                    raise ValueError(f"lease template {template.name}: no baseline {name}")
                if baseline.permission_model != PermissionModel.SELF_MANAGED:
                    raise ValueError(
                        f"lease template {template.name}: {name} is not self-managed (a lease "
                        "deploys to its account alone)"
                    )

    def settings_for(self, ou: OrganizationalUnitPolicy) -> SettingsPolicy:
        """The landing zone's settings, with the keys the OU gives replacing them."""
        if ou.settings is None:
            return self.settings
        given = {key: getattr(ou.settings, key) for key in ou.settings.model_fields_set}
        return self.settings.model_copy(update=given)

    def enrollment_for(self, ou: OrganizationalUnitPolicy) -> EnrollmentStrategy:
        return ou.control_tower_enrollment or self.control_tower.enrollment

    def baselines_for(self, ou: OrganizationalUnitPolicy) -> list[StackSetBaseline]:
        """The OU's baselines with its parameter overrides applied."""
        out = []
        for name in ou.baselines:
            spec = self.baselines[name]
            params = {**spec.parameters, **ou.baseline_parameters.get(name, {})}
            out.append(spec.model_copy(update={"parameters": params}))
        return out

    def find(self, path: str) -> OrganizationalUnitPolicy | None:
        wanted = path.strip().strip("/")
        return next((ou for ou in self.organizational_units if ou.path == wanted), None)

    def email_domain_allowed(self, email: str) -> bool:
        domain = email.rsplit("@", 1)[-1].lower()
        return any(
            domain == allowed.lower() or domain.endswith("." + allowed.lower())
            for allowed in self.allowed_email_domains
        )

    def all_paths(self) -> list[str]:
        """Every OU path including implied parents, parents first (what the sandbox seeds)."""
        out: list[str] = []
        for ou in self.organizational_units:
            parts = ou.path.split("/")
            for i in range(1, len(parts) + 1):
                prefix = "/".join(parts[:i])
                if prefix not in out:
                    out.append(prefix)
        return out


def load_landing_zone(path: Path) -> LandingZone:
    with path.open(encoding="utf-8") as fh:
        return LandingZone.model_validate(yaml.safe_load(fh))


def template_path(landing_zone_file: Path, baseline: StackSetBaseline) -> Path | None:
    if baseline.template is None:
        return None
    return (landing_zone_file.parent / baseline.template).resolve()
