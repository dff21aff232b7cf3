"""The engine survives its own infrastructure going away: Temporal restarted mid-batch."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.stack import EmbeddedStack
from tests.conftest import Api, Sandbox
from tests.waiting import wait_until

Body = Callable[..., dict[str, Any]]


@pytest.mark.resilience
def test_temporal_server_restart_mid_batch(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    bodies = [new_body(organizational_unit="Sandbox", environment="sandbox") for _ in range(6)]
    ids = [api.create("alice", b).json()["id"] for b in bodies]

    def some_further_along() -> bool:  # some are creating accounts, some are further along
        return any(api.get("carol", i).json().get("account_id") for i in ids)

    wait_until(some_further_along, "a request past create_account")
    stack.processes["temporal"].stop()  # SIGTERM; state is in the SQLite file

    def gone() -> bool:
        return api.call("GET", "/readyz", None).status_code == 503

    wait_until(gone, "the API to see Temporal gone")
    stack.start_temporal()
    for request_id in ids:
        done = api.wait_for(request_id, {"completed"}, timeout=180)
        assert done["account_id"]
    for body in bodies:
        assert len(sandbox.accounts_with_email(body["account_email"])) == 1


@pytest.mark.resilience
@pytest.mark.timeout(900)
def test_many_requests_through_transient_faults_everywhere(
    api: Api,
    sandbox: Sandbox,
    stack: EmbeddedStack,
    new_body: Body,
    workload_security: Any,
    sunnypay: Any,
) -> None:
    """40 requests (100 in ``make test-resilience``) while 30% of calls to every external API
    fail transiently: every one completes, exactly once (one account, connector and
    registration each). A fifth of them take every account setting (Identity Center, Budgets,
    the Account API, EC2) and a tenth go through Account Factory (Service Catalog), so each of
    those services fails under them too."""
    from concurrent.futures import ThreadPoolExecutor

    count = int(os.environ.get("VEND_FAULT_RUN_REQUESTS", "40"))
    for service, error, status in [
        ("organizations", "TooManyRequestsException", 400),
        ("controltower", "ThrottlingException", 429),
        ("cloudformation", "Throttling", 400),
        ("sts", "Throttling", 400),
        ("iam", "Throttling", 400),
        ("ssm", "ThrottlingException", 400),
        ("servicecatalog", "ThrottlingException", 400),
        ("sso", "ThrottlingException", 400),
        ("identitystore", "ThrottlingException", 400),
        ("account", "TooManyRequestsException", 429),
        ("budgets", "ThrottlingException", 400),
        ("ec2", "RequestLimitExceeded", 503),
    ]:
        sandbox.fault(service=service, error=error, status=status, probability=0.3)
    workload_security.fault(
        service="workload-security", error="unavailable", status=503, probability=0.3
    )
    sunnypay.fault(service="sunnypay", error="throttled", status=429, probability=0.3)

    def body(i: int) -> dict[str, Any]:
        if i % 5 == 4:
            return new_body(
                organizational_unit="Experiments/Settings",
                environment="dev",
                budget={"monthly_usd": 5000},
                access={"group": "team-payments"},
                workload_security={"enabled": False},
            )
        ou = "Experiments/Factory" if i % 10 == 3 else "Experiments/Full"
        return new_body(organizational_unit=ou, environment="dev")

    bodies = [body(i) for i in range(count)]
    started = time.monotonic()

    def create(body: dict[str, Any]) -> Any:
        return api.create_retrying("alice", body, f"fault-run-{body['account_name']}")

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(create, bodies))
    assert [c.status_code for c in created] == [201] * count, [c.text for c in created][:3]
    finals = [
        api.wait_for(c.json()["id"], {"completed", "waiting_for_operator"}, timeout=600)
        for c in created
    ]
    elapsed = time.monotonic() - started
    injected = sandbox.state()["calls"]
    for emulator in (sandbox, workload_security, sunnypay):
        emulator.clear_faults()  # inspect the outcome without tripping over the faults
    parked = [f for f in finals if f["status"] != "completed"]
    assert parked == [], [[s["error"] for s in f["steps"] if s["error"]] for f in parked][:3]
    accounts = [f["account_id"] for f in finals]
    assert len(set(accounts)) == count
    for body in bodies:
        assert len(sandbox.accounts_with_email(body["account_email"])) == 1
    connectors = [c["accountId"] for c in workload_security.state()["connectors"]]
    registrations = [r["aws_account_id"] for r in sunnypay.state()["registrations"]]
    assert all(registrations.count(a) == 1 for a in accounts)
    protected = [
        f["account_id"]
        for f, b in zip(finals, bodies, strict=True)
        if b["workload_security"]["enabled"]
    ]
    assert all(connectors.count(a) == 1 for a in protected)
    assert not set(connectors) & (set(accounts) - set(protected))
    attempts = sum(s["attempts"] for f in finals for s in f["steps"])
    print(
        f"\n{count} requests under 30% transient faults: all completed in {elapsed:.0f}s, "
        f"{sum(1 for b in bodies if b['organizational_unit'] != 'Experiments/Full')} of them "
        "through every setting or Account Factory, "
        f"0 duplicates, {attempts} step attempts in total ({sum(injected.values())} AWS calls)"
    )
