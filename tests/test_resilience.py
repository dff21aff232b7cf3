"""The engine survives its own infrastructure going away: Temporal restarted mid-batch."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.stack import EmbeddedStack
from tests.conftest import Api, Sandbox

Body = Callable[..., dict[str, Any]]


@pytest.mark.resilience
def test_temporal_server_restart_mid_batch(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    bodies = [new_body(organizational_unit="Sandbox", environment="sandbox") for _ in range(6)]
    ids = [api.create("alice", b).json()["id"] for b in bodies]
    time.sleep(1.0)  # some are creating accounts, some are further along
    stack.processes["temporal"].stop()  # SIGTERM; state is in the SQLite file
    time.sleep(3)
    stack.start_temporal()
    for request_id in ids:
        done = api.wait_for(request_id, {"completed"}, timeout=180)
        assert done["account_id"]
    for body in bodies:
        assert len(sandbox.accounts_with_email(body["account_email"])) == 1
