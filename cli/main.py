"""``vend``: tokens for the embedded stack, and the processes of the engine."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.accounts import app as accounts_app
from cli.builds import app as builds_app
from cli.doctor import doctor
from cli.leases import app as leases_app
from cli.leases import pools_app
from cli.requests import app as requests_app
from cli.rollouts import app as rollouts_app
from common.models import Role
from common.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, help="AWS account vending engine.")
app.add_typer(requests_app, name="requests")
app.add_typer(accounts_app, name="accounts")
app.add_typer(rollouts_app, name="rollouts")
app.add_typer(leases_app, name="leases")
app.add_typer(pools_app, name="pools")
app.add_typer(builds_app, name="builds")
app.command()(doctor)


@app.command()
def token(
    subject: str,
    role: Annotated[list[Role], typer.Option("--role", "-r", help="repeat for several")],
    email: Annotated[str | None, typer.Option(help="defaults to SUBJECT@example.com")] = None,
    hours: Annotated[int, typer.Option(help="lifetime")] = 12,
) -> None:
    """Print a bearer token that the embedded stack (`vend dev`, dev auth mode) accepts, signed
    with its secret (.data/dev-secret, or VEND_AUTH__DEV_SECRET)."""
    from common.auth import mint_dev_token

    settings = get_settings()
    if "mode" in settings.auth.model_fields_set and settings.auth.mode != "dev":
        raise typer.BadParameter("tokens are minted only in dev auth mode; use your OIDC issuer")
    typer.echo(mint_dev_token(settings.auth, subject, role, email, hours * 3600))


@app.command()
def worker() -> None:
    """Run a worker (any number may run against one namespace)."""
    from worker import main

    main([])


@app.command()
def api(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from common import logging_setup
    from common.auth import refuse_unsafe_dev_auth

    settings = get_settings()
    try:
        refuse_unsafe_dev_auth(settings.auth, host)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--host") from err
    logging_setup.configure(
        settings.log_level, "api", settings.log_format, settings.third_party_log_level
    )
    uvicorn.run("api.app:create_app", **uvicorn_options(settings, host, port))


def uvicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """How ``vend api`` serves: the TLS proxy's addresses are trusted for ``X-Forwarded-Proto``
    and ``X-Forwarded-For`` only when named (``VEND_FORWARDED_ALLOW_IPS``); without them a
    proxy off loopback is not believed, and HSTS is never sent behind it."""
    return {
        "factory": True,
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,  # vending.api.access logs each request, with its id
        "timeout_graceful_shutdown": int(settings.api_graceful_shutdown_seconds),
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips or "127.0.0.1",
    }


@app.command()
def dev(
    data_dir: Annotated[str, typer.Option(help="state that survives restarts")] = ".data",
) -> None:
    """Start the embedded stack: Temporal dev server, sandbox AWS, worker and API."""
    try:
        from sandbox.stack import run_embedded_stack
    except ImportError as err:  # production wheels and images do not contain the sandbox
        raise typer.BadParameter(
            "the sandbox is not installed: pip install ./sandbox (make install does it)"
        ) from err
    run_embedded_stack(data_dir)


if __name__ == "__main__":
    app()
