"""Every history the suite recorded replays against the current workflow code.

A change that would break running requests (non-determinism) fails here, in CI, before it
ships. A suite audit (``suite_audit``): it runs after every other test of its process and
replays what they left in that process's stack (``make test`` runs three, each auditing the
part of the suite it ran; ``pytest -n0`` audits the whole suite in one); alone, a vend and
decommission of its own.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.common import VersioningBehavior
from temporalio.worker import Replayer
from temporalio.workflow import _Definition

from common.codec import EncryptionCodec, data_converter
from common.settings import CodecSettings
from sandbox.stack import EmbeddedStack
from tests.conftest import codec_settings, plain_history_json
from worker import WORKFLOWS, workflow_runner
from workflows.claim_registry import ClaimRegistry

REPLAYED = [*WORKFLOWS, ClaimRegistry]  # the registry runs on a task queue of its own


def workflow_definition(cls: type) -> _Definition:
    return _Definition.must_from_class(cls)


@pytest.mark.suite_audit
async def test_recorded_histories_replay_on_current_code(
    stack: EmbeddedStack, audited_work: None
) -> None:
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
    assert replayed >= 2, "a vend leaves its request's and its account's histories to replay"
    print(f"\nreplayed {replayed} workflow histories on the current code")


HISTORIES = Path(__file__).parent / "histories"
# Pinned workflows finish on the build that started them: their histories need only replay on
# the code that recorded them, and are re-recorded (replaced) when that code changes.
PINNED = HISTORIES / "pinned"
# Auto-upgrading ones move to every new build with their history: recordings accumulate, a
# folder per recording, and every one must replay on every later build.
AUTO_UPGRADE = HISTORIES / "auto-upgrade"


def behaviour(workflow_type: str) -> VersioningBehavior:
    for cls in REPLAYED:
        defn = workflow_definition(cls)
        if defn.name == workflow_type:
            return defn.versioning_behavior
    raise KeyError(workflow_type)


def _committed(folder: Path) -> list[WorkflowHistory]:
    return [
        WorkflowHistory.from_json(str(path.relative_to(HISTORIES)), path.read_text())
        for path in sorted(folder.rglob("*.json"))
    ]


@pytest.mark.suite_audit
async def test_record_histories(stack: EmbeddedStack, audited_work: None) -> None:
    """With VEND_RECORD_HISTORIES=1 (a suite audit: after a whole run, so every outcome
    exists), replace the pinned recordings and add a folder of auto-upgrade ones."""
    if not os.environ.get("VEND_RECORD_HISTORIES"):
        pytest.skip("set VEND_RECORD_HISTORIES=1 to re-record tests/histories")
    converter = data_converter(codec_settings(stack))
    client = await Client.connect(stack.config.temporal_address, data_converter=converter)
    codec = EncryptionCodec.from_settings(codec_settings(stack))
    assert codec is not None  # committed histories are decrypted: the test key is thrown away
    vending = "WorkflowType = 'AccountVending' AND "
    pinned = {
        "completed": vending
        + "VendingStatus = 'completed' AND VendingOU = 'Experiments/Protected'",
        "completed-account-factory": (
            vending + "VendingStatus = 'completed' AND VendingOU = 'Experiments/Factory'"
        ),
        "rejected": vending + "VendingStatus = 'rejected'",
        "expired": vending + "VendingStatus = 'expired'",
        "cancelled": vending + "VendingStatus = 'cancelled'",
        "parked": vending + "VendingStatus = 'waiting_for_operator'",
        "refused": vending + "VendingStatus = 'invalid'",
        "rollout": "WorkflowType = 'BaselineRollout' AND ExecutionStatus = 'Completed'",
        "drift-check": "WorkflowType = 'DriftCheck' AND ExecutionStatus = 'Completed'",
        "preflight": "WorkflowType = 'Preflight' AND ExecutionStatus = 'Completed'",
    }
    auto_upgrade = {
        "account": "WorkflowType = 'ManagedAccount' AND ExecutionStatus = 'Running'",
        "coordinator": "WorkflowType = 'ControlTowerCoordinator'",
        "close-quota": "WorkflowType = 'CloseQuotaQueue'",
        "stack-set-batcher": "WorkflowType = 'StackSetBatcher'",
        "claim-registry": "WorkflowType = 'ClaimRegistry'",
    }
    shutil.rmtree(PINNED, ignore_errors=True)
    folders = {
        PINNED: pinned,
        AUTO_UPGRADE / time.strftime("%Y-%m-%d", time.gmtime()): auto_upgrade,
    }
    missing = []
    for folder, wanted in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        for name, query in wanted.items():
            # The longest history of its kind: the most of the code it exercises.
            longest: WorkflowHistory | None = None
            async for wf in client.list_workflows(query, limit=50):
                history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
                if longest is None or len(history.events) > len(longest.events):
                    longest = history
            if longest is None:
                missing.append(name)
                continue
            (folder / f"{name}.json").write_text(plain_history_json(longest, codec))
    assert missing == [], f"no history to record for {missing}: record after a whole run"


async def test_committed_histories_replay_on_current_code() -> None:
    """Histories committed in ``tests/histories``: the pinned ones recorded by this code, and
    every auto-upgrade one ever recorded. A change that would break an account, coordinator or
    registry workflow already running (they move to a new build mid-run) fails here; make it
    compatible with the recorded histories (no ``workflow.patched``: docs/upgrades.md)."""
    replayer = Replayer(
        workflows=REPLAYED,
        data_converter=data_converter(CodecSettings()),  # committed histories are plain
        workflow_runner=workflow_runner(),
    )
    pinned, upgrading = _committed(PINNED), _committed(AUTO_UPGRADE)
    assert len(pinned) >= 10 and len(upgrading) >= 5
    kinds = {h.workflow_id: behaviour(_type(h)) for h in [*pinned, *upgrading]}
    assert {k for k, b in kinds.items() if b != VersioningBehavior.PINNED} == {
        h.workflow_id for h in upgrading
    }, "a recording is in the folder of the other behaviour"
    failures = {}
    for history in [*pinned, *upgrading]:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures[history.workflow_id] = str(result.replay_failure)
    assert failures == {}


def _type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name
