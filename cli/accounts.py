"""``vend accounts``: the inventory, and the changes asked of its accounts, over the API."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from cli.requests import ApiUrl, Token, call_api, plan_summary, summary

app = typer.Typer(no_args_is_help=True, help="List, inspect, change, adopt and close accounts.")


@app.command("list")
def list_accounts(
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
    organizational_unit: Annotated[str | None, typer.Option("--ou")] = None,
    status: Annotated[str | None, typer.Option(help="active, changing, closed, ...")] = None,
    owner: Annotated[str | None, typer.Option(help="the owner's email")] = None,
    drifted: Annotated[
        bool | None, typer.Option("--drifted/--in-sync", help="by the last drift check")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Managed accounts."""
    params: dict[str, Any] = {"limit": limit}
    for key, value in (("organizational_unit", organizational_unit), ("status", status)):
        if value:
            params[key] = value
    if owner:
        params["owner"] = owner
    if drifted is not None:
        params["drifted"] = str(drifted).lower()
    page = call_api(api_url, token, "GET", "/v1/accounts", params=params)
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    for item in page["items"]:
        typer.echo(
            f"{item['account_id']}  {item['status']:<16} {item['account_name'] or '-':<28} "
            f"{item['organizational_unit'] or '-':<22} {item['environment'] or '-':<8} "
            f"{'DRIFTED' if item.get('drifted') else ''}"
        )
    if not page["items"]:
        typer.echo("no managed accounts")


@app.command()
def show(
    account_id: str,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """An account's record and its whole audit trail."""
    account = call_api(api_url, token, "GET", f"/v1/accounts/{account_id}")
    if as_json:
        typer.echo(json.dumps(account, indent=2))
        return
    typer.echo(
        f"{account['account_id']}  {account['status']}  {account['account_name']}  "
        f"{account['organizational_unit']} ({account['environment']})\n"
        f"  owner {account['owner_email']}, cost center {account['cost_center']}\n"
        f"  control tower: {account['control_tower']}\n"
        f"  baselines: {', '.join(b['stack_set'] for b in account['baselines']) or '-'}\n"
        f"  workload security: {account['workload_security'] or '-'}\n"
        f"  billing: {account['billing'] or '-'}\n"
        f"  requests: {', '.join(account['requests'])}"
    )
    if account.get("current_change"):
        typer.echo(f"  changing now: {account['current_change']}")
    checked = account.get("last_checked_at") or "never"
    typer.echo(f"  drift (checked {checked}): {'none' if not account['drift'] else ''}")
    for item in account["drift"]:
        typer.echo(
            f"    {item['what']}: expected {item['expected']}, found {item['found']} "
            f"(since {item['since']})"
        )
    events = call_api(api_url, token, "GET", f"/v1/accounts/{account_id}/events")["items"]
    for event in events:
        typer.echo(
            f"  {event['at']}  {event['actor']:<8} {event['action']:<26} {event['outcome']}  "
            f"{event.get('detail') or ''}"
        )


@app.command()
def update(
    account_id: str,
    justification: Annotated[str, typer.Option()],
    organizational_unit: Annotated[str | None, typer.Option("--ou")] = None,
    environment: Annotated[str | None, typer.Option()] = None,
    account_name: Annotated[str | None, typer.Option("--name")] = None,
    owner_email: Annotated[str | None, typer.Option("--owner")] = None,
    cost_center: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value; replaces the tags")] = None,
    workload_security: Annotated[bool | None, typer.Option()] = None,
    customer_id: Annotated[str | None, typer.Option(help="the Sunny Pay customer")] = None,
    preview: Annotated[bool, typer.Option(help="say what it would do; file nothing")] = False,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Change an account (move, rename, owner, cost center, tags, protection, billing)."""
    body: dict[str, Any] = {"kind": "update", "justification": justification}
    for key, value in (
        ("organizational_unit", organizational_unit),
        ("environment", environment),
        ("account_name", account_name),
        ("owner_email", owner_email),
        ("cost_center", cost_center),
    ):
        if value is not None:
            body[key] = value
    if tag is not None:
        body["tags"] = dict(t.split("=", 1) for t in tag)
    if workload_security is not None:
        body["workload_security"] = {"enabled": workload_security}
    if customer_id is not None:
        body["billing"] = {"customer_id": customer_id}
    _change(api_url, token, account_id, body, preview)


def _change(api_url: str, token: str, account_id: str, body: dict[str, Any], preview: bool) -> None:
    path = f"/v1/accounts/{account_id}/changes"
    if preview:
        typer.echo(plan_summary(call_api(api_url, token, "POST", f"{path}/preview", json=body)))
        return
    typer.echo(summary(call_api(api_url, token, "POST", path, json=body)))


@app.command()
def decommission(
    account_id: str,
    justification: Annotated[str, typer.Option()],
    confirm: Annotated[str, typer.Option(help="the account's name, typed, to confirm")],
    preview: Annotated[bool, typer.Option(help="say what it would do; file nothing")] = False,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Close an account: quarantine, end billing, remove protection and baselines, close."""
    body = {"kind": "decommission", "justification": justification, "confirm_account_name": confirm}
    _change(api_url, token, account_id, body, preview)


@app.command()
def repair(
    account_id: str,
    justification: Annotated[str, typer.Option()],
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Put back what the last drift check found (runs only those steps; approved as an update)."""
    body = {"justification": justification}
    typer.echo(
        summary(call_api(api_url, token, "POST", f"/v1/accounts/{account_id}/repair", json=body))
    )


@app.command("check-drift")
def check_drift(
    account: Annotated[list[str] | None, typer.Option(help="only these accounts; repeat")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the check to end")] = True,
    detect: Annotated[
        bool | None,
        typer.Option(
            help="run DetectStackSetDrift on the baseline StackSets first "
            "(default: only when every account is checked)"
        ),
    ] = None,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Run the drift check now (operators), as the daily Schedule does."""
    body: dict[str, object] = {"account_ids": account or []}
    if detect is not None:
        body["detect_stack_set_drift"] = detect
    check = call_api(api_url, token, "POST", "/v1/drift-checks", json=body)
    while wait and check["status"] == "running":
        time.sleep(1)
        check = call_api(api_url, token, "GET", f"/v1/drift-checks/{check['id']}")
    result = check.get("result") or {}
    typer.echo(f"drift check {check['id']}: {check['status']}")
    if result:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(result["by_kind"].items())) or "-"
        typer.echo(
            f"  checked {result['checked']}, drifted {result['drifted']} ({kinds}), "
            f"not checked {len(result['unchecked'])}"
        )
        for detection in result.get("detections", []):
            typer.echo(f"  DetectStackSetDrift {detection['stack_set']}: {detection['status']}")
        typer.echo("  see them: vend accounts list --drifted")


@app.command()
def adopt(
    account_id: str,
    body_file: Annotated[
        typer.FileText,
        typer.Option(
            "--body",
            help="JSON: a request body (name and email as Organizations has "
            "them, OU, environment, owner, cost center, justification, billing)",
        ),
    ],
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Bring an account made outside the engine under management (operators)."""
    body = {**json.load(body_file), "account_id": account_id}
    req = call_api(api_url, token, "POST", "/v1/accounts/adopt", json=body)
    typer.echo(summary(req))
