"""Every history the suite recorded replays against the current workflow code.

A change that would break running requests (non-determinism) fails here, in CI, before it
ships. Named to run after the other tests, so it replays what they left behind.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from common.codec import EncryptionCodec, data_converter
from common.settings import CodecSettings
from sandbox.stack import EmbeddedStack
from tests.conftest import codec_settings, plain_history_json
from worker import WORKFLOWS, workflow_runner
from workflows.claim_registry import ClaimRegistry

REPLAYED = [*WORKFLOWS, ClaimRegistry]  # the registry runs on a task queue of its own


async def test_recorded_histories_replay_on_current_code(stack: EmbeddedStack) -> None:
    converter = data_converter(codec_settings(stack))
    client = await Client.connect(stack.config.temporal_address, data_converter=converter)
    replayer = Replayer(
        workflows=REPLAYED, data_converter=converter, workflow_runner=workflow_runner()
    )
    types = " OR ".join(f"WorkflowType = '{w.__name__}'" for w in REPLAYED)
    histories = client.list_workflows(types).map_histories()
    replayed, failures = 0, {}
    async with replayer.workflow_replay_iterator(histories) as results:
        async for result in results:
            replayed += 1
            if result.replay_failure is not None:
                failures[result.history.workflow_id] = str(result.replay_failure)
    assert failures == {}
    assert replayed > 20, "the suite should have left many histories to replay"
    print(f"\nreplayed {replayed} workflow histories on the current code")


HISTORIES = Path(__file__).parent / "histories"


def _committed() -> list[WorkflowHistory]:
    return [
        WorkflowHistory.from_json(str(path.relative_to(HISTORIES)), path.read_text())
        for path in sorted(HISTORIES.rglob("*.json"))
    ]


async def test_record_histories(stack: EmbeddedStack) -> None:
    """With VEND_RECORD_HISTORIES=1, keep one history per outcome for the test above."""
    if not os.environ.get("VEND_RECORD_HISTORIES"):
        pytest.skip("set VEND_RECORD_HISTORIES=1 to re-record tests/histories")
    converter = data_converter(codec_settings(stack))
    client = await Client.connect(stack.config.temporal_address, data_converter=converter)
    folder = HISTORIES / time.strftime("%Y-%m-%d", time.gmtime())
    folder.mkdir(parents=True, exist_ok=True)
    codec = EncryptionCodec.from_settings(codec_settings(stack))
    assert codec is not None  # committed histories are decrypted: the test key is thrown away
    wanted = {
        "completed": "VendingStatus = 'completed' AND VendingOU = 'Experiments/Protected'",
        "completed-account-factory": (
            "VendingStatus = 'completed' AND VendingOU = 'Experiments/Factory'"
        ),
        "rejected": "VendingStatus = 'rejected'",
        "expired": "VendingStatus = 'expired'",
        "cancelled": "VendingStatus = 'cancelled'",
        "parked": "VendingStatus = 'waiting_for_operator'",
        "refused": "VendingStatus = 'invalid'",
    }
    for name, query in wanted.items():
        async for wf in client.list_workflows(f"WorkflowType = 'AccountVending' AND {query}"):
            history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
            (folder / f"{name}.json").write_text(plain_history_json(history, codec))
            break
    coordinator = await client.get_workflow_handle("control-tower-coordinator").fetch_history()
    (folder / "coordinator.json").write_text(plain_history_json(coordinator, codec))


async def test_committed_histories_replay_on_current_code() -> None:
    """Histories recorded by earlier versions of the code (``tests/histories``, a folder per
    recording named by its date): a change that would break requests already running fails
    here. Guard such a change with ``workflow.patched``; a new recording goes beside the old
    ones, never instead of them."""
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=data_converter(CodecSettings()),  # committed histories are plain
        workflow_runner=workflow_runner(),
    )
    histories = _committed()
    assert len(histories) >= 5
    failures = {}
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures[history.workflow_id] = str(result.replay_failure)
    assert failures == {}
