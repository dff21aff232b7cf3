"""``vend requests``: the operator's command line. It talks to the API with a bearer token, so it
follows the same rules as the web page and any script."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer

from common.pricing import CostEstimate
from common.pricing import summary as cost_summary

app = typer.Typer(no_args_is_help=True, help="List, inspect and act on account requests.")

ApiUrl = Annotated[str, typer.Option(envvar="VEND_API_URL", help="the API's base URL")]
Token = Annotated[str, typer.Option(envvar="VEND_TOKEN", help="a bearer token (vend token …)")]


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _checked(api_url: str, token: str) -> None:
    """A bearer token is a credential: it goes over TLS, or in plain HTTP only to this machine
    (the embedded stack). Without one, say so rather than send an empty header."""
    if not token.strip():
        typer.echo(
            "error: no token: pass --token or set VEND_TOKEN (`vend token SUBJECT --role ROLE` "
            "mints one for the embedded stack; make run prints the demo users')",
            err=True,
        )
        raise typer.Exit(2)
    url = httpx.URL(api_url)
    if url.scheme == "https":
        return
    host = url.host.lower()
    if url.scheme == "http" and (host in LOOPBACK_HOSTS or host.startswith("127.")):
        return
    typer.echo(
        f"error: refusing to send the token to {api_url}: use https (plain http only to "
        "localhost or 127.0.0.1)",
        err=True,
    )
    raise typer.Exit(2)


def _client(api_url: str, token: str) -> httpx.Client:
    _checked(api_url, token)
    return httpx.Client(
        base_url=api_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def _send(api_url: str, token: str, method: str, path: str, **kwargs: Any) -> Any:
    return call_api(api_url, token, method, f"/v1/account-requests{path}", **kwargs)


def call_api(api_url: str, token: str, method: str, path: str, **kwargs: Any) -> Any:
    """One API call; a problem answer is printed (with its fields) and exits non-zero."""
    with _client(api_url, token) as client:
        try:
            resp = client.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            typer.echo(f"error: the API at {api_url} is not reachable ({err})", err=True)
            raise typer.Exit(2) from err
    if resp.status_code >= 400:
        try:
            problem = resp.json()
            typer.echo(f"error {resp.status_code}: {problem.get('detail', resp.text)}", err=True)
            for item in problem.get("errors") or []:
                typer.echo(f"  {'.'.join(map(str, item['loc']))}: {item['msg']}", err=True)
        except ValueError:
            typer.echo(f"error {resp.status_code}: {resp.text}", err=True)
        raise typer.Exit(1)
    return resp.json()


def summary(req: dict[str, Any]) -> str:
    lines = [
        f"{req['id']}  {req.get('kind', 'vend')}  {req['status']}  "
        f"{req['request']['account_name']}  "
        f"→ {req['request']['organizational_unit']}  (by {req['requested_by']})",
        f"  account: {req.get('account_id') or '-'}   approvals still needed: "
        f"{req['approvals_remaining']}",
    ]
    if req.get("cost_estimate"):
        lines.append(f"  cost: {cost_summary(CostEstimate.model_validate(req['cost_estimate']))}")
    for step in req["steps"]:
        line = f"  {step['name']:<26} {step['status']:<10} attempts {step['attempts']}"
        if step.get("detail"):
            line += f"  {step['detail']}"
        if step.get("error"):
            line += f"\n      {step['error']['type']}: {step['error']['message']}"
        lines.append(line)
    if req.get("workflow_url"):
        lines.append(f"  workflow: {req['workflow_url']}")
    return "\n".join(lines)


def plan_summary(plan: dict[str, Any]) -> str:
    """A preview as a person reads it: each step, whether it runs (or why not), what it
    touches; then approvals, cost and a rough duration."""
    lines = [f"{plan['kind']}: {plan['approvals_required']} approval(s) needed"]
    for step in plan["steps"]:
        if not step["runs"]:
            lines.append(f"  {step['name']:<26} skipped: {step.get('reason') or ''}")
            continue
        lines.append(f"  {step['name']:<26} runs")
        for r in step["resources"]:
            lines.append(f"      {r['action']:<7} {r['kind']}: {r['name']}")
    cost = plan.get("cost_estimate")
    if cost:
        lines.append(f"  cost: {cost_summary(CostEstimate.model_validate(cost))}")
    if plan.get("eta_seconds") is not None:
        lines.append(f"  takes about {round(plan['eta_seconds'])} s once approved (rough)")
    return "\n".join(lines)


def _where(item: dict[str, Any], api_url: str, token: str) -> str:
    """What a person needs to know next about the request, by its status: a finished request
    has no current step, a parked one has a failed step, a queued one has a place in line."""
    status, step = item["status"], item.get("current_step")
    if status == "completed":
        return f"account {item.get('account_id') or '-'}"
    if status == "waiting_for_operator":
        return f"failed at {step or '-'}"
    if status == "pending_approval":
        return "waiting for approval"
    if status != "provisioning":
        return "-"
    # Only a running request can be in a queue; its place is in its state, not in the list.
    req = _send(api_url, token, "GET", f"/{item['id']}")
    running = next((s for s in req["steps"] if s["status"] == "running"), None)
    if running is None:
        return f"step {step or '-'}"
    if running.get("queue_position") is not None:
        return f"{running['name']}: queued, position {running['queue_position']}"
    return f"running {running['name']}"


@app.command()
def preview(
    body_file: Annotated[
        typer.FileText,
        typer.Option("--body", help="JSON: a new request's body, or with --account a change's"),
    ],
    account: Annotated[
        str | None, typer.Option(help="preview a change (update, decommission) of this account")
    ] = None,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What a request would do, before it is filed: nothing is written."""
    body = json.load(body_file)
    path = f"/v1/accounts/{account}/changes/preview" if account else "/v1/account-requests/preview"
    plan = call_api(api_url, token, "POST", path, json=body)
    typer.echo(json.dumps(plan, indent=2) if as_json else plan_summary(plan))


