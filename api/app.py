"""The app factory: one Temporal client per process, opened in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import errors, observability, openapi
from api.dev_auth_guard import DevAuthLoopbackOnly
from api.limits import BodySizeLimit, RateLimiter
from api.routers import (
    accounts,
    approvals,
    codec,
    docs,
    drift_checks,
    health,
    index,
    landing_zone,
    leases,
    requests,
    rollouts,
    web,
)
from api.security_headers import SecurityHeaders
from api.shared_answers import SharedAnswer
from common.auth import TokenVerifier
from common.codec import EncryptionCodec
from common.intake import skippable_steps
from common.landing_zone import load_landing_zone
from common.preflight import PreflightReport
from common.settings import Settings, get_settings
from common.temporal_client import connect


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Lazy: the API starts (and answers /readyz with 503) even while Temporal is down.
        app.state.temporal = await connect(settings.temporal, settings.codec, lazy=True)
        counting = None
        if settings.api_metrics_bind_address:
            observability.serve_metrics(settings.api_metrics_bind_address)
            counting = asyncio.create_task(observability.count_open_requests(app.state.temporal))
        yield
        if counting is not None:
            counting.cancel()

    app = FastAPI(
        title="Account vending",
        version="0.1.0",
        description="Request, approve and track AWS accounts. Errors are RFC 9457 problem details.",
        lifespan=lifespan,
        docs_url=None,  # self-hosted instead: api/routers/docs.py
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.landing_zone = load_landing_zone(settings.landing_zone_file)
    skippable_steps(app.state.landing_zone)  # a file naming no step: refused at start
    app.state.verifier = TokenVerifier(settings.auth)
    app.state.codec = EncryptionCodec.from_settings(settings.codec)
    limits = settings.limits
    app.state.limiter = RateLimiter(
        {
            "request": limits.requests_per_minute,
            "create": limits.creates_per_minute,
            "preview": limits.previews_per_minute,
            "check": limits.checks_per_minute,
        }
    )
    app.state.health = SharedAnswer[PreflightReport](ttl_seconds=limits.health_cache_seconds)
    # CSP on every page, CORS for /codec only (the Temporal UI's origin), HSTS over TLS.
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(DevAuthLoopbackOnly, auth=settings.auth)  # outermost: before any route
    errors.install(app)
    openapi.install(app)
    observability.install(app)
    app.include_router(health.router)
    app.include_router(requests.router)
    app.include_router(approvals.router)
    app.include_router(accounts.router)
    app.include_router(rollouts.router)
    app.include_router(leases.router)
    app.include_router(drift_checks.router)
    app.include_router(codec.router)
    app.include_router(landing_zone.router)
    app.include_router(index.router)
    app.include_router(web.router)
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=str(web.STATIC)), name="static")
    app.mount(docs.ASSETS_PATH, docs.assets(), name="docs-assets")
    return app
