"""One way to connect to Temporal, so the API and the worker agree on the data converter."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from common.codec import data_converter
from common.settings import CodecSettings, TemporalSettings

WORKFLOW_ID_PREFIX = "account-request-"


def workflow_id(request_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{request_id}"


def transport(settings: TemporalSettings) -> dict[str, Any]:
    """``tls`` and ``api_key`` for ``Client.connect``, from the settings; refuses an API key or
    a client certificate over plaintext, and half a client certificate."""
    mtls = settings.tls_cert_file is not None or settings.tls_key_file is not None
    if mtls and (settings.tls_cert_file is None or settings.tls_key_file is None):
        raise ValueError(
            "mTLS needs both VEND_TEMPORAL__TLS_CERT_FILE and VEND_TEMPORAL__TLS_KEY_FILE"
        )
    wanted = settings.api_key is not None or mtls or settings.tls_ca_file is not None
    tls = wanted if settings.tls is None else settings.tls
    if not tls:
        if wanted:
            raise ValueError(
                "VEND_TEMPORAL__TLS=false with an API key or client certificate: credentials "
                "would travel in clear"
            )
        return {"tls": False}
    config = TLSConfig(
        server_root_ca_cert=settings.tls_ca_file.read_bytes() if settings.tls_ca_file else None,
        client_cert=settings.tls_cert_file.read_bytes() if settings.tls_cert_file else None,
        client_private_key=settings.tls_key_file.read_bytes() if settings.tls_key_file else None,
        domain=settings.tls_server_name,
    )
    options: dict[str, Any] = {"tls": config}
    if settings.api_key is not None:
        options["api_key"] = settings.api_key.get_secret_value()
    return options


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
        **transport(settings),
    )
