"""Worker Versioning on the real dev server: the worker polls as a build of the deployment and
made it current; requests are pinned to it, the long-lived workflows auto-upgrade; a request
pinned to a build no worker of a checkout runs is listed as stranded and can be moved."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import VersioningBehavior as Behavior
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion

from common import worker_deployment
from common.codec import data_converter
from common.settings import Settings, WorkerSettings
from common.temporal_client import workflow_id
from sandbox.stack import EmbeddedStack
from tests.conftest import ROOT, Api, codec_settings
from tests.waiting import eventually_async
from workflows.coordinator import COORDINATOR_ID

Body = Callable[..., dict[str, Any]]


def test_a_build_is_named_by_the_workflow_code_alone(tmp_path: Path) -> None:
    for folder in worker_deployment.CODE:
        shutil.copytree(
            ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    assert worker_deployment.code_digest(tmp_path) == worker_deployment.code_digest()
    (tmp_path / "activities").mkdir()  # activities are not part of the build
    (tmp_path / "activities" / "x.py").write_text("CHANGED = 1\n")
    assert worker_deployment.code_digest(tmp_path) == worker_deployment.code_digest()
    vending = tmp_path / "workflows" / "vending.py"
    vending.write_text(vending.read_text() + "\n# a change\n")
    assert worker_deployment.code_digest(tmp_path) != worker_deployment.code_digest()


async def _client(stack: EmbeddedStack) -> Client:
    return await Client.connect(
        stack.config.temporal_address, data_converter=data_converter(codec_settings(stack))
    )


async def _listed_stranded(
    client: Client, settings: Settings, workflow: str
) -> dict[str, worker_deployment.Stranded]:
    """The stranded list once it shows ``workflow``: it is read from visibility, which shows a
    new workflow a moment after it starts."""

    async def read() -> dict[str, worker_deployment.Stranded]:
        return {s.workflow_id: s for s in await worker_deployment.stranded(client, settings)}

    return await eventually_async(read, lambda found: workflow in found, f"{workflow} listed", 15)


def _settings(build_id: str | None = None) -> Settings:
    return Settings.model_construct(worker=WorkerSettings(build_id=build_id))


async def test_the_worker_made_its_build_current_and_requests_are_pinned_to_it(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    client = await _client(stack)
    described = await client.workflow_service.describe_worker_deployment(
        DescribeWorkerDeploymentRequest(namespace="default", deployment_name="account-vending")
    )
    current = described.worker_deployment_info.routing_config.current_deployment_version
    assert current.build_id == worker_deployment.code_digest()

    req = api.create("alice", new_body()).json()
    info = (await client.get_workflow_handle(workflow_id(req["id"])).describe()).raw_description
    versioning = info.workflow_execution_info.versioning_info
    assert versioning.behavior == Behavior.VERSIONING_BEHAVIOR_PINNED
    assert versioning.deployment_version.build_id == current.build_id
    coordinator = (await client.get_workflow_handle(COORDINATOR_ID).describe()).raw_description
    assert (
        coordinator.workflow_execution_info.versioning_info.behavior
        == Behavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE
    )
    assert api.act("alice", req["id"], "cancel", {"reason": "test done"}).status_code == 200


async def test_a_request_of_another_build_is_stranded_until_moved(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    """Seen from a checkout of another build (a ``git pull``), the running request waits for a
    build no worker of that checkout runs: listed, and ``move`` pins it where asked."""
    client = await _client(stack)
    req = api.create("alice", new_body()).json()
    wf = workflow_id(req["id"])
    elsewhere = _settings(build_id="a-later-build")
    stranded = await _listed_stranded(client, elsewhere, wf)
    assert wf in stranded and stranded[wf].workflow_type == "AccountVending"
    assert stranded[wf].version == f"account-vending:{worker_deployment.code_digest()}"
    here = _settings()
    assert wf not in {s.workflow_id for s in await worker_deployment.stranded(client, here)}

    # Moved (here: to the build that runs, so the request goes on), it carries the override.
    await worker_deployment.pin(
        client, wf, WorkerDeploymentVersion("account-vending", worker_deployment.code_digest())
    )
    info = (await client.get_workflow_handle(wf).describe()).raw_description
    override = info.workflow_execution_info.versioning_info.versioning_override
    assert override.pinned.version.build_id == worker_deployment.code_digest()
    assert api.act("alice", req["id"], "cancel", {"reason": "test done"}).status_code == 200


@pytest.mark.parametrize("name", ["", "has.dot", "has:colon"])
def test_a_deployment_name_temporal_would_refuse_is_refused_here(name: str) -> None:
    with pytest.raises(ValueError):
        WorkerSettings(deployment_name=name)
