"""The landing-zone file: what it accepts and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from common.account_settings import (
    AccessRequest,
    AlternateContacts,
    BudgetRequest,
    Contact,
    SettingsProblem,
    resolve,
)
from common.landing_zone import LandingZone, load_landing_zone
from common.settings import DEFAULT_LANDING_ZONE


def test_default_landing_zone_matches_the_spec() -> None:
    lz = load_landing_zone(DEFAULT_LANDING_ZONE)
    by_path = {ou.path: ou for ou in lz.organizational_units}
    assert by_path["Workloads/Prod"].approvals_required == 2
    assert by_path["Workloads/SDLC"].approvals_required == 1
    assert by_path["Infrastructure"].approvals_required == 1
    assert by_path["Sandbox"].approvals_required == 0
    assert not by_path["Security"].open_for_vending
    assert lz.all_paths().index("Workloads") < lz.all_paths().index("Workloads/Prod")


def test_email_domains_match_exactly_or_as_subdomains() -> None:
    lz = LandingZone(allowed_email_domains=["example.com"], organizational_units=[])
    assert lz.email_domain_allowed("a@example.com")
    assert lz.email_domain_allowed("a@Sub.Example.com")
    assert not lz.email_domain_allowed("a@badexample.com")
    assert not lz.email_domain_allowed("a@example.com.evil.org")


def test_duplicate_or_empty_paths_are_refused() -> None:
    with pytest.raises(ValidationError):
        LandingZone(
            allowed_email_domains=["x.com"],
            organizational_units=[{"path": "A"}, {"path": "/A/"}],  # type: ignore[list-item]
        )
    with pytest.raises(ValidationError):
        LandingZone(
            allowed_email_domains=["x.com"],
            organizational_units=[{"path": "A//B"}],  # type: ignore[list-item]
        )


def _lz(**settings: Any) -> LandingZone:
    return LandingZone.model_validate(
        {
            "allowed_email_domains": ["example.com"],
            "settings": {"account_alias": True, "delete_default_vpcs": True},
            "organizational_units": [{"path": "A", "settings": settings}, {"path": "B"}],
        }
    )


def test_an_ous_settings_replace_the_landing_zones_key_by_key() -> None:
    lz = _lz(budget={"max_usd": 500, "default_usd": 100}, delete_default_vpcs=False)
    a, b = lz.organizational_units
    mine = lz.settings_for(a)
    assert mine.account_alias and not mine.delete_default_vpcs  # kept, replaced
    assert mine.budget is not None and mine.budget.max_usd == 500
    assert lz.settings_for(b).budget is None and lz.settings_for(b).delete_default_vpcs


@pytest.mark.parametrize(
    "settings",
    [
        {"budget": {"min_usd": 500, "max_usd": 100}},
        {"budget": {"max_usd": 100, "default_usd": 200}},
        {"budget": {"alert_thresholds": [10, 20, 30, 40, 50, 60]}},
        {"budget": {"subscribers": [f"f{i}@example.com" for i in range(10)]}},
        {"opt_in_regions": ["us-east-1"]},  # a default region, not an opt-in one
        {"access": {"permission_sets": []}},
    ],
)
def test_settings_that_aws_or_sense_refuse_are_refused_at_load(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _lz(**settings)


def test_an_email_template_must_name_the_account_and_an_allowed_domain() -> None:
    base = {"allowed_email_domains": ["example.com"], "organizational_units": []}
    LandingZone.model_validate({**base, "email_template": "aws+{name}@example.com"})
    for bad in ("aws@example.com", "aws+{name}@elsewhere.org"):
        with pytest.raises(ValidationError):
            LandingZone.model_validate({**base, "email_template": bad})


def test_a_request_gets_its_ous_settings_within_their_bounds() -> None:
    lz = _lz(
        budget={"min_usd": 1000, "max_usd": 50000, "subscribers": ["fin@example.com"]},
        access={"permission_sets": ["Ops"]},
        alternate_contacts={
            "billing": {"name": "F", "title": "B", "email": "f@example.com", "phone": "+1 5"}
        },
    )
    policy = lz.settings_for(lz.organizational_units[0])
    ask = {"account_name": "shop", "owner_email": "o@example.com", "ou_path": "A"}
    got = resolve(
        policy,
        access=AccessRequest(group="team"),
        budget=BudgetRequest(monthly_usd=5000),
        contacts=AlternateContacts(
            security=Contact(name="S", title="Sec", email="s@example.com", phone="+1 6")
        ),
        **ask,
    )
    assert got.budget is not None and got.budget.subscribers == ["o@example.com", "fin@example.com"]
    assert sorted(got.alternate_contacts) == ["billing", "security"]  # the OU's and the request's
    assert got.account_alias == "shop" and got.delete_default_vpcs
    with pytest.raises(SettingsProblem) as over:
        resolve(
            policy,
            access=AccessRequest(group="t"),
            budget=BudgetRequest(monthly_usd=1),
            contacts=None,
            **ask,
        )
    assert over.value.loc == ["budget", "monthly_usd"]
    with pytest.raises(SettingsProblem) as nobody:
        resolve(policy, access=None, budget=BudgetRequest(monthly_usd=5000), contacts=None, **ask)
    assert nobody.value.loc == ["access", "group"]
