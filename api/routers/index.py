"""First contact: what a client that asks the API for JSON at ``/`` or ``/v1`` gets.

A person who types the URL gets the page; a script or ``curl`` gets links to the page, the
OpenAPI document, every route, and how to get a token, instead of an HTML page it cannot use.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import SettingsDep
from api.schemas import ApiIndex
from api.services.index import api_index

router = APIRouter(tags=["index"])


@router.get("/v1", response_model=ApiIndex)
async def v1_index(request: Request, settings: SettingsDep) -> ApiIndex:
    """Links to the page, the OpenAPI document and every route; how to get a token."""
    return api_index(request, settings)
