"""Dependencies as ``Annotated`` aliases, in the FastAPI docs' style."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.errors import Problem
from api.limits import RateLimiter
from common.auth import InvalidToken, TokenVerifier
from common.landing_zone import LandingZone
from common.models import Principal, Role
from common.settings import Settings

log = logging.getLogger("vending.api")
_bearer = HTTPBearer(auto_error=False, description="JWT with sub, email and roles claims")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


def get_landing_zone(request: Request) -> LandingZone:
    lz: LandingZone = request.app.state.landing_zone
    return lz


def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def get_verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[Client, Depends(get_client)]
LandingZoneDep = Annotated[LandingZone, Depends(get_landing_zone)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


async def current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    verifier: Annotated[TokenVerifier, Depends(get_verifier)],
    limiter: LimiterDep,
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "Unauthorized", "a bearer token is required", headers=_UNAUTHORIZED)
    try:
        user = await verifier.averify(credentials.credentials)
    except InvalidToken as err:
        # Why a token failed helps whoever forges one: say it only to the embedded stack's
        # developers; elsewhere it goes to the log.
        why = f": {err}" if verifier.explains_refusals else ""
        log.info("bearer token refused: %s", err)
        raise Problem(
            401, "Unauthorized", f"the bearer token is not valid{why}", headers=_UNAUTHORIZED
        ) from err
    limiter.take(user.sub, "request")
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that admits users holding any of ``roles`` (admins always)."""

    async def _check(user: CurrentUser) -> Principal:
        if not user.has(*roles, Role.admin):
            wanted = " or ".join(r.value for r in roles)
            raise Problem(403, "Forbidden", f"this action needs the {wanted} role")
        return user

    return _check


Requester = Annotated[Principal, Depends(require(Role.requester))]
Approver = Annotated[Principal, Depends(require(Role.approver))]
Operator = Annotated[Principal, Depends(require(Role.operator))]
# Who sees fleet operations (rollouts): operators run them, approvers decide on them.
Staff = Annotated[Principal, Depends(require(Role.approver, Role.operator))]
