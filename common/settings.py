"""Settings shared by the API, the worker and the sandbox.

Everything comes from environment variables prefixed ``VEND_`` (nested with ``__``) so the same
image runs anywhere; the landing zone, which is policy rather than plumbing, lives in a YAML file.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.pricing import PriceTable

# SHA-256 of cursor secrets this repository ever held (deploy/compose/sandbox.env, 2026-11):
# refused wherever they turn up.
PUBLISHED_CURSOR_SECRETS = frozenset(
    {"c0bc2994f5230644df23592a6df681970328bc0867376dee65a79526c1b55a98"}
)

DEFAULT_LANDING_ZONE = Path(__file__).parent / "config" / "landing_zone.yaml"


class TemporalSettings(BaseModel):
    """Where Temporal is; every worker and API replica of one deployment uses the same."""

    address: str = "127.0.0.1:7233"  # host:port of the frontend
    namespace: str = "default"
    task_queue: str = "account-vending"  # workers poll it; the API starts workflows on it
    ui_url: str = "http://127.0.0.1:8233"  # for links to a request's workflow
    # How long the API waits for a worker to take an update before it answers 503.
    update_timeout_seconds: float = 30.0
    # How long a read waits for a worker to answer its query before it answers from the state
    # recorded at the last status change (marked stale).
    query_timeout_seconds: float = 5.0
    # Transport security. A self-hosted cluster: tls=true with its CA (and a client certificate
    # and key for mTLS). Temporal Cloud: an API key (which turns TLS on; a key is never sent in
    # clear), or mTLS with the namespace's certificate. Unset: plaintext, for loopback only.
    tls: bool | None = None  # None: on when an API key or a client certificate is set
    tls_ca_file: Path | None = None  # the server's CA (PEM); unset: the system's roots
    tls_cert_file: Path | None = None  # mTLS client certificate (PEM)
    tls_key_file: Path | None = None  # mTLS client key (PEM)
    tls_server_name: str | None = None  # when the address is not the certificate's name
    api_key: SecretStr | None = None  # Temporal Cloud API key


class CodecSettings(BaseModel):
    """Encryption of workflow payloads (see common/codec.py).

    ``keys`` maps key ids to base64 AES-256 keys; the active one encrypts, all of them decrypt.
    Without keys, payloads are stored as plain JSON (the embedded stack always sets one).
    """

    keys: dict[str, SecretStr] = Field(default_factory=dict)
    active_key_id: str | None = None
    # Refuse to read a payload that is not ciphertext (the compose stack turns this on): a
    # plaintext payload in an encrypted deployment is a misconfigured client or a forgery.
    require_encryption: bool = False
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

    # "oidc" (production) unless asked otherwise: `vend dev` (the embedded stack) asks for "dev".
    mode: Literal["dev", "oidc"] = "oidc"
    # Dev mode serves only a loopback address: self-minted tokens must not face a network.
    # This, by name, lets it bind elsewhere (the compose demo stack behind its own network).
    allow_insecure_dev_auth: bool = False
    dev_secret: SecretStr | None = None  # dev mode: HS256 secret (else read from the file)
    dev_secret_file: Path = Path(".data/dev-secret")
    issuer: str = "vend-dev"  # required `iss`
    audience: str = "account-vending"  # required `aud`
    jwks_url: str | None = None  # oidc mode: the issuer's JWKS (https; http only on loopback)
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
    groups_claim: str | None = None  # e.g. "groups"
    group_roles: dict[str, list[str]] = Field(default_factory=dict)  # group -> roles (JSON)
    email_claim: str = "email"
    # The email grants ownership rights only when the token says the issuer verified it
    # (email_verified: true). Off only for an issuer that verifies every address it issues
    # and never sends the claim (say so by name: VEND_AUTH__REQUIRE_EMAIL_VERIFIED=false).
    require_email_verified: bool = True


class AwsSettings(BaseModel):
    """How the worker talks to AWS.

    Endpoints are not here on purpose: botocore reads ``AWS_ENDPOINT_URL`` and
    ``AWS_ENDPOINT_URL_<SERVICE>`` itself, so pointing at the sandbox or at real AWS is a matter of
    environment, never of code.
    """

    region: str = "us-east-1"  # the management account's home region (Control Tower's)
    member_role_name: str = "OrganizationAccountAccessRole"  # assumed in member accounts
    # A new account's role may refuse AssumeRole for a few minutes (AWS says so): steps wait
    # this long for it, heartbeating, before they park with AccessDenied.
    member_role_wait_seconds: float = Field(default=600.0, ge=0)
    poll_interval_seconds: float = 10.0  # between looks at long AWS operations
    max_boto_attempts: int = 5  # botocore's own retries of one call (standard mode)
    # Calls a second this worker makes to an API, paced before AWS throttles them
    # (activities/call_pacing.py): {"organizations": 10, "controltower": 10}, by botocore's
    # service name or "service:Operation". AWS publishes none of these: none by default.
    call_rates: dict[str, float] = Field(default_factory=dict)


class StepSettings(BaseModel):
    """Timeouts and retry budget handed to each new request (snapshotted into its workflow)."""

    start_to_close_seconds: float = 3600.0  # one attempt of a step
    heartbeat_timeout_seconds: float = 60.0  # a silent worker is presumed dead after this
    retry_initial_seconds: float = 1.0
    retry_maximum_seconds: float = 60.0
    maximum_attempts: int = 10  # then the request waits for an operator
    # A step held back by a failed prerequisite (see `vend doctor`) tries again after this long,
    # doubling up to 10 times as long; it counts no attempt and pages nobody.
    prerequisite_wait_seconds: float = 30.0


class ControlTowerLimits(BaseModel):
    """Organization-wide limits, enforced by the coordinator workflow across all workers."""

    account_operation_limit: int = Field(default=5, ge=1, le=10)  # AWS: 5, 10 on request
    ou_operation_timeout_seconds: float = 7200.0  # one OU re-registration


class CloseQuotaSettings(BaseModel):
    """AWS lets an organization close the higher of 250 or 20 % of its member accounts (at most
    1,000) in a rolling 30 days; the engine queues its closures to stay inside that."""

    window_seconds: float = Field(default=30 * 86400.0, gt=0)
    # 0: the landing zone's close_quota if it states one, else AWS's rule from the
    # organization's size; set it (or the landing zone's) if AWS granted another.
    limit: int = Field(default=0, ge=0)
    # After AWS refuses a closure for its quota (closures made outside the engine count too),
    # ask again this often; the request waits in line meanwhile, failing nothing.
    refused_retry_seconds: float = Field(default=900.0, gt=0)


class DriftSettings(BaseModel):
    """The drift check's Schedule (``drift-check``): how often every managed account is looked
    at. 0 turns the schedule off (the check still runs when an operator asks)."""

    interval_seconds: float = Field(default=86400.0, ge=0)
    batch_size: int = Field(default=25, ge=1, le=200)  # accounts per inspecting activity
    parallel_batches: int = Field(default=4, ge=1, le=32)
    # How long the check's DetectStackSetDrift waits for a busy StackSet (a rollout holds it for
    # hours, say) before it reads the last detection's findings instead.
    detection_busy_wait_seconds: float = Field(default=900.0, ge=0, le=86_400)
    # Drift checks of named accounts running at once (each may run DetectStackSetDrift, which
    # holds the StackSet vends and rollouts wait on); past it, 429. 0: no cap.
    max_running_checks: int = Field(default=4, ge=0)


class WorkloadSecuritySettings(BaseModel):
    """Trend Micro Cloud One Workload Security. The key is a secret: it is read by the worker
    only, and never enters a workflow input, result, history, log line or API response."""

    base_url: str = "https://workload.us-1.cloudone.trendmicro.com/api"  # your region's
    api_key: SecretStr | None = None  # worker only
    auth_header: str = "ApiKey"  # "ApiKey" (Cloud One key) or "api-secret-key" (legacy)
    trend_account_id: str = "147995105371"  # Trend Micro's AWS account, trusted by the role
    role_name: str = "VendWorkloadSecurityConnector"  # the connector role in member accounts
    # "engine": made or corrected through OrganizationAccountAccessRole; "stackset": a baseline
    # StackSet deploys it and the engine only checks that it trusts the tenant correctly.
    role_source: str = "engine"
    regions: list[str] = Field(default_factory=lambda: ["us-east-1"])  # agent association
    default_policy: str = "Base Policy"  # when the request names none
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
    """Sunny Pay (the contract in docs/vendor-contracts.md); the key is a secret."""

    base_url: str = "https://api.sunnypay.example/"
    api_key: SecretStr | None = None  # worker only
    poll_interval_seconds: float = 10.0  # while a registration activates
    timeout_seconds: float = 30.0


class NotificationSettings(BaseModel):
    """Signed webhook on each state change that matters to a person."""

    webhook_url: str | None = None  # unset: no webhook
    # Signs every delivery (HMAC-SHA256 over "timestamp.body"); required with a webhook URL.
    webhook_secret: SecretStr | None = None
    timeout_seconds: float = 10.0
    # Email over SMTP; unset host: no email. The requester and the account owner hear about
    # their request; approvers when one needs them; operators when one waits for them.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False  # required with a username: credentials never go in clear
    smtp_ca_file: str | None = None  # a private CA for the relay's certificate
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "account-vending@localhost"
    approver_emails: list[str] = Field(default_factory=list)
    operator_emails: list[str] = Field(default_factory=list)
    # The web page's address, for links in emails (e.g. https://vend.example.com/).
    page_url: str | None = None

    @model_validator(mode="after")
    def _safe(self) -> NotificationSettings:
        if self.webhook_url and not (
            self.webhook_secret and self.webhook_secret.get_secret_value()
        ):
            raise ValueError(
                "VEND_NOTIFICATIONS__WEBHOOK_URL is set without "
                "VEND_NOTIFICATIONS__WEBHOOK_SECRET: receivers could not tell a delivery from a "
                "forgery"
            )
        if self.smtp_username and not self.smtp_starttls:
            raise ValueError(
                "VEND_NOTIFICATIONS__SMTP_USERNAME needs VEND_NOTIFICATIONS__SMTP_STARTTLS=true: "
                "credentials never go in clear"
            )
        return self


class WorkerSettings(BaseModel):
    """One worker process; run as many as the load needs against one task queue."""

    max_concurrent_activities: int = 50  # also the size of its activity thread pool
    max_concurrent_workflow_tasks: int = 100
    # Let the SDK scale its pollers with the load (server 1.32+) instead of a fixed number.
    poller_autoscaling: bool = False
    # How long a workflow task waits for the worker that has the workflow cached before any
    # worker takes it (and replays the history): shorter helps when the cached one is busy.
    sticky_queue_schedule_to_start_seconds: float = Field(default=10.0, gt=0)
    # Workflows kept in memory between their tasks; the rest are replayed from history when they
    # wake (an approval: a short history, a few ms). A waiting request costs ~360 KB cached: 300
    # keeps a worker near 470 MB however many wait (bench/waiting), where the SDK's 1000 took 745.
    max_cached_workflows: int = Field(default=300, ge=0)
    # On SIGTERM the worker stops polling and gives running activities this long to finish
    # (they heartbeat; what does not finish is retried by another worker).
    graceful_shutdown_seconds: float = 30.0
    # host:port where the worker serves Prometheus metrics (Temporal SDK metrics and the
    # vend_step_* ones); unset: no metrics endpoint.
    metrics_bind_address: str | None = None
    # A doctor's check that failed at start is run again at most this often, when a step it
    # holds back comes up; once it passes, the waiting steps go on.
    prerequisite_recheck_seconds: float = 30.0
    # Worker Versioning (docs/upgrades.md): the Temporal worker deployment this worker is part
    # of, and its build. Unset build: a digest of the workflow code, the same on every machine.
    deployment_name: str = Field(default="account-vending", min_length=1, pattern=r"^[\w-]+$")
    build_id: str | None = Field(default=None, min_length=1, pattern=r"^[\w.-]+$")
    # Make this build the deployment's current version when the worker starts (new workflows
    # start on it). A build that was current and has been replaced is never promoted again.
    # Off: promote by hand (``temporal worker deployment set-current-version``), e.g. to ramp.
    promote: bool = True


class LeaseSettings(BaseModel):
    """Sandbox leases (docs/leases.md): how ended leases' accounts are cleaned."""

    # The cleaner, run with the account's credentials in its environment: aws-nuke (the
    # maintained fork, github.com/ekristen/aws-nuke, v3) on AWS; the embedded stack runs the
    # sandbox's emulated cleaner, which takes the same arguments and configuration.
    cleaner_command: list[str] = Field(default_factory=lambda: ["aws-nuke"])
    cleaner_timeout_seconds: float = 3600.0  # one run; a run past it is stopped (ISB #101)
    cleaner_passes: int = Field(default=3, ge=1, le=10)  # runs before the account is quarantined
    # The roles a freeze never stops and the cleaner never deletes, besides the member role.
    engine_roles: list[str] = Field(
        default_factory=lambda: [
            "AWSControlTowerExecution",
            "aws-controltower-*",
            "AWSCloudFormationStackSetExecutionRole",
            "stacksets-exec-*",
        ]
    )
    # The IAM Identity Center access portal, shown on a lease as where to sign in.
    sign_in_url: str | None = None
    # The role AWS Budgets assumes to apply the freeze SCP when a lease's spend reaches its
    # freeze threshold (trusting budgets.amazonaws.com, allowed organizations:AttachPolicy).
    # Unset: AWS Budgets cannot freeze on its own; a lease's spend check freezes the account when
    # it sees the spend (Budgets refreshes a few times a day, so hours late on AWS).
    budget_action_role_arn: str | None = None
    # How often a lease reads its spend (Budgets and Cost Explorer): budget notices, and the
    # confirmation of a freeze AWS Budgets applied on its own.
    spend_check_seconds: float = Field(default=300.0, gt=0)


