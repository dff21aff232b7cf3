"""Settings shared by the API, the worker and the sandbox.

Everything comes from environment variables prefixed ``VEND_`` (nested with ``__``) so the same
image runs anywhere; the landing zone, which is policy rather than plumbing, lives in a YAML file.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from vending.pricing import PriceTable

DEFAULT_LANDING_ZONE = Path(__file__).parent / "config" / "landing_zone.yaml"


class TemporalSettings(BaseModel):
    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "account-vending"
    ui_url: str = "http://127.0.0.1:8233"
    # How long the API waits for a worker to take an update before it answers 503.
    update_timeout_seconds: float = 30.0


class CodecSettings(BaseModel):
    """Encryption of workflow payloads (see vending/codec.py).

    ``keys`` maps key ids to base64 AES-256 keys; the active one encrypts, all of them decrypt.
    Without keys, payloads are stored as plain JSON (the embedded stack always sets one).
    """

    keys: dict[str, SecretStr] = Field(default_factory=dict)
    active_key_id: str | None = None
    # The API's /codec endpoint decrypts for the Temporal UI. It needs an operator's or admin's
    # token unless this is off (the embedded stack, on loopback only).
    endpoint_requires_token: bool = True
    # Browser origins allowed to call the codec endpoint (the Temporal UI's).
    ui_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8233"])


class AuthSettings(BaseModel):
    """Bearer-token verification.

    ``dev`` signs and verifies HS256 tokens with a local secret (the embedded stack); ``oidc``
    verifies the organization's issuer against its JWKS.
    """

    mode: str = "dev"
    dev_secret: SecretStr | None = None
    dev_secret_file: Path = Path(".data/dev-secret")
    issuer: str = "vend-dev"
    audience: str = "account-vending"
    jwks_url: str | None = None
    # How long fetched signing keys are trusted before the JWKS is read again; an unknown key
    # id (a rotation) refetches at once.
    jwks_cache_seconds: int = 300
    # An unknown key id refetches the JWKS at most this often, so tokens with made-up key ids
    # cannot turn the API into a flood against the issuer.
    jwks_refresh_cooldown_seconds: float = 30.0
    # Clock skew tolerated on exp/nbf/iat; bounded so a misconfiguration cannot make stolen
    # tokens live for hours.
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    # Where roles come from: a claim holding role names (a dotted path reaches nested claims,
    # e.g. "realm_access.roles"), and/or a groups claim mapped onto roles.
    roles_claim: str = "roles"
    groups_claim: str | None = None
    group_roles: dict[str, list[str]] = Field(default_factory=dict)
    email_claim: str = "email"


class AwsSettings(BaseModel):
    """How the worker talks to AWS.

    Endpoints are not here on purpose: botocore reads ``AWS_ENDPOINT_URL`` and
    ``AWS_ENDPOINT_URL_<SERVICE>`` itself, so pointing at the sandbox or at real AWS is a matter of
    environment, never of code.
    """

    region: str = "us-east-1"
    member_role_name: str = "OrganizationAccountAccessRole"
    poll_interval_seconds: float = 10.0
    max_boto_attempts: int = 5


class StepSettings(BaseModel):
    """Timeouts and retry budget handed to each new request (snapshotted into its workflow)."""

    start_to_close_seconds: float = 3600.0
    heartbeat_timeout_seconds: float = 60.0
    retry_initial_seconds: float = 1.0
    retry_maximum_seconds: float = 60.0
    maximum_attempts: int = 10


class ControlTowerLimits(BaseModel):
    """Organization-wide limits, enforced by the coordinator workflow across all workers."""

    account_operation_limit: int = Field(default=5, ge=1, le=10)  # AWS: 5, 10 on request
    ou_operation_timeout_seconds: float = 7200.0


class WorkloadSecuritySettings(BaseModel):
    """Trend Micro Cloud One Workload Security. The key is a secret: it is read by the worker
    only, and never enters a workflow input, result, history, log line or API response."""

    base_url: str = "https://workload.us-1.cloudone.trendmicro.com/api"
    api_key: SecretStr | None = None
    auth_header: str = "ApiKey"  # "ApiKey" (Cloud One key) or "api-secret-key" (legacy)
    trend_account_id: str = "147995105371"
    role_name: str = "VendWorkloadSecurityConnector"
    # "engine": made or corrected through OrganizationAccountAccessRole; "stackset": a baseline
    # StackSet deploys it and the engine only checks that it trusts the tenant correctly.
    role_source: str = "engine"
    regions: list[str] = Field(default_factory=lambda: ["us-east-1"])
    default_policy: str = "Base Policy"
    agent_install: str = "distributor"  # "distributor" (SSM Distributor package) or "script"
    distributor_package: str = "TrendMicro-CloudOneWorkloadSecurity-Agent"
    association_name: str = "vend-workload-security-agent"
    # Where the agent's tenant id and activation token live (management account Parameter Store).
    tenant_id_parameter: str = "/vend/workload-security/tenant-id"
    activation_token_parameter: str = "/vend/workload-security/activation-token"
    activation_url: str = "dsm://agents.workload.us-1.cloudone.trendmicro.com:443/"
    manager_url: str = "https://workload.us-1.cloudone.trendmicro.com:443/"
    timeout_seconds: float = 30.0


class BillingSettings(BaseModel):
    """Sunny Pay (the contract in shared/spec/sunny-pay.md); the key is a secret."""

    base_url: str = "https://api.sunnypay.example/"
    api_key: SecretStr | None = None
    poll_interval_seconds: float = 10.0
    timeout_seconds: float = 30.0


class NotificationSettings(BaseModel):
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None  # signs every delivery (HMAC-SHA256)
    timeout_seconds: float = 10.0


class WorkerSettings(BaseModel):
    max_concurrent_activities: int = 50
    graceful_shutdown_seconds: float = 30.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VEND_", env_nested_delimiter="__", extra="ignore")

    landing_zone_file: Path = DEFAULT_LANDING_ZONE
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    codec: CodecSettings = Field(default_factory=CodecSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    steps: StepSettings = Field(default_factory=StepSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    control_tower: ControlTowerLimits = Field(default_factory=ControlTowerLimits)
    workload_security: WorkloadSecuritySettings = Field(default_factory=WorkloadSecuritySettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    pricing: PriceTable = Field(default_factory=PriceTable)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    log_level: str = "INFO"
    # Signs list cursors. Set the same value on every API replica; unset, each process makes one.
    cursor_secret: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))


@lru_cache
def get_settings() -> Settings:
    return Settings()
