from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClientDep
from api.errors import Problem
from api.openapi import problems

router = APIRouter(tags=["health"])


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
        raise Problem(503, "Unavailable", f"Temporal is not reachable: {err}") from err
    if not healthy:
        raise Problem(503, "Unavailable", "Temporal reports itself unhealthy")
    return {"status": "ready"}
