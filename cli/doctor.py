"""``vend doctor``: is this organization ready for the first request? Read-only, all checks at
once, each with the fix; exit status 1 on any failed check (for pipelines, with ``--json``)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from common.landing_zone import load_landing_zone
from common.preflight import CheckStatus, PreflightReport
from common.settings import get_settings

MARK = {CheckStatus.ok: "ok", CheckStatus.warning: "warning", CheckStatus.failed: "FAILED"}
COLOUR = {
    CheckStatus.ok: typer.colors.GREEN,
    CheckStatus.warning: typer.colors.YELLOW,
    CheckStatus.failed: typer.colors.RED,
}


async def diagnose(landing_zone: Path | None) -> PreflightReport:
    from activities.preflight import preflight_from_settings
    from activities.temporal_checks import unreachable
    from common.temporal_client import connect

    settings = get_settings()
    lz = load_landing_zone(landing_zone or settings.landing_zone_file)
    try:
        temporal = await connect(settings.temporal, settings.codec)
    except Exception as err:  # reported as a check, not a crash
        report = await preflight_from_settings(settings, lz).run()
        report.checks.append(unreachable(settings.temporal, str(err)))
        return report
    return await preflight_from_settings(settings, lz, temporal).run()


def _use_embedded_stack(data_dir: Path) -> None:
    """The worker's environment of the stack `vend dev` runs (its sandbox endpoints and keys)."""
    try:
        from sandbox.stack import EmbeddedStack, StackConfig
    except ImportError as err:
        raise typer.BadParameter("the sandbox is not installed (make install does it)") from err
    if not (data_dir / "sandbox-secrets.json").exists():
        raise typer.BadParameter(f"no embedded stack's state in {data_dir}: start it with make run")
    os.environ.update(EmbeddedStack(StackConfig.of_data_dir(data_dir)).doctor_env())
    get_settings.cache_clear()


def _no_aws_credentials() -> bool:
    """Nothing points this shell at AWS: no sandbox endpoint, no credentials boto3 would find."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return False
    import boto3

    return boto3.Session().get_credentials() is None


def _embedded_stack_answers(data_dir: Path) -> bool:
    """A stack `make run` started from ``data_dir`` is up (its sandbox AWS answers)."""
    try:
        import httpx

        from sandbox.stack import StackConfig
    except ImportError:
        return False
    if not (data_dir / "sandbox-secrets.json").exists():
        return False
    try:
        endpoint = StackConfig.of_data_dir(data_dir).aws_endpoint
        return httpx.get(f"{endpoint}/_sandbox/state", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _choose_target(embedded: bool | None, data_dir: Path) -> None:
    """With neither --embedded nor --no-embedded: a shell with no AWS credentials beside a
    running embedded stack checks that stack (and says so first); one with nothing to check
    says what to add, instead of a page of "Unable to locate credentials"."""
    if embedded:
        _use_embedded_stack(data_dir)
        return
    if embedded is False or not _no_aws_credentials():
        return
    if _embedded_stack_answers(data_dir):
        typer.echo(f"checking the embedded stack in {data_dir} (make run); --no-embedded: not")
        _use_embedded_stack(data_dir)
        return
    typer.echo(
        "error: no AWS credentials in this shell and no embedded stack running in "
        f"{data_dir}: start one with make run (then vend doctor checks it), or give AWS "
        "credentials (AWS_PROFILE, or the worker's environment)",
        err=True,
    )
    raise typer.Exit(2)


def render(report: PreflightReport, colour: bool) -> str:
    lines = []
    width = max(len(c.name) for c in report.checks)
    for check in sorted(report.checks, key=lambda c: (c.status != CheckStatus.failed, c.name)):
        mark = f"{MARK[check.status]:<7}"
        if colour:
            mark = typer.style(mark, fg=COLOUR[check.status], bold=True)
        lines.append(f"{mark} {check.name:<{width}}  {check.found}")
        if check.fix and check.status != CheckStatus.ok:
            lines.append(f"{'':<7} {'':<{width}}  fix: {check.fix}")
    failed, warned = (
        len(report.failed()),
        sum(c.status == CheckStatus.warning for c in report.checks),
    )
    seconds = max((c.seconds for c in report.checks), default=0.0)
    lines.append(
        f"\n{len(report.checks)} checks: {failed} failed, {warned} warnings ({seconds:.1f} s)"
    )
    return "\n".join(lines)


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
    landing_zone: Annotated[
        Path | None, typer.Option(help="default: VEND_LANDING_ZONE_FILE")
    ] = None,
    embedded: Annotated[
        bool | None,
        typer.Option(
            "--embedded/--no-embedded",
            help="check the embedded stack that `make run` started, as its worker (default: "
            "when this shell has no AWS credentials and that stack is running)",
        ),
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="with --embedded: the stack's state")] = Path(
        ".data"
    ),
) -> None:
    """Check that the organization, Control Tower, StackSets, IAM, Workload Security, Sunny Pay
    and Temporal are ready, without changing anything; print each fix."""
    _choose_target(embedded, data_dir)
    report = asyncio.run(diagnose(landing_zone))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(render(report, colour=sys.stdout.isatty()))
    if not report.ok:
        raise typer.Exit(1)
