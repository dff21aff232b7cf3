"""One way to connect to Temporal, so the API and the worker agree on the data converter."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.runtime import Runtime

from common.codec import data_converter
from common.settings import CodecSettings, TemporalSettings

WORKFLOW_ID_PREFIX = "account-request-"


def workflow_id(request_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{request_id}"


async def connect(
    settings: TemporalSettings,
    codec: CodecSettings,
    *,
    lazy: bool = False,
    runtime: Runtime | None = None,
) -> Client:
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=data_converter(codec),
        lazy=lazy,
        runtime=runtime,
    )