@app.command("list")
def list_requests(
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
    status: Annotated[str | None, typer.Option(help="e.g. waiting_for_operator")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Requests, open ones newest first."""
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    page = _send(api_url, token, "GET", "", params=params)
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    for item in page["items"]:
        typer.echo(
            f"{item['id']}  {item['status']:<21} {item['account_name'] or '-':<24} "
            f"{item['organizational_unit'] or '-':<22} {_where(item, api_url, token)}"
        )
    if not page["items"]:
        typer.echo("no requests")


@app.command()
def show(
    request_id: str,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A request's steps, attempts, errors and audit trail."""
    req = _send(api_url, token, "GET", f"/{request_id}")
    if as_json:
        typer.echo(json.dumps(req, indent=2))
        return
    typer.echo(summary(req))
    for event in _send(api_url, token, "GET", f"/{request_id}/events")["items"]:
        typer.echo(
            f"  {event['at']}  {event['actor']:<8} {event['action']:<24} "
            f"{event['outcome']}  {event.get('detail') or ''}"
        )


def _act(api_url: str, token: str, request_id: str, action: str, body: dict[str, Any]) -> None:
    req = _send(api_url, token, "POST", f"/{request_id}/{action}", json=body)
    typer.echo(summary(req))


@app.command()
def retry(
    request_id: str,
    step: Annotated[str, typer.Option(help="the failed step")],
    reason: Annotated[str | None, typer.Option()] = None,
    account_email: Annotated[
        str | None, typer.Option(help="create_account: use this email instead")
    ] = None,
    organizational_unit: Annotated[
        str | None, typer.Option(help="move_to_ou: place the account in this OU instead")
    ] = None,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Run a failed step again (operators), optionally with a corrected email or OU."""
    body: dict[str, str | None] = {"step": step, "reason": reason}
    if account_email is not None:
        body["account_email"] = account_email
    if organizational_unit is not None:
        body["organizational_unit"] = organizational_unit
    _act(api_url, token, request_id, "retry", body)


@app.command()
def skip(
    request_id: str,
    step: Annotated[str, typer.Option(help="the failed step")],
    reason: Annotated[str, typer.Option()],
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Skip a failed step that the landing zone marks skippable (operators)."""
    _act(api_url, token, request_id, "skip", {"step": step, "reason": reason})


@app.command()
def cancel(
    request_id: str,
    reason: Annotated[str, typer.Option()],
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Cancel a request (its requester or an operator)."""
    _act(api_url, token, request_id, "cancel", {"reason": reason})


@app.command()
def approve(
    request_id: str,
    comment: Annotated[str | None, typer.Option()] = None,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Approve a request (approvers)."""
    _act(api_url, token, request_id, "approve", {"comment": comment})


@app.command()
def reject(
    request_id: str,
    reason: Annotated[str, typer.Option()],
    api_url: ApiUrl = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Reject a request (approvers)."""
    _act(api_url, token, request_id, "reject", {"reason": reason})