class ApiLimits(BaseModel):
    """Protections of the API itself. Rates are per caller (token ``sub``) and per API process;
    the cap on open requests is counted across the cluster. 0 turns a limit off."""

    max_body_bytes: int = Field(default=65536, ge=1024)  # larger bodies: 413, before parsing
    requests_per_minute: int = Field(default=600, ge=0)  # every authenticated call
    # Creating pages through Organizations and holds claims: a stricter rate, and a quota.
    creates_per_minute: int = Field(default=30, ge=0)
    open_requests_per_requester: int = Field(default=50, ge=0)  # vends and changes alike
    # Changes open on one account at once (each runs AWS steps; some OUs approve them alone).
    open_changes_per_account: int = Field(default=5, ge=0)
    # Previews ask the coordinators; checks (health, drift checks of named accounts) start
    # workflows that call AWS: each has a rate of its own.
    previews_per_minute: int = Field(default=60, ge=0)
    checks_per_minute: int = Field(default=10, ge=0)
    # How long one landing-zone health report answers every caller (one preflight workflow).
    health_cache_seconds: float = Field(default=15.0, ge=0)


class WebSettings(BaseModel):
    """The web page served at ``/``: how people sign in to it."""

    # Embedded stack only: a "sign in as" picker for these demo users (name -> roles). It works
    # only in dev auth mode; with OIDC the page signs in at the issuer instead.
    demo_login: bool = False
    demo_users: dict[str, list[str]] = Field(default_factory=dict)
    # OIDC authorization code flow with PKCE, done by the browser (a public client).
    oidc_client_id: str | None = None
    oidc_authorization_endpoint: str | None = None
    oidc_token_endpoint: str | None = None
    oidc_scope: str = "openid profile email"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VEND_", env_nested_delimiter="__", extra="ignore")

    landing_zone_file: Path = DEFAULT_LANDING_ZONE  # OUs, approvals, baselines (YAML)
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    codec: CodecSettings = Field(default_factory=CodecSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    steps: StepSettings = Field(default_factory=StepSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    control_tower: ControlTowerLimits = Field(default_factory=ControlTowerLimits)
    close_quota: CloseQuotaSettings = Field(default_factory=CloseQuotaSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    workload_security: WorkloadSecuritySettings = Field(default_factory=WorkloadSecuritySettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    pricing: PriceTable = Field(default_factory=PriceTable)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    leases: LeaseSettings = Field(default_factory=LeaseSettings)
    limits: ApiLimits = Field(default_factory=ApiLimits)
    log_level: str = "INFO"  # the engine's own loggers
    # botocore, httpx, uvicorn and other libraries; never below INFO for botocore (request bodies)
    third_party_log_level: str = "WARNING"
    # "json": one JSON object per line with request_id/workflow_id where known (production);
    # "text": the embedded stack's readable lines.
    log_format: Literal["text", "json"] = "text"
    # host:port where the API serves Prometheus metrics, apart from the API's own port (which
    # faces callers); unset: no API metrics endpoint.
    api_metrics_bind_address: str | None = None
    # The TLS-terminating proxy's addresses (comma-separated IPs or CIDRs, "*" for any), whose
    # X-Forwarded-Proto and X-Forwarded-For the API believes (`vend api`); unset: loopback only.
    # Behind a proxy elsewhere, set it, or HSTS is never sent and logs show the proxy's address.
    forwarded_allow_ips: str | None = None
    # On SIGTERM the API stops accepting and lets requests in flight finish for this long.
    api_graceful_shutdown_seconds: float = 10.0
    # Keys the owner search attribute (an HMAC of the owner's email). Set the same value on every
    # API replica; unset: derived from VEND_CURSOR_SECRET (set a key of its own to rotate the
    # cursor secret without re-keying every account's owner).
    owner_digest_key: SecretStr | None = None
    # Signs list cursors. Set the same value on every API replica; unset, each process makes one.
    cursor_secret: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))

    def owner_key(self) -> bytes:
        if self.owner_digest_key is not None:
            return self.owner_digest_key.get_secret_value().encode()
        base = self.cursor_secret.get_secret_value().encode()
        return hashlib.sha256(b"vend owner digest key\n" + base).digest()

    @field_validator("cursor_secret")
    @classmethod
    def _strong_cursor_secret(cls, value: SecretStr) -> SecretStr:
        """A cursor signed with a guessable or published secret can be forged (a cursor is a
        visibility page token, replayed to Temporal): as long as a token signing secret, and
        never one this repository ever held."""
        secret = value.get_secret_value()
        if len(secret) < 32:
            raise ValueError(
                "VEND_CURSOR_SECRET must be at least 32 characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if hashlib.sha256(secret.encode()).hexdigest() in PUBLISHED_CURSOR_SECRETS:
            raise ValueError("this VEND_CURSOR_SECRET was published (it is in the repository)")
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
