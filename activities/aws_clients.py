"""boto3 clients, built once per process and shared by activity threads (clients are thread-safe).

Endpoints come from botocore's own ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` variables:
unset, the same code talks to real AWS with the default credential chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from activities.call_pacing import CallPacer
from activities.heartbeats import keepalive
from common.settings import AwsSettings

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient


def client_config(settings: AwsSettings) -> Config:
    return Config(
        region_name=settings.region,
        retries={"mode": "standard", "max_attempts": settings.max_boto_attempts},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=64,
    )


_pacers: dict[tuple[tuple[str, float], ...], CallPacer] = {}


def _pacer(settings: AwsSettings) -> CallPacer:
    """One pacer per process for the same rates: every client of an API shares its rate."""
    key = tuple(sorted(settings.call_rates.items()))
    return _pacers.setdefault(key, CallPacer(dict(settings.call_rates)))


def _keep_activities_alive(client: Any, settings: AwsSettings) -> Any:
    client.meta.events.register("before-send", keepalive)
    return _pacer(settings).install(client)


def organizations_client(settings: AwsSettings) -> OrganizationsClient:
    org = boto3.session.Session().client("organizations", config=client_config(settings))
    return _keep_activities_alive(org, settings)  # type: ignore[no-any-return]


def client(service: str, settings: AwsSettings) -> Any:
    """Any other service's client, with the same retry and pool settings."""
    make: Any = boto3.session.Session().client
    return _keep_activities_alive(make(service, config=client_config(settings)), settings)
