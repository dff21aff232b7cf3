"""``/docs`` (Swagger UI) and ``/redoc``, served from the installed package, never from a CDN.

AWS organizations are often run from networks without internet access, where FastAPI's default
pages (which load Swagger UI and ReDoc from a CDN) stay blank. The assets come from the
``fastapi-offline`` wheel; the pages start them with a script file of ours, so the strict CSP of
the web page applies here too (no inline script, nothing from another origin).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = files("fastapi_offline").joinpath("static")
ASSETS_PATH = "/docs-assets"

# Swagger UI sets styles from script (allowed); ReDoc's styled-components inject <style>
# elements, which need 'unsafe-inline' for styles only, never for scripts.
_BASE_CSP = (
    "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'; worker-src 'self' blob:"
)
SWAGGER_CSP = _BASE_CSP + "; style-src 'self'"
REDOC_CSP = _BASE_CSP + "; style-src 'self' 'unsafe-inline'"

router = APIRouter(include_in_schema=False)


def _page(title: str, body: str, csp: str) -> HTMLResponse:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<link rel='icon' href='{ASSETS_PATH}/favicon.png'>{body}</html>"
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return _page(
        "Account vending API",
        f"<link rel='stylesheet' href='{ASSETS_PATH}/swagger-ui.css'></head><body>"
        "<div id='swagger-ui'></div>"
        f"<script src='{ASSETS_PATH}/swagger-ui-bundle.js'></script>"
        "<script src='/static/docs.js'></script></body>",
        SWAGGER_CSP,
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return _page(
        "Account vending API",
        "</head><body><div id='redoc'></div>"
        f"<script src='{ASSETS_PATH}/redoc.standalone.js'></script>"
        "<script src='/static/redoc.js'></script></body>",
        REDOC_CSP,
    )


def assets() -> StaticFiles:
    return StaticFiles(directory=str(ASSETS))
