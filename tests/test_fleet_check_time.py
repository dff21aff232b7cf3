"""An account the last check of every account looked at, but had nothing new to tell, shows
that check's time as when it was last checked; one the check could not see does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.services.fleet_check import FleetCheck, last_checked_at
from common.models import AccountRequest, AccountStatus, ManagedAccount

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _account(account_id: str, managed_since: datetime, **extra: object) -> ManagedAccount:
    request = AccountRequest.model_validate(
        {
            "account_name": f"acct-{account_id}",
            "account_email": f"a{account_id}@example.com",
            "organizational_unit": "Bench/Fleet",
            "environment": "dev",
            "owner_email": "alice@example.com",
            "cost_center": "CC-1",
            "justification": "test",
            "billing": {"customer_id": "cust-001"},
        }
    )
    fields: dict[str, object] = {"last_checked_at": managed_since, **extra}
    return ManagedAccount(
        account_id=account_id,
        request=request,
        managed_since=managed_since,
        **fields,
    )


def test_the_check_of_every_account_dates_the_accounts_it_looked_at() -> None:
    fleet = FleetCheck(
        checked_at=T0 + timedelta(hours=2),
        listed_at=T0 + timedelta(hours=1),
        unchecked=frozenset({"222222222222"}),
    )
    looked_at = _account("111111111111", T0)
    assert last_checked_at(looked_at, fleet) == fleet.checked_at
    # In a change when listed (unchecked), managed after the listing, closed: its own time.
    for account in (
        _account("222222222222", T0),
        _account("333333333333", T0 + timedelta(hours=1, minutes=1)),
        _account("444444444444", T0, status=AccountStatus.closed),
    ):
        assert last_checked_at(account, fleet) == account.last_checked_at
    # A report newer than the check (a named check since) is the later time.
    newer = _account("555555555555", T0, last_checked_at=T0 + timedelta(hours=3))
    assert last_checked_at(newer, fleet) == T0 + timedelta(hours=3)
    assert last_checked_at(looked_at, None) == T0
