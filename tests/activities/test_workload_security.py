"""The Workload Security client the activities call, run directly against its emulator (in
ActivityEnvironment where it waits, since it heartbeats while it backs off; no Temporal, no
worker): which answers are retried and which park the step with what to fix, and that the key
never shows in what an operator reads."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.workload_security import WorkloadSecurityClient
from common.settings import WorkloadSecuritySettings
from sandbox.stack import EmbeddedStack
from tests.conftest import HttpEmulator


def _client(stack: EmbeddedStack, key: str | None = None) -> WorkloadSecurityClient:
    settings = WorkloadSecuritySettings(
        base_url=f"{stack.config.ws_url}/api",
        api_key=SecretStr(key or stack.secrets["ws_api_key"]),
    )
    return WorkloadSecurityClient(settings)


def _account() -> str:
    return str(uuid.uuid4().int)[:12]


def test_a_refused_key_is_final_and_never_shown(stack: EmbeddedStack) -> None:
    key = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(ApplicationError) as caught:
        _client(stack, key).request("GET", "policies")
    assert caught.value.type == "WorkloadSecurityUnauthorized" and caught.value.non_retryable
    assert key not in str(caught.value) and "check the configured key" in str(caught.value)


def test_no_key_configured_is_final_before_any_call(stack: EmbeddedStack) -> None:
    client = WorkloadSecurityClient(WorkloadSecuritySettings(base_url=f"{stack.config.ws_url}/api"))
    with pytest.raises(ApplicationError) as caught:
        client.request("GET", "policies")
    assert caught.value.type == "WorkloadSecurityNotConfigured" and caught.value.non_retryable
    assert "VEND_WORKLOAD_SECURITY__API_KEY" in str(caught.value)


@pytest.mark.parametrize(("error", "status"), [("unavailable", 503), ("throttled", 429)])
def test_an_unavailable_or_busy_service_is_retried_within_the_call(
    stack: EmbeddedStack, workload_security: HttpEmulator, error: str, status: int
) -> None:
    workload_security.fault(
        service="workload-security", action="GET /api/policies", error=error, status=status, times=2
    )
    policies = ActivityEnvironment().run(_client(stack).request, "GET", "policies")
    assert policies["policies"], policies


def test_a_role_not_yet_assumable_is_retried_a_refused_connector_is_final(
    stack: EmbeddedStack,
) -> None:
    """Trend Micro answers 400 both for a role IAM has not propagated yet (worth a retry: it
    becomes assumable within seconds) and for a request that can never succeed."""
    client, account = _client(stack), _account()
    missing_role = f"arn:aws:iam::{account}:role/not-made-yet"
    with pytest.raises(ApplicationError) as caught:
        client.request(
            "POST",
            "awsconnectors",
            json={"accountId": account, "crossAccountRoleArn": missing_role},
        )
    assert "Unable to assume role" in str(caught.value)
    assert caught.value.type == "WorkloadSecurityRequestFailed" and not caught.value.non_retryable

    with pytest.raises(ApplicationError) as refused:
        client.request(
            "POST", "awsconnectors", json={"accountId": "12", "crossAccountRoleArn": missing_role}
        )
    assert "12-digit" in str(refused.value) and refused.value.non_retryable
