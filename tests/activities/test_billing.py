"""The Sunny Pay activities, run directly against its emulator (no Temporal, no worker): one
registration however often they run, the registration heartbeated for a retry, and each answer
of the billing service mapped to a retry or a final refusal that says what to fix."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.billing import BillingActivities, BillingInput, CustomerInput
from sandbox.stack import EmbeddedStack
from tests.conftest import HttpEmulator


def _acts(stack: EmbeddedStack, key: str | None = None) -> BillingActivities:
    client = httpx.Client(
        base_url=stack.config.sunnypay_url,
        headers={"Authorization": f"Bearer {key or stack.secrets['sunnypay_api_key']}"},
        timeout=30,
    )
    return BillingActivities(client, poll_interval_seconds=0.1)


def _input(customer: str = "cust-001") -> BillingInput:
    return BillingInput(
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        account_id=str(uuid.uuid4().int)[:12],
        account_name="billing-activity",
        customer_id=customer,
        plan=None,
        cost_center="CC-1",
        contact_email="owner@example.com",
        workload_security=True,
    )


def _registrations(sunnypay: HttpEmulator, account_id: str) -> list[dict[str, Any]]:
    regs = sunnypay.state()["registrations"]
    return [r for r in regs if r["aws_account_id"] == account_id and not r["deleted"]]


def test_registering_twice_registers_once_and_heartbeats_the_registration(
    stack: EmbeddedStack, sunnypay: HttpEmulator
) -> None:
    acts, inp = _acts(stack), _input()
    beats: list[list[Any]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(list(details))
    first = env.run(acts.register_billing, inp)
    again = ActivityEnvironment().run(acts.register_billing, inp)
    assert first.status == "active" and not first.adopted
    assert again.adopted and again.registration_id == first.registration_id
    assert [first.registration_id] in beats  # what a retried attempt resumes from
    assert len(_registrations(sunnypay, inp.account_id)) == 1


def test_a_rejected_registration_is_final_with_sunny_pays_reason(stack: EmbeddedStack) -> None:
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(_acts(stack).register_billing, _input(customer="cust-999"))
    assert caught.value.type == "BillingRejected" and caught.value.non_retryable
    assert "unknown customer cust-999" in str(caught.value)


def test_a_refused_key_is_final_and_the_message_never_holds_the_key(stack: EmbeddedStack) -> None:
    key = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(_acts(stack, key).register_billing, _input())
    assert caught.value.type == "BillingUnauthorized" and caught.value.non_retryable
    assert key not in str(caught.value) and "check the configured key" in str(caught.value)


@pytest.mark.parametrize(("error", "status"), [("unavailable", 503), ("throttled", 429)])
def test_a_busy_or_unavailable_service_is_retried_within_the_attempt(
    stack: EmbeddedStack, sunnypay: HttpEmulator, error: str, status: int
) -> None:
    inp = _input()
    sunnypay.fault(service="sunnypay", error=error, status=status, times=2)
    result = ActivityEnvironment().run(_acts(stack).register_billing, inp)
    assert result.status == "active"
    assert len(_registrations(sunnypay, inp.account_id)) == 1


def test_a_customer_check_says_unknown_only_when_sunny_pay_says_so(
    stack: EmbeddedStack, sunnypay: HttpEmulator
) -> None:
    acts = _acts(stack)
    check = ActivityEnvironment().run
    assert check(acts.check_billing_customer, CustomerInput(customer_id="cust-002")).known
    unknown = check(acts.check_billing_customer, CustomerInput(customer_id="cust-999"))
    assert unknown.known is False
    sunnypay.fault(service="sunnypay", error="unavailable", status=503, times=1)
    cannot_say = check(acts.check_billing_customer, CustomerInput(customer_id="cust-999"))
    assert cannot_say.known is None  # the request is not refused for an outage
