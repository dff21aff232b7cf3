"""Validation of a new request: its name and email claimed, AWS and Sunny Pay asked.

A request is answered while its creator waits on the API (the ``submit`` update), so the claims
and checks run at once, the checks as local activities: they are short calls whose result the
workflow needs immediately (recorded as a marker, no activity task through the server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.account_lifecycle import AdoptableInput, AdoptionActivities
    from activities.billing import BillingActivities, CustomerInput, CustomerResult
    from activities.claims import ClaimActivities
    from activities.organizations import AvailabilityInput, OrganizationsActivities
    from common.claims import ClaimInput, ClaimOutcome, claim_key
    from common.landing_zone import AdoptionSource
    from common.models import AccountRequest

Refusal = tuple[str, str]  # (problem type, message)

# Submission refusals that say nothing about the request itself: the workflow fails, so the
# same Idempotency-Key may try again.
TRANSIENT_REFUSALS = frozenset({"OrganizationsUnavailable", "ClaimsUnavailable"})

Wanted = tuple[str, str, str]  # (kind, field, value)


class Claims:
    """This request's hold on its account name and email (or adopted account): entries in the
    claim registry (``workflows/claim_registry.py``), taken in a local activity."""

    def __init__(self, request_id: str) -> None:
        self._request_id = request_id
        self._keys: dict[str, str] = {}  # kind -> registry key

    async def take_all(self, wanted: list[Wanted], release: Sequence[str] = ()) -> Refusal | None:
        """Take every value at once; the first refused one (in ``wanted``'s order) is the
        answer. ``release``: keys to let go of once all are taken."""
        keys = [claim_key(kind, value) for kind, _, value in wanted]
        try:
            outcome: ClaimOutcome = await workflow.execute_local_activity_method(
                ClaimActivities.take_claims,
                ClaimInput(take=keys, release=list(release)),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=200),
                    maximum_interval=timedelta(seconds=2),
                    maximum_attempts=8,
                ),
            )
        except ActivityError as err:
            return ("ClaimsUnavailable", f"could not reserve the name and email: {err.cause}")
        for key, (kind, field, value) in zip(keys, wanted, strict=True):
            if key in outcome.refused:
                return ("Conflict", f"{field}: a live request already uses {value!r}")
            self._keys[kind] = key
        return None

    async def replace_email(self, email: str) -> None:
        """Claim the corrected email before letting go of the old one, so no moment exists in
        which neither is held (or both could be taken by someone else)."""
        release = [self._keys["email"]] if "email" in self._keys else []
        if refusal := await self.take_all([("email", "account_email", email)], release):
            raise ApplicationError(refusal[1], type=refusal[0])


async def validate(req: AccountRequest, claims: Claims) -> Refusal | None:
    """The first refusal, in the order a person reads the form; None when the request may go on.
    Everything is asked at once: the claims and both services."""
    claimed, available, known = await asyncio.gather(
        claims.take_all(
            [
                ("name", "account_name", req.account_name),
                ("email", "account_email", req.account_email),
            ]
        ),
        _account_available(req.account_name, req.account_email),
        _customer_known(req.billing.customer_id),
    )
    for refusal in (claimed, available):
        if refusal is not None:
            return refusal
    return _unknown_customer(known, req.billing.customer_id)


# The check reads every account of the organization, 20 to a ListAccounts page: at 10,000
# accounts and 10 calls a second that is 500 pages and 50 s. With 20 s an attempt (as before)
# no attempt could finish there, and a filing was refused 503 after six of them, 2 minutes and
# 1,229 calls of the organization's rate (the fleet benchmark's one filing). An attempt may now
# take what the listing takes; the whole check gives up after five minutes.
AVAILABILITY_ATTEMPT = timedelta(minutes=3)
AVAILABILITY_BUDGET = timedelta(minutes=5)


async def _account_available(name: str, email: str) -> Refusal | None:
    try:
        result = await workflow.execute_local_activity_method(
            OrganizationsActivities.check_account_available,
            AvailabilityInput(account_name=name, account_email=email),
            start_to_close_timeout=AVAILABILITY_ATTEMPT,
            schedule_to_close_timeout=AVAILABILITY_BUDGET,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=300),
                maximum_interval=timedelta(seconds=3),
                maximum_attempts=6,
            ),
        )
    except ActivityError as err:
        return ("OrganizationsUnavailable", f"could not check AWS Organizations: {err.cause}")
    if not result.available:
        return ("Conflict", f"{result.field}: {result.detail}")
    return None


async def _customer_known(customer: str) -> CustomerResult:
    try:
        known: CustomerResult = await workflow.execute_local_activity_method(
            BillingActivities.check_billing_customer,
            CustomerInput(customer_id=customer),
            start_to_close_timeout=timedelta(seconds=20),
            retry_policy=RetryPolicy(maximum_attempts=2),
        )
    except ActivityError:
        return CustomerResult(known=None)  # the billing service cannot say: check later
    return known


def _unknown_customer(known: CustomerResult, customer: str) -> Refusal | None:
    if known.known is False:
        return (
            "InvalidBillingCustomer",
            f"billing.customer_id: Sunny Pay has no customer {customer!r}",
        )
    return None


async def validate_adoption(
    request: AccountRequest,
    account_id: str,
    claims: Claims,
    sources: list[AdoptionSource],
) -> tuple[Refusal | None, AdoptionSource | None]:
    """An adoption: the account claimed (two adoptions of it cannot both run), Organizations
    asked whether it may be adopted (an OU it may leave: ``sources``) and is the one named,
    Sunny Pay asked about the customer. Answers the refusal, or the OU it leaves, whose
    approvals the request needs too."""
    claimed, (adoptable, source), known = await asyncio.gather(
        claims.take_all([("account", "account_id", account_id)]),
        _adoptable(request, account_id, sources),
        _customer_known(request.billing.customer_id),
    )
    for refusal in (claimed, adoptable):
        if refusal is not None:
            return refusal, None
    return _unknown_customer(known, request.billing.customer_id), source


async def _adoptable(
    request: AccountRequest, account_id: str, sources: list[AdoptionSource]
) -> tuple[Refusal | None, AdoptionSource | None]:
    try:
        result = await workflow.execute_local_activity_method(
            AdoptionActivities.check_adoptable,
            AdoptableInput(
                account_id=account_id,
                account_name=request.account_name,
                account_email=request.account_email,
                sources=sources,
            ),
            start_to_close_timeout=timedelta(seconds=20),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=300),
                maximum_interval=timedelta(seconds=3),
                maximum_attempts=6,
            ),
        )
    except ActivityError as err:
        return (
            ("OrganizationsUnavailable", f"could not check AWS Organizations: {err.cause}"),
            None,
        )
    if result.refusal_type is not None:
        return (result.refusal_type, result.message or "the account cannot be adopted"), None
    return None, result.source


async def validate_update(after: AccountRequest, before: AccountRequest) -> Refusal | None:
    """An update: a new billing customer must be one Sunny Pay knows (the rest was checked
    against the landing zone by the API)."""
    if after.billing.customer_id == before.billing.customer_id:
        return None
    known = await _customer_known(after.billing.customer_id)
    return _unknown_customer(known, after.billing.customer_id)
