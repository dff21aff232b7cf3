"""``vend rollouts``: plan, approve, watch, pause, resume and cancel baseline rollouts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.requests import ApiUrl, Token, call_api

app = typer.Typer(no_args_is_help=True, help="Carry a baseline change to the accounts vended.")


def target(state: dict[str, Any]) -> str:
    """What the rollout changes, as a person names it."""
    if state.get("policy"):
        return f"WS policy {state['policy']}"
    return str(state.get("stack_set") or "-")


def progress(state: dict[str, Any]) -> str:
    """One line a person reads at a glance: where it is, what is left, how long."""
    eta = state.get("eta_seconds")
    left = state.get("accounts_left", 0)
    line = (
        f"{state['rollout_id']}  {state['status']:<16} {target(state):<28} "
        f"done {state['accounts_done']}/{state['accounts_total']}, "
        f"failed {len(state['accounts_failed'])}, skipped {state['accounts_skipped']}, "
        f"left {left}"
    )
    if state.get("accounts_created"):
        line += f", {state['accounts_created']} given the baseline"
    if eta is not None and state["status"] in ("running", "pending_approval", "paused"):
        line += f", ETA {eta:.0f}s"
    return line


def waves(state: dict[str, Any]) -> str:
    lines = []
    for wave in state["waves"]:
        ops = ", ".join(op["action"] for op in wave["operations"]) or "no operation"
        lines.append(
            f"  wave {wave['number']}: {len(wave['accounts'])} account(s), {wave['status']}"
            f" ({ops}; {len(wave['skipped_accounts'])} already current)"
        )
    if state.get("problem"):
        lines.append(f"  problem: {state['problem']}")
    return "\n".join(lines)


def template_lines(state: dict[str, Any]) -> str:
    """What an approver approves when the template changes: both digests, the OUs a new
    template reaches, and the diff."""
    if not state.get("template_changes"):
        return "  template: unchanged"
    lines = [
        f"  template: new sha256 {state.get('template_sha256')}",
        f"            replaces sha256 {state.get('current_template_sha256') or '-'}",
        f"            reaches every account of {', '.join(state.get('template_reach') or [])}"
        f" ({state['approvals_required']} approval(s))",
    ]
    if state.get("template_diff"):
        lines += ["", state["template_diff"].rstrip("\n")]
    return "\n".join(lines)


@app.command()
def start(
    reason: Annotated[str, typer.Option()],
    baseline: Annotated[
        str | None,
        typer.Option(
            help="the baseline, by its name in the landing zone's baselines (e.g. vend-audit-role)"
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(help="or: the Workload Security policy to give the protected accounts"),
    ] = None,
    template: Annotated[
        Path | None, typer.Option(help="the new template; default: the landing zone file's")
    ] = None,
    parameter: Annotated[
        list[str] | None, typer.Option(help="Key=value override on every instance; repeat")
    ] = None,
    organizational_unit: Annotated[
        list[str] | None, typer.Option("--ou", help="limit to these OUs; repeat")
    ] = None,
    account: Annotated[list[str] | None, typer.Option(help="limit to these accounts")] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="Key=value: only accounts tagged so; repeat")
    ] = None,
    canary: Annotated[int, typer.Option(min=1, help="accounts in the first wave")] = 1,
    growth: Annotated[int, typer.Option(min=1, help="each wave this many times the last")] = 10,
    max_failed: Annotated[int, typer.Option(min=0, help="failed accounts tolerated")] = 0,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Plan a rollout of a baseline (--baseline) or a Workload Security policy (--policy):
    prints the waves and operations it will run; it waits for approval."""
    body: dict[str, Any] = {
        "reason": reason,
        "waves": {"canary_accounts": canary, "growth": growth},
        "max_failed_accounts": max_failed,
        "organizational_units": organizational_unit or [],
        "account_ids": account or [],
        "tags": dict(t.split("=", 1) for t in tag or []),
    }
    if baseline is not None:
        body["baseline"] = baseline
        body["parameters"] = dict(p.split("=", 1) for p in parameter or [])
    if policy is not None:
        body["workload_security_policy"] = policy
    if template is not None:
        body["template_body"] = template.read_text()
    state = call_api(api_url, token, "POST", "/v1/rollouts", json=body)
    typer.echo(progress(state))
    typer.echo(waves(state))
    typer.echo(template_lines(state))


@app.command("list")
def list_rollouts(
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest rollouts."""
    page = call_api(api_url, token, "GET", "/v1/rollouts")
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    for item in page["items"]:
        typer.echo(
            f"{item['rollout_id']}  {item['status']:<16} {target(item):<28} "
            f"{item['accounts_done'] or 0}/{item['accounts_total'] or 0}"
        )
    if not page["items"]:
        typer.echo("no rollouts")


@app.command()
def show(
    rollout_id: str,
    watch: Annotated[bool, typer.Option(help="print progress until it ends")] = False,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A rollout's progress: accounts done, failed and left, the ETA, its waves."""
    while True:
        state = call_api(api_url, token, "GET", f"/v1/rollouts/{rollout_id}")
        if as_json:
            typer.echo(json.dumps(state, indent=2))
        else:
            typer.echo(progress(state))
        if not watch or state["status"] in ("completed", "cancelled", "invalid", "halted"):
            break
        time.sleep(2)
    if not as_json:
        typer.echo(waves(state))
        typer.echo(template_lines(state))


def _decide(action: str) -> Any:
    def decide(
        rollout_id: str,
        api_url: ApiUrl = "http://127.0.0.1:8000",
        token: Token = "",
    ) -> None:
        path = f"/v1/rollouts/{rollout_id}/{action}"
        typer.echo(progress(call_api(api_url, token, "POST", path)))

    decide.__doc__ = {
        "approve": "Approve a rollout (approvers; not the one who made it).",
        "pause": "Stop before the next wave (the running operation ends first).",
        "resume": "Go on with a paused or halted rollout.",
        "cancel": "Run no further wave (what ran stays).",
    }[action]
    return decide


for _action in ("approve", "pause", "resume", "cancel"):
    app.command(_action)(_decide(_action))
