"""``vend builds``: which requests wait for a build of the workflow code that no worker runs.

Requests are pinned to the build that started them (``common/worker_deployment.py``). After an
upgrade the old build's workers drain them; where none will run again (``make run`` after a
``git pull``), an operator moves them to the current build here, or runs the old build's worker.
Talks to Temporal directly, as the worker does (operators only).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion

from common import worker_deployment
from common.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, help="Builds of the workflow code and what runs on them.")


def _settings(data_dir: Path) -> Settings:
    """This shell's settings; beside a running embedded stack, that stack's Temporal."""
    if not os.environ.get("VEND_TEMPORAL__ADDRESS") and (data_dir / "stack.json").exists():
        try:
            from sandbox.stack import EmbeddedStack, StackConfig
        except ImportError:
            return get_settings()
        os.environ.update(EmbeddedStack(StackConfig.of_data_dir(data_dir)).env())
        get_settings.cache_clear()
    return get_settings()


DataDir = Annotated[Path, typer.Option(help="an embedded stack's state (make run)")]


@app.command("current")
def current(data_dir: DataDir = Path(".data")) -> None:
    """The build this checkout's workers run (a digest of the workflow code)."""
    typer.echo(worker_deployment.version_name(_settings(data_dir)))


@app.command("stranded")
def stranded(data_dir: DataDir = Path(".data")) -> None:
    """Running workflows pinned to another build of this deployment. Exit status 1 if any."""
    settings = _settings(data_dir)
    found = asyncio.run(_stranded(settings))
    if not found:
        typer.echo(f"none: every running pinned workflow is on {_name(settings)}")
        return
    for item in found:
        started = item.started.isoformat(timespec="seconds") if item.started else "?"
        typer.echo(f"{item.workflow_id}  {item.workflow_type}  {item.version}  started {started}")
    typer.echo(advice(len(found), settings))
    raise typer.Exit(1)


@app.command("move")
def move(
    workflow_ids: Annotated[list[str] | None, typer.Argument(help="default: with --all")] = None,
    all_stranded: Annotated[
        bool, typer.Option("--all", help="every stranded workflow (vend builds stranded)")
    ] = False,
    to: Annotated[
        str | None, typer.Option(help="a build id to move them to (default: the current one)")
    ] = None,
    data_dir: DataDir = Path(".data"),
) -> None:
    """Pin workflows to this checkout's build (or ``--to`` another): they replay their history
    on its code and go on. One whose history that code cannot replay stops with a workflow task
    failure (shown in the Temporal UI) and waits, unharmed; move it back with ``--to``."""
    settings = _settings(data_dir)
    if not workflow_ids and not all_stranded:
        raise typer.BadParameter("name the workflows, or --all")
    target = WorkerDeploymentVersion(
        settings.worker.deployment_name, to or worker_deployment.build_id(settings)
    )
    moved = asyncio.run(_move(settings, list(workflow_ids or []), all_stranded, target))
    for workflow_id in moved:
        typer.echo(f"{workflow_id} -> {target.deployment_name}:{target.build_id}")
    typer.echo(f"{len(moved)} moved")


async def _client(settings: Settings) -> Client:
    from common.temporal_client import connect

    return await connect(settings.temporal, settings.codec)


async def _stranded(settings: Settings) -> list[worker_deployment.Stranded]:
    return await worker_deployment.stranded(await _client(settings), settings)


async def _move(
    settings: Settings, ids: list[str], every: bool, target: WorkerDeploymentVersion
) -> list[str]:
    client = await _client(settings)
    if every:
        ids += [s.workflow_id for s in await worker_deployment.stranded(client, settings)]
    for workflow_id in ids:
        await worker_deployment.pin(client, workflow_id, target)
    return ids


def _name(settings: Settings) -> str:
    return worker_deployment.version_name(settings)


def advice(count: int, settings: Settings) -> str:
    """What to do about stranded workflows: the banner of ``make run`` says the same."""
    return (
        f"{count} running workflow(s) are pinned to an earlier build of the workflow code, which "
        f"no worker of this checkout runs ({_name(settings)}); they wait, nothing is lost. "
        "Either move them to this build: `vend builds move --all` (they replay on this code; "
        "one that cannot stops, visibly, and can be moved back with --to), or run the earlier "
        "build's worker until they finish (check out the commit they started on, `vend worker`)."
    )
