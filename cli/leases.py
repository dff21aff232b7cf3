"""``vend leases`` and ``vend pools``: ask for a sandbox, see it, extend and end it; the
operators' view of the pools and their quarantined accounts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from cli.requests import ApiUrl, Token, call_api

app = typer.Typer(no_args_is_help=True, help="Sandbox accounts lent out from a pool.")
pools_app = typer.Typer(no_args_is_help=True, help="The lease pools (operators).")


def _left(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    hours = seconds / 3600
    return f"{hours / 24:.1f}d" if hours >= 48 else f"{hours:.1f}h"


def line(lease: dict[str, Any]) -> str:
    """One lease at a glance: status, account, time and budget left."""
    spent = lease.get("spent_usd")
    budget = (
        f"{spent or 0:.2f}/{lease['budget_usd']} USD"
        if spent is not None
        else (f"{lease['budget_usd']} USD")
    )
    return (
        f"{lease['lease_id']}  {lease['status']:<19} {lease['template']:<20} "
        f"{lease.get('account_id') or '-':<13} left {_left(lease.get('time_left_seconds')):<6} "
        f"budget {budget}  holder {lease['holder']}"
    )


def details(lease: dict[str, Any]) -> str:
    lines = [line(lease)]
    if lease.get("sign_in_url"):
        lines.append(f"  sign in: {lease['sign_in_url']}")
    if lease.get("ends_at"):
        lines.append(f"  ends at: {lease['ends_at']}")
    if lease.get("thresholds_reached"):
        lines.append(f"  thresholds reached: {', '.join(lease['thresholds_reached'])}")
    if lease.get("cost_explorer_usd") is not None:
        lines.append(f"  Cost Explorer (a day behind): {lease['cost_explorer_usd']:.2f} USD")
    for event in lease.get("events", []):
        lines.append(f"  {event['at']}  {event['by']:<10} {event['action']:<12} {event['detail']}")
    return "\n".join(lines)


@app.command("new")
def new_lease(
    template: Annotated[str, typer.Argument(help="a lease template of the landing zone")],
    justification: Annotated[str, typer.Option(help="what it is for")],
    duration: Annotated[str | None, typer.Option(help="ISO 8601, e.g. P3D")] = None,
    budget: Annotated[int | None, typer.Option(help="USD, within the template's")] = None,
    group: Annotated[str | None, typer.Option(help="lease for this group")] = None,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Ask for a sandbox (usable within seconds from a warm pool)."""
    body: dict[str, Any] = {"template": template, "justification": justification}
    if duration:
        body["duration"] = duration
    if budget:
        body["budget_usd"] = budget
    if group:
        body["for_group"] = group
    typer.echo(line(call_api(api_url, token, "POST", "/v1/leases", json=body)))


@app.command("list")
def list_leases(
    status: Annotated[str | None, typer.Option(help="only leases in this status")] = None,
    template: Annotated[str | None, typer.Option()] = None,
    holder: Annotated[str | None, typer.Option(help="approvers and operators")] = None,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Your leases (approvers and operators: everyone's)."""
    wanted = {"status": status, "template": template, "holder": holder}
    params = {k: v for k, v in wanted.items() if v}
    page = call_api(api_url, token, "GET", "/v1/leases", params=params)
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    for lease in page["items"]:
        typer.echo(line(lease))
    if not page["items"]:
        typer.echo("no leases")


@app.command()
def show(
    lease_id: str,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A lease: account, where to sign in, time and budget left, thresholds, events."""
    lease = call_api(api_url, token, "GET", f"/v1/leases/{lease_id}")
    typer.echo(json.dumps(lease, indent=2) if as_json else details(lease))


@app.command()
def end(
    lease_id: str,
    reason: Annotated[str, typer.Option()] = "",
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """End a lease now: access goes at once, the account is cleaned."""
    path = f"/v1/leases/{lease_id}/end"
    typer.echo(line(call_api(api_url, token, "POST", path, json={"reason": reason})))


@app.command()
def extend(
    lease_id: str,
    until: Annotated[datetime, typer.Option(help="the new end (ISO 8601, with its zone)")],
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """A later end, within the template's longest lease."""
    body = {"ends_at": until.isoformat()}
    typer.echo(line(call_api(api_url, token, "POST", f"/v1/leases/{lease_id}/extend", json=body)))


@app.command()
def unfreeze(
    lease_id: str,
    budget: Annotated[int | None, typer.Option(help="a higher budget (USD)")] = None,
    until: Annotated[datetime | None, typer.Option(help="a later end")] = None,
    reason: Annotated[str, typer.Option()] = "",
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Lift a freeze (approvers, operators): a frozen-by-budget lease needs a higher budget."""
    body: dict[str, Any] = {"reason": reason}
    if budget is not None:
        body["budget_usd"] = budget
    if until is not None:
        body["ends_at"] = until.isoformat()
    path = f"/v1/leases/{lease_id}/unfreeze"
    typer.echo(line(call_api(api_url, token, "POST", path, json=body)))


def _decide(action: str) -> Any:
    def decide(
        lease_id: str,
        reason: Annotated[str, typer.Option()] = "",
        api_url: ApiUrl = "http://127.0.0.1:8000",
        token: Token = "",
    ) -> None:
        path = f"/v1/leases/{lease_id}/{action}"
        typer.echo(line(call_api(api_url, token, "POST", path, json={"reason": reason})))

    decide.__doc__ = {
        "approve": "Approve a lease (approvers; never your own).",
        "reject": "Reject a lease waiting for approval.",
    }[action]
    return decide


for _action in ("approve", "reject"):
    app.command(_action)(_decide(_action))


@pools_app.command("list")
def list_pools(
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Each pool's accounts by state; quarantined ones with what was left behind."""
    page = call_api(api_url, token, "GET", "/v1/pools")
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    for pool in page["items"]:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(pool["counts"].items()))
        typer.echo(f"{pool['organizational_unit']}: {counts} (keeps {pool['min_available']})")
        for account in pool["accounts"]:
            if account["state"] == "quarantined":
                typer.echo(f"  {account['account_id']} quarantined: {account['reason']}")
                for left in account["left_behind"]:
                    typer.echo(f"    left: {left}")


def _operator(action: str) -> Any:
    def act(
        organizational_unit: str,
        account_id: str,
        reason: Annotated[str, typer.Option()] = "",
        api_url: ApiUrl = "http://127.0.0.1:8000",
        token: Token = "",
    ) -> None:
        path = f"/v1/pools/{organizational_unit}/accounts/{account_id}/{action}"
        account = call_api(api_url, token, "POST", path, json={"reason": reason})
        typer.echo(f"{account['account_id']}  {account['state']}  {account.get('reason') or ''}")

    act.__doc__ = {
        "retry": "Clean a quarantined account again (once its cause is fixed).",
        "retire": "Take an account out of the pool (close it with a decommission request).",
    }[action]
    return act


for _action in ("retry", "retire"):
    pools_app.command(_action)(_operator(_action))
