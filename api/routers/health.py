from __future__ import annotations

import logging

from fastapi import APIRouter

from api.deps import ClientDep
from api.errors import Problem
from api.openapi import problems

router = APIRouter(tags=["health"])
log = logging.getLogger("vending.api")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (liveness)."""
    return {"status": "ok"}


@router.get("/readyz", responses=problems(503))
async def readyz(client: ClientDep) -> dict[str, str]:
    """Temporal is reachable, so requests can be served (readiness)."""
    try:
        healthy = await client.service_client.check_health()
    except Exception as err:
        # The cause goes to the log, not to whoever probes the endpoint (addresses, TLS details).
        log.warning("readyz: Temporal is not reachable: %s", err)
        raise Problem(503, "Unavailable", "Temporal is not reachable") from err
    if not healthy:
        raise Problem(503, "Unavailable", "Temporal reports itself unhealthy")
    return {"status": "ready"}
