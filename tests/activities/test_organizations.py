"""The Organizations activities, run directly against the sandbox (no Temporal, no worker):
what each AWS answer becomes (retry or park with AWS's words), the check before CreateAccount
(which has no idempotency token), and the heartbeat a retried attempt resumes from."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from activities.organizations import (
    AvailabilityInput,
    CreateAccountInput,
    MoveToOuInput,
    OrganizationsActivities,
)
from tests.conftest import Sandbox
from tests.waiting import wait_until


def _input(name: str | None = None) -> CreateAccountInput:
    name = name or f"act-{uuid.uuid4().hex[:10]}"
    return CreateAccountInput(
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        account_name=name,
        account_email=f"{name}@example.com",
    )


CALLER = f"activity-test-{uuid.uuid4().hex[:8]}"  # faults aimed at this client only


@pytest.fixture
def acts(sandbox: Sandbox) -> OrganizationsActivities:
    """As the worker builds them, but with a client that does not retry by itself, so each
    answer of the sandbox reaches the activity's own mapping, and a key of its own, so a fault
    aimed at it (``caller``) is not taken by the worker's calls meanwhile."""
    client = boto3.client(
        "organizations",
        endpoint_url=sandbox.endpoint,
        region_name="us-east-1",
        aws_access_key_id=CALLER,
        aws_secret_access_key="sandbox",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    return OrganizationsActivities(client, poll_interval_seconds=0.1)


def test_a_creation_is_heartbeated_at_once_and_a_retry_resumes_it_without_a_second(
    acts: OrganizationsActivities, sandbox: Sandbox
) -> None:
    """The first attempt is lost while AWS still creates the account (the sandbox holds it);
    the next attempt, given the heartbeat, polls that creation instead of calling again."""
    inp = _input()
    sandbox.fault(
        service="organizations", action="CreateAccount", hold=True, match=inp.account_email
    )
    before = sandbox.calls("CreateAccount")
    beats: list[list[Any]] = []
    first = ActivityEnvironment()
    first.on_heartbeat = lambda *details: beats.append(list(details))
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            first.run(acts.create_account, inp)
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: bool(beats), "the first attempt to heartbeat its creation")
    status_id = beats[0][0]
    held = sandbox.org.describe_create_account_status(CreateAccountRequestId=status_id)
    assert held["CreateAccountStatus"]["State"] == "IN_PROGRESS"
    first.cancel()  # the worker running it is gone
    thread.join(30)
    assert not thread.is_alive() and isinstance(outcome[0], CancelledError)

    sandbox.release()
    second = ActivityEnvironment()
    second.info = replace(second.info, attempt=2, heartbeat_details=[status_id])
    result = second.run(acts.create_account, inp)
    assert result.adopted and result.attempt == 2
    assert result.account_id == sandbox.accounts_with_email(inp.account_email)[0]["Id"]
    assert sandbox.calls("CreateAccount") == before + 1


@pytest.mark.parametrize(
    ("reason", "final", "hint"),
    [
        ("ACCOUNT_LIMIT_EXCEEDED", True, "Service Quotas"),
        ("INVALID_EMAIL", True, "refused the email"),
        ("INTERNAL_FAILURE", False, "refused to create"),
    ],
)
def test_a_failed_creation_parks_or_retries_as_its_reason_says(
    acts: OrganizationsActivities, sandbox: Sandbox, reason: str, final: bool, hint: str
) -> None:
    inp = _input()
    sandbox.fail_creation(inp.account_email, reason, times=1)
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(acts.create_account, inp)
    assert caught.value.type == reason and caught.value.non_retryable is final
    assert hint in str(caught.value)


def test_a_retry_after_an_internal_failure_creates_again_and_succeeds(
    acts: OrganizationsActivities, sandbox: Sandbox
) -> None:
    """INTERNAL_FAILURE is the one reason where the same CreateAccount may succeed: the retry
    given that creation's heartbeat does not resume the failed one but creates anew."""
    inp = _input()
    sandbox.fail_creation(inp.account_email, "INTERNAL_FAILURE", times=1)
    beats: list[list[Any]] = []
    first = ActivityEnvironment()
    first.on_heartbeat = lambda *details: beats.append(list(details))
    with pytest.raises(ApplicationError):
        first.run(acts.create_account, inp)
    second = ActivityEnvironment()
    second.info = replace(second.info, attempt=2, heartbeat_details=[beats[0][0]])
    result = second.run(acts.create_account, inp)
    assert not result.adopted
    assert len(sandbox.accounts_with_email(inp.account_email)) == 1


def test_an_email_another_account_holds_is_refused_before_creating(
    acts: OrganizationsActivities, sandbox: Sandbox
) -> None:
    name = f"held-{uuid.uuid4().hex[:8]}"
    sandbox.new_account(name)
    before = sandbox.calls("CreateAccount")
    inp = CreateAccountInput(
        request_id="someone-else", account_name=f"{name}-2", account_email=f"aws+{name}@example.com"
    )
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(acts.create_account, inp)
    assert caught.value.type == "EMAIL_ALREADY_EXISTS" and caught.value.non_retryable
    assert "which" not in str(caught.value) and "aws+" not in str(caught.value)
    assert sandbox.calls("CreateAccount") == before
    taken = ActivityEnvironment().run(
        acts.check_account_available,
        AvailabilityInput(account_name=f"{name}-3", account_email=inp.account_email),
    )
    assert not taken.available and taken.field == "account_email"


@pytest.mark.parametrize(
    ("error", "status", "final"),
    [
        ("TooManyRequestsException", 400, False),
        ("ServiceException", 500, False),
        ("AccessDeniedException", 400, True),
        ("AWSOrganizationsNotInUseException", 400, True),
    ],
)
def test_an_aws_error_is_retried_only_when_a_retry_can_help(
    acts: OrganizationsActivities, sandbox: Sandbox, error: str, status: int, final: bool
) -> None:
    sandbox.fault(
        service="organizations",
        action="ListAccounts",
        error=error,
        status=status,
        times=1,
        caller=CALLER,
    )
    inp = AvailabilityInput(account_name="x", account_email=f"{uuid.uuid4().hex}@example.com")
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(acts.check_account_available, inp)
    assert caught.value.type == error and caught.value.non_retryable is final
    assert caught.value.message.startswith("ListAccounts: ")


def test_a_move_to_an_ou_that_does_not_exist_parks_naming_the_missing_level(
    acts: OrganizationsActivities, sandbox: Sandbox
) -> None:
    account_id = sandbox.new_account(f"mv-{uuid.uuid4().hex[:8]}")
    inp = MoveToOuInput(request_id="r", account_id=account_id, ou_path="Workloads/Nowhere", tags={})
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(acts.move_to_ou, inp)
    assert caught.value.type == "OrganizationalUnitNotFound" and caught.value.non_retryable
    assert "'Workloads/Nowhere'" in str(caught.value)
    assert sandbox.ou_path_of(account_id) == ""


def test_a_move_made_twice_moves_once(acts: OrganizationsActivities, sandbox: Sandbox) -> None:
    account_id = sandbox.new_account(f"mv-{uuid.uuid4().hex[:8]}")
    inp = MoveToOuInput(request_id="r", account_id=account_id, ou_path="Sandbox", tags={})
    first = ActivityEnvironment().run(acts.move_to_ou, inp)
    again = ActivityEnvironment().run(acts.move_to_ou, inp)
    assert first.moved and not again.moved and first.ou_id == again.ou_id
    assert sandbox.ou_path_of(account_id) == "Sandbox"
