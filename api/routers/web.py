"""The web page for requesters, approvers and operators, and what it needs to start.

The page is static (api/static, no build step, no CDN) and uses the same /v1 API with
the same bearer tokens and rules; nothing here decides anything. Sign-in: in the embedded stack
a demo-user picker (dev auth mode with ``VEND_WEB__DEMO_LOGIN``); in production the browser runs
the OIDC authorization code flow with PKCE against the configured issuer.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from api.deps import SettingsDep
from api.errors import Problem
from api.openapi import problems
from api.services.index import api_index
from common.auth import mint_dev_token
from common.models import Role

STATIC = files("api").joinpath("static")
router = APIRouter(tags=["web"])


def _wants_json(accept: str) -> bool:
    """A client that names JSON and not HTML is a program: browsers always ask for HTML."""
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return "text/html" not in kinds and any(
        k in ("application/json", "application/*") for k in kinds
    )


@router.get("/", include_in_schema=False, response_model=None)
async def index(request: Request, settings: SettingsDep) -> HTMLResponse | JSONResponse:
    if _wants_json(request.headers.get("accept", "")):
        return JSONResponse(api_index(request, settings).model_dump())
    return HTMLResponse(
        STATIC.joinpath("index.html").read_text(),
        # Everything the page loads is its own (CSP: api/security_headers.py, on every page).
        headers={"Referrer-Policy": "no-referrer"},
    )


class DemoUser(BaseModel):
    name: str
    roles: list[str]


class UiConfig(BaseModel):
    auth_mode: str
    demo_users: list[DemoUser]
    oidc: dict[str, str] | None
    temporal_ui_url: str


@router.get("/ui/config", response_model=UiConfig)
async def ui_config(settings: SettingsDep) -> UiConfig:
    """How the page signs in, and where the Temporal UI is (no secrets here)."""
    web = settings.web
    demo = web.demo_login and settings.auth.mode == "dev"
    oidc = None
    if settings.auth.mode == "oidc" and web.oidc_client_id and web.oidc_authorization_endpoint:
        oidc = {
            "client_id": web.oidc_client_id,
            "authorization_endpoint": web.oidc_authorization_endpoint,
            "token_endpoint": web.oidc_token_endpoint or "",
            "scope": web.oidc_scope,
            "audience": settings.auth.audience,
        }
    return UiConfig(
        auth_mode=settings.auth.mode,
        demo_users=[DemoUser(name=n, roles=r) for n, r in web.demo_users.items()] if demo else [],
        oidc=oidc,
        temporal_ui_url=settings.temporal.ui_url,
    )


class DemoLogin(BaseModel):
    user: str


@router.post("/ui/demo-login", responses=problems(400, 404, 413, 422))
async def demo_login(body: DemoLogin, request: Request, settings: SettingsDep) -> dict[str, Any]:
    """A token for a demo user: the embedded stack's sign-in. Absent (404) unless dev auth mode
    and demo login are both on, so no deployment with real identities can reach it."""
    web = settings.web
    if not (web.demo_login and settings.auth.mode == "dev"):
        raise Problem(404, "Not found", "demo sign-in is not enabled")
    roles = web.demo_users.get(body.user)
    if roles is None:
        raise Problem(404, "Not found", f"no demo user {body.user!r}")
    token = mint_dev_token(settings.auth, body.user, [Role(r) for r in roles], ttl_seconds=8 * 3600)
    return {"access_token": token, "token_type": "Bearer", "user": body.user, "roles": roles}
