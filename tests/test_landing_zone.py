"""The landing-zone file: what it accepts and what it refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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
