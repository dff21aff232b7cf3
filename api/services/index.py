"""What a client that asks the API for JSON at ``/`` or ``/v1`` gets: links to the page, the
OpenAPI document, every route, and how to get a token."""

from __future__ import annotations

from fastapi import Request

from api.schemas import ApiIndex, Route
from common.settings import Settings


def _token_help(settings: Settings) -> str:
    if settings.auth.mode == "dev":
        return (
            "dev auth mode: `vend token SUBJECT --role requester` (roles: requester, approver, "
            'operator, admin), or POST /ui/demo-login {"user": NAME} when demo sign-in is on; '
            "send it as `Authorization: Bearer TOKEN`"
        )
    return (
        f"a bearer token from your OIDC issuer ({settings.auth.issuer or 'configured issuer'}) "
        f"for audience {settings.auth.audience!r}, sent as `Authorization: Bearer TOKEN`"
    )


def api_index(request: Request, settings: Settings) -> ApiIndex:
    # From the OpenAPI document: the same list, and the same words, as /docs shows.
    paths: dict[str, dict[str, dict[str, object]]] = request.app.openapi().get("paths", {})
    routes = [
        Route(method=method.upper(), path=path, summary=str(op.get("summary") or "") or None)
        for path, operations in paths.items()
        for method, op in operations.items()
    ]
    return ApiIndex(
        name=request.app.title,
        version=request.app.version,
        page="/",
        openapi=request.app.openapi_url or "",
        docs="/docs",  # and /redoc: self-hosted, see api/routers/docs.py
        auth_mode=settings.auth.mode,
        how_to_get_a_token=_token_help(settings),
        routes=routes,
    )
