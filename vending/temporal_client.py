"""One way to connect to Temporal, so the API and the worker agree on the data converter."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from vending.settings import TemporalSettings

WORKFLOW_ID_PREFIX = "account-request-"


def workflow_id(request_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{request_id}"


async def connect(settings: TemporalSettings, *, lazy: bool = False) -> Client:
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
    )
