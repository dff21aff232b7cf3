"""The account settings a vend applies besides placement, governance, baselines, protection and
billing: who can sign in (IAM Identity Center), a spending guard (AWS Budgets), the alternate
contacts AWS writes to, the sign-in alias, the opt-in regions, and no default VPCs.

Three layers, each a model here: what the landing zone says per OU (``SettingsPolicy``: which
settings apply, their defaults and bounds), what a request may state (``SettingsRequest``), and
what a request will get (``EffectiveSettings``, resolved once at the API and carried in the
workflow input, so the preview, the steps and a replay all read the same values).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from common.email_address import Email

# Regions AWS leaves disabled until an account enables them (Account API EnableRegion); every
# other region is enabled by default.
OPT_IN_REGIONS: tuple[str, ...] = (
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
)

ContactType = Literal["billing", "operations", "security"]
CONTACT_TYPES: tuple[ContactType, ...] = ("billing", "operations", "security")
Phone = Annotated[str, StringConstraints(pattern=r"^[\s0-9()+-]{1,25}$")]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class Contact(BaseModel):
    """One alternate contact, as the Account API's ``PutAlternateContact`` takes it."""

    model_config = ConfigDict(extra="forbid")
    name: Line
    title: Line
    email: Email
    phone: Phone


class AlternateContacts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    billing: Contact | None = None
    operations: Contact | None = None
    security: Contact | None = None


# ------------------------------------------------------------------ the landing zone's side
class AccessPolicy(BaseModel):
    """IAM Identity Center: the permission sets the request's group and users get."""

    permission_sets: list[str] = Field(min_length=1)
    group_required: bool = True  # a request must name the owner group


class BudgetPolicy(BaseModel):
    """A monthly AWS Budget for the account; amounts in USD."""

    required: bool = True
    default_usd: int | None = Field(default=None, ge=1)
    min_usd: int = Field(default=1, ge=1)
    max_usd: int = Field(default=1_000_000, ge=1)
    alert_thresholds: list[int] = Field(default_factory=lambda: [80, 100])  # % of the amount
    subscribers: list[Email] = Field(default_factory=list)  # beside the owner, e.g. finance

    @model_validator(mode="after")
    def _bounds(self) -> BudgetPolicy:
        if self.min_usd > self.max_usd:
            raise ValueError("budget min_usd is above max_usd")
        if self.default_usd is not None and not self.min_usd <= self.default_usd <= self.max_usd:
            raise ValueError("budget default_usd is outside min_usd..max_usd")
        if not self.alert_thresholds or any(not 1 <= t <= 1000 for t in self.alert_thresholds):
            raise ValueError("budget alert_thresholds: 1 to 1000 (% of the amount)")
        # AWS Budgets: at most 5 notifications a budget, 10 subscribers each (the owner is one).
        if len(set(self.alert_thresholds)) > 5:
            raise ValueError("budget alert_thresholds: at most 5 (AWS Budgets' limit)")
        if len(self.subscribers) > 9:
            raise ValueError("budget subscribers: at most 9 beside the owner (AWS's limit: 10)")
        return self


class SettingsPolicy(BaseModel):
    """What an OU applies to the accounts vended into it (``settings:`` in the landing zone; an
    OU's own block replaces the landing zone's defaults key by key)."""

    access: AccessPolicy | None = None
    budget: BudgetPolicy | None = None
    alternate_contacts: AlternateContacts | None = None  # defaults a request may replace
    account_alias: bool = False  # IAM account alias = the alias prefix + the account name
    alias_prefix: str = ""
    opt_in_regions: list[str] = Field(default_factory=list)
    delete_default_vpcs: bool = False  # in every enabled region, only when empty


# ------------------------------------------------------------------ the request's side
class AccessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group: Line | None = Field(default=None, description="Identity Center group display name")
    users: list[Line] = Field(default_factory=list, max_length=20, description="user names")


class BudgetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    monthly_usd: int = Field(ge=1, le=10_000_000)


# ------------------------------------------------------------------ what the request gets
class EffectiveAccess(BaseModel):
    permission_sets: list[str]
    group: str | None = None
    users: list[str] = Field(default_factory=list)


class EffectiveBudget(BaseModel):
    monthly_usd: int
    alert_thresholds: list[int]
    subscribers: list[str]  # the owner first, then the landing zone's


class EffectiveSettings(BaseModel):
    """Resolved from the OU's policy and the request (``resolve``): every value a step needs."""

    access: EffectiveAccess | None = None
    budget: EffectiveBudget | None = None
    alternate_contacts: dict[str, Contact] = Field(default_factory=dict)  # type -> contact
    account_alias: str | None = None
    opt_in_regions: list[str] = Field(default_factory=list)
    delete_default_vpcs: bool = False


class SettingsProblem(ValueError):
    """A request that does not fit its OU's settings: ``loc`` names the field for the 422."""

    def __init__(self, loc: list[str], msg: str) -> None:
        super().__init__(msg)
        self.loc, self.msg = loc, msg


def resolve(
    policy: SettingsPolicy,
    *,
    account_name: str,
    owner_email: str,
    access: AccessRequest | None,
    budget: BudgetRequest | None,
    contacts: AlternateContacts | None,
    ou_path: str,
) -> EffectiveSettings:
    """The settings a request gets in its OU; raises ``SettingsProblem`` for what does not fit
    (an amount outside the OU's bounds, a required group or budget left out, a setting the OU
    does not apply)."""
    out = EffectiveSettings(
        opt_in_regions=list(policy.opt_in_regions), delete_default_vpcs=policy.delete_default_vpcs
    )
    if policy.access is not None:
        group = access.group if access else None
        users = list(access.users) if access else []
        if policy.access.group_required and not group:
            raise SettingsProblem(
                ["access", "group"], f"OU {ou_path} needs the owner group (Identity Center)"
            )
        out.access = EffectiveAccess(
            permission_sets=list(policy.access.permission_sets), group=group, users=users
        )
    elif access is not None and (access.group or access.users):
        raise SettingsProblem(["access"], f"OU {ou_path} assigns no Identity Center access")
    if policy.budget is not None:
        bounds = policy.budget
        amount = budget.monthly_usd if budget else bounds.default_usd
        span = f"{bounds.min_usd}-{bounds.max_usd} USD"
        if amount is None:
            if bounds.required:
                raise SettingsProblem(
                    ["budget", "monthly_usd"], f"OU {ou_path} requires a monthly budget of {span}"
                )
        elif not bounds.min_usd <= amount <= bounds.max_usd:
            raise SettingsProblem(
                ["budget", "monthly_usd"], f"OU {ou_path} allows a monthly budget of {span}"
            )
        else:
            subscribers = list(dict.fromkeys([owner_email, *map(str, bounds.subscribers)]))
            out.budget = EffectiveBudget(
                monthly_usd=amount,
                alert_thresholds=sorted(set(bounds.alert_thresholds)),
                subscribers=subscribers,
            )
    elif budget is not None:
        raise SettingsProblem(["budget"], f"OU {ou_path} sets no budget")
    defaults = policy.alternate_contacts or AlternateContacts()
    for kind in CONTACT_TYPES:
        chosen = (getattr(contacts, kind) if contacts else None) or getattr(defaults, kind)
        if chosen is not None:
            out.alternate_contacts[kind] = chosen
    if policy.account_alias:
        out.account_alias = f"{policy.alias_prefix}{account_name}"[:63]
    return out
