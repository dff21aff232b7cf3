"""One embedded stack for the whole session: real Temporal dev server, sandbox AWS, worker, API.

Tests drive the API over HTTP as a user would and check what the sandbox AWS holds. Every test
uses its own account names and emails, so tests never see each other's requests.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
import pytest
from botocore.config import Config
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowHistory

from common.auth import mint_dev_token
from common.codec import EncryptionCodec
from common.models import Role
from common.settings import AuthSettings, CodecSettings
from sandbox.stack import CODEC_KEY_ID, EmbeddedStack, StackConfig, free_port, running
from tests.waiting import eventually, wait_until

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
ARTIFACTS = ROOT / "test-artifacts"
# Each process of a parallel run (pytest-xdist) has a stack of its own, and its logs a folder.
LOGS = ARTIFACTS / "logs" / os.environ.get("PYTEST_XDIST_WORKER", "main")

USERS: dict[str, list[Role]] = {
    "alice": [Role.requester],
    "mallory": [Role.requester],
    "bob": [Role.approver],
    "dave": [Role.approver],
    "erin": [Role.requester, Role.approver],
    "carol": [Role.operator],
    "frank": [Role.admin],
}

CLOSE_WINDOW_SECONDS = 20

FAST = {
    "VEND_AWS__POLL_INTERVAL_SECONDS": "0.2",
    "VEND_AWS__MAX_BOTO_ATTEMPTS": "4",
    "VEND_STEPS__HEARTBEAT_TIMEOUT_SECONDS": "5",
    "VEND_STEPS__RETRY_INITIAL_SECONDS": "0.2",
    "VEND_STEPS__RETRY_MAXIMUM_SECONDS": "1",
    "VEND_STEPS__MAXIMUM_ATTEMPTS": "4",
    "VEND_LOG_LEVEL": "INFO",
    "VEND_LOG_FORMAT": "json",  # what production runs; test_observability reads the lines
    "VEND_WORKER__GRACEFUL_SHUTDOWN_SECONDS": "3",
    "VEND_STEPS__PREREQUISITE_WAIT_SECONDS": "1",
    # How long a step waits for a new account's role (the sandbox's role_ready_seconds is 1):
    # long enough for that, short enough that a missing role parks within a test's patience.
    "VEND_AWS__MEMBER_ROLE_WAIT_SECONDS": "10",
    # The close quota's rolling window, the same here as the sandbox's (see the stack fixture):
    # short, so the suite's many closures never fill it for long.
    "VEND_CLOSE_QUOTA__WINDOW_SECONDS": str(CLOSE_WINDOW_SECONDS),
    "VEND_CLOSE_QUOTA__REFUSED_RETRY_SECONDS": "2",
    # The suite is a few callers making thousands of calls (the fault run alone opens 100
    # requests as alice): the per-caller limits are off here and tested on an API of their own
    # (tests/test_api_limits.py).
    "VEND_LIMITS__REQUESTS_PER_MINUTE": "0",
    "VEND_LIMITS__CREATES_PER_MINUTE": "0",
    "VEND_LIMITS__OPEN_REQUESTS_PER_REQUESTER": "0",
    "VEND_LIMITS__OPEN_CHANGES_PER_ACCOUNT": "0",
    "VEND_LIMITS__PREVIEWS_PER_MINUTE": "0",
    "VEND_LIMITS__CHECKS_PER_MINUTE": "0",
    "VEND_DRIFT__MAX_RUNNING_CHECKS": "0",
    # Tests change what the doctor checks and look again at once: no shared report.
    "VEND_LIMITS__HEALTH_CACHE_SECONDS": "0",
}


def suite_stack_config(data: Path, log_dir: Path, **overrides: Any) -> StackConfig:
    """The suite's stack: its landing zone, fast latencies, the FAST settings, no saved state.
    The dev-server stack and the cluster stack (tests/cluster) are the same but for Temporal."""
    settings: dict[str, Any] = {
        "landing_zone": ROOT / "tests" / "landing_zone.yaml",
        "create_account_seconds": 0.5,
        "control_tower_seconds": 1.0,
        "stack_set_seconds": 0.5,
        "ws_sync_seconds": 0.5,
        "ssm_run_seconds": 0.5,
        "sunnypay_activation_seconds": 0.5,
        "extra_env": FAST,
        "log_dir": log_dir,
        "keep_sandbox_state": False,
    }
    return StackConfig.on_free_ports(data, **(settings | overrides))


def tune_sandbox(config: StackConfig) -> None:
    """The sandbox AWS as the suite runs it: a short close window (the same as the engine's,
    FAST) and a new account's role refusing AssumeRole for a moment, as on AWS (issue 30)."""
    httpx.post(
        f"{config.aws_endpoint}/_sandbox/config",
        json={
            "close_window_seconds": CLOSE_WINDOW_SECONDS,
            "close_account_seconds": 1,
            "role_ready_seconds": 1.0,
        },
        timeout=10,
    ).raise_for_status()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    config = suite_stack_config(
        tmp_path_factory.mktemp("stack"), LOGS, unregistered_ous=["Experiments/Unregistered"]
    )
    with running(config) as stack:
        tune_sandbox(config)
        yield stack


def codec_settings(stack: EmbeddedStack) -> CodecSettings:
    """The stack's payload encryption, for tests that read Temporal directly."""
    return CodecSettings(
        keys={CODEC_KEY_ID: stack.secrets["codec_key"]},  # type: ignore[dict-item]
        active_key_id=CODEC_KEY_ID,
    )


def plain_history_json(history: WorkflowHistory, codec: EncryptionCodec) -> str:
    """A history as JSON with every encrypted payload decrypted (for committing or searching)."""
    doc = json.loads(history.to_json())

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "data" in node and isinstance(node.get("metadata"), dict):
                payload = json_format.ParseDict(node, Payload())
                return json_format.MessageToDict(codec.decrypt(payload))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return json.dumps(walk(doc), indent=2)


@pytest.fixture(scope="session")
def tokens(stack: EmbeddedStack) -> dict[str, str]:
    auth = AuthSettings(dev_secret_file=stack.config.data_dir / "dev-secret")
    return {user: mint_dev_token(auth, user, roles) for user, roles in USERS.items()}


class Api:
    """The HTTP API as a user sees it, with a helper per role."""

    def __init__(self, base_url: str, tokens: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.tokens = tokens

    def call(self, method: str, path: str, user: str | None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if user is not None:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return self.http.request(method, path, headers=headers, **kw)

    def create(self, user: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
        return self.call("POST", "/v1/account-requests", user, json=body, **kw)

    def create_retrying(
        self, user: str, body: dict[str, Any], key: str, timeout: float = 30
    ) -> httpx.Response:
        """A create as a careful client makes it through faults and restarts: a 503 (the
        workflow service not reachable) retried with the same Idempotency-Key, so nothing is
        filed twice."""
        return eventually(
            lambda: self.create(user, body, headers={"Idempotency-Key": key}),
            lambda resp: resp.status_code != 503,
            f"{body['account_name']} accepted (503 retried)",
            timeout=timeout,
        )

    def get(self, user: str, request_id: str) -> httpx.Response:
        return self.call("GET", f"/v1/account-requests/{request_id}", user)

    def act(self, user: str, request_id: str, action: str, body: dict[str, Any]) -> httpx.Response:
        return self.call("POST", f"/v1/account-requests/{request_id}/{action}", user, json=body)

    def wait_listed(
        self, user: str, ids: set[str], params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """List until ``ids`` show up: visibility is eventually consistent, as for any client."""
        query = {"limit": 100, **(params or {})}
        page: dict[str, Any] = eventually(
            lambda: self.call("GET", "/v1/account-requests", user, params=query).json(),
            lambda page: ids <= {i["id"] for i in page["items"]},
            f"{ids} listed for {user} with {params}",
            timeout=15,
        )
        return page

    def wait_for(
        self, request_id: str, statuses: set[str], user: str = "carol", timeout: float = 60
    ) -> dict[str, Any]:
        state: dict[str, Any] = eventually(
            lambda: self.get(user, request_id).json(),
            lambda state: state.get("status") in statuses,
            f"request {request_id} {statuses}",
            timeout,
        )
        return state


@pytest.fixture(scope="session")
def api(stack: EmbeddedStack, tokens: dict[str, str]) -> Api:
    return Api(stack.config.api_url, tokens)


class Sandbox:
    """The sandbox AWS's control endpoints and an Organizations client to check its state."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.http = httpx.Client(base_url=endpoint, timeout=30)
        self.org: Any = boto3.client(
            "organizations",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )

    def fault(self, **rule: Any) -> None:
        self.http.post("/_sandbox/faults", json=rule).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_sandbox/faults").raise_for_status()

    def configure(self, **cfg: Any) -> None:
        """Sandbox settings, and how a test breaks the organization on purpose."""
        self.http.post("/_sandbox/config", json=cfg).raise_for_status()

    def fail_creation(self, email: str, reason: str, times: int | None = None) -> None:
        """Make CreateAccount for ``email`` end FAILED with ``reason`` (``times`` times)."""
        self.fault(
            service="organizations",
            action="CreateAccount",
            failure_reason=reason,
            match=email,
            times=times,
        )

    def release(self) -> int:
        return int(self.http.post("/_sandbox/release").json()["released"])

    def state(self) -> dict[str, Any]:
        return dict(self.http.get("/_sandbox/state").json())

    def control_tower(self) -> dict[str, Any]:
        return dict(self.http.get("/_sandbox/controltower").json())

    def reset_control_tower_metrics(self) -> None:
        self.http.post("/_sandbox/controltower/reset-metrics").raise_for_status()

    def client(self, service: str, config: Config | None = None) -> Any:
        make: Any = boto3.client
        return make(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
            config=config,
        )

    def stack_instances(self, stack_set: str, account_id: str) -> list[dict[str, Any]]:
        cfn = self.client("cloudformation")
        found = cfn.list_stack_instances(StackSetName=stack_set, StackInstanceAccount=account_id)[
            "Summaries"
        ]
        return [i for i in found if i["Account"] == account_id]

    def new_account(self, name: str) -> str:
        """An account made straight in Organizations (outside the engine), once it exists."""
        status = self.org.create_account(Email=f"aws+{name}@example.com", AccountName=name)[
            "CreateAccountStatus"
        ]
        status = eventually(
            lambda: self.org.describe_create_account_status(CreateAccountRequestId=status["Id"])[
                "CreateAccountStatus"
            ],
            lambda found: found["State"] != "IN_PROGRESS",
            f"account {name} created",
            timeout=30,
        )
        assert status["State"] == "SUCCEEDED", status
        return str(status["AccountId"])

    def member_credentials(self, account_id: str, session: str = "test-inspection") -> Any:
        """The member account's execution role, waited for as the engine waits: a new account's
        refuses AssumeRole for a moment (the sandbox's ``role_ready_seconds``), as on AWS."""
        sts = self.client("sts")

        def assumed() -> Any:
            try:
                return sts.assume_role(
                    RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
                    RoleSessionName=session,
                )["Credentials"]
            except sts.exceptions.ClientError as err:
                if "not assumable yet" not in str(err):
                    raise
                return None

        return eventually(assumed, lambda c: c is not None, "the member role assumable", 30)

    def member_client(self, account_id: str, service: str, region: str = "us-east-1") -> Any:
        """A client inside a member account, through the engine's own role there."""
        return self.client_with(self.member_credentials(account_id), service, region)

    def client_with(self, creds: Any, service: str, region: str = "us-east-1") -> Any:
        """A client of the sandbox on these temporary credentials (an assumed role's)."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    def calls(self, action: str) -> int:
        return int(self.state()["calls"].get(f"organizations:{action}", 0))

    def creations_for(self, name: str) -> list[dict[str, Any]]:
        return [c for c in self.state()["creations"] if c["AccountName"] == name]

    def accounts_with_email(self, email: str) -> list[dict[str, Any]]:
        out = []
        for page in self.org.get_paginator("list_accounts").paginate():
            out += [a for a in page["Accounts"] if a["Email"].lower() == email.lower()]
        return out

    def ou_path_of(self, account_id: str) -> str:
        names: list[str] = []
        child = account_id
        while True:
            parent = self.org.list_parents(ChildId=child)["Parents"][0]
            if parent["Type"] == "ROOT":
                return "/".join(reversed(names))
            names.append(
                self.org.describe_organizational_unit(OrganizationalUnitId=parent["Id"])[
                    "OrganizationalUnit"
                ]["Name"]
            )
            child = parent["Id"]

    def tags_of(self, account_id: str) -> dict[str, str]:
        tags = self.org.list_tags_for_resource(ResourceId=account_id)["Tags"]
        return {t["Key"]: t["Value"] for t in tags}


def vend_cli(api: Api, user: str, *args: str) -> Any:
    """``vend *args`` as ``user`` against the test stack's API (typer's runner, in process)."""
    from typer.testing import CliRunner

    from cli.main import app

    env = {"VEND_API_URL": str(api.http.base_url), "VEND_TOKEN": api.tokens[user]}
    return CliRunner().invoke(app, list(args), env=env)


def kill_worker_when(
    stack: EmbeddedStack, ready: Callable[[], bool], what: str, *workflows: str
) -> dict[tuple[str, str], int]:
    """SIGKILL the worker once ``ready()`` (an operation held in the sandbox, its step running)
    and an activity of ``workflows`` is polling (it has heartbeated), and start another: the
    crash tests' one move. Returns the polling activities' attempts, for ``resumed``."""
    wait_until(ready, what, timeout=90)
    wait_until(lambda: bool(heartbeating(stack, *workflows)), f"{what}: the activity polling")
    attempts = heartbeating(stack, *workflows)
    stack.processes["worker"].kill()
    stack.start_worker()
    return attempts


def heartbeating(stack: EmbeddedStack, *workflows: str) -> dict[tuple[str, str], int]:
    """(workflow, activity) -> attempt of the started activities that have heartbeated (so
    are polling AWS). A Control Tower step's activity runs in the coordinator's workflow."""
    return {
        (wf, a.activity_id): a.attempt
        for wf in workflows
        for a in described(stack, wf).pending_activities
        if a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        and a.HasField("last_heartbeat_time")
    }


def resumed(stack: EmbeddedStack, killed: dict[tuple[str, str], int], what: str) -> None:
    """Wait until an activity the killed worker ran is running again, on a later attempt (its
    heartbeat timed out and the new worker took it), while AWS still works on its operation."""

    def again() -> bool:
        return any(
            (wf, a.activity_id) in killed
            and a.attempt > killed[(wf, a.activity_id)]
            and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            for wf in {wf for wf, _ in killed}
            for a in described(stack, wf).pending_activities
        )

    wait_until(again, f"{what}: resumed by the new worker", timeout=60)


def decommission_when_managed(
    api: Api, account_id: str, name: str, user: str = "alice"
) -> dict[str, Any]:
    """File a decommission of a just-vended account, once the inventory has it."""
    wait_until(
        lambda: api.call("GET", f"/v1/accounts/{account_id}", user).status_code == 200,
        "the account in the inventory",
        timeout=30,
    )
    body = {"kind": "decommission", "justification": "done", "confirm_account_name": name}
    resp = api.call("POST", f"/v1/accounts/{account_id}/changes", user, json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def parked_request(
    api: Api, sandbox: Sandbox, body: dict[str, Any], reason: str = "ACCOUNT_LIMIT_EXCEEDED"
) -> dict[str, Any]:
    """A request (as alice) whose create_account fails once with ``reason``, once it waits for
    an operator and shows in the operators' list."""
    sandbox.fail_creation(body["account_email"], reason, times=1)
    req: dict[str, Any] = api.create("alice", body).json()
    api.wait_for(req["id"], {"waiting_for_operator"})
    api.wait_listed("carol", {req["id"]}, {"status": "waiting_for_operator"})
    return req


@pytest.fixture(scope="session")
def sandbox(stack: EmbeddedStack) -> Iterator[Sandbox]:
    yield Sandbox(stack.config.aws_endpoint)


class HttpEmulator:
    """The Workload Security or Sunny Pay emulator's control endpoints."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def fault(self, **rule: Any) -> None:
        self.http.post("/_sandbox/faults", json=rule).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_sandbox/faults").raise_for_status()

    def state(self) -> dict[str, Any]:
        return dict(self.http.get("/_sandbox/state").json())

    def configure(self, **cfg: Any) -> None:
        self.http.post("/_sandbox/config", json=cfg).raise_for_status()


@pytest.fixture(scope="session")
def workload_security(stack: EmbeddedStack) -> HttpEmulator:
    return HttpEmulator(stack.config.ws_url)


@pytest.fixture(scope="session")
def sunnypay(stack: EmbeddedStack) -> HttpEmulator:
    return HttpEmulator(stack.config.sunnypay_url)


@pytest.fixture(autouse=True)
def _sandbox_answers_as_aws_would(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each answer the sandbox AWS gave during a test that uses the stack fits botocore's output
    shape for its operation (sandbox/aws/contract.py): a violation fails that test."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack: EmbeddedStack = request.getfixturevalue("stack")
    url = f"{stack.config.aws_endpoint}/_sandbox/violations"
    before = len(httpx.get(url, timeout=10).json())
    yield
    found = httpx.get(url, timeout=10).json()[before:]
    assert found == [], "the sandbox answered what AWS could not: " + json.dumps(found[:10])


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sandbox" in request.fixturenames:
        sb: Sandbox = request.getfixturevalue("sandbox")
        sb.clear_faults()
        sb.release()
    for name in ("workload_security", "sunnypay"):
        if name in request.fixturenames:
            emulator: HttpEmulator = request.getfixturevalue(name)
            emulator.clear_faults()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--without-stack",
        action="store_true",
        help="only the tests that need no embedded stack (specifications, units, static checks)",
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Audits of what the whole suite did (every call the worker made was granted, every
    history replays, no secret leaked anywhere) go after the rest, in whatever order the rest
    runs (pytest-randomly shuffles it); the long resilience runs go first. Declared by a
    mark, not by a file's name. With ``--without-stack``, the tests that would start the
    embedded stack are left out."""
    if config.getoption("--without-stack"):
        kept = [
            i
            for i in items
            if "stack" not in getattr(i, "fixturenames", ())
            and i.get_closest_marker("cluster") is None
        ]
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
    # The few long resilience runs go first (in the random order among themselves): under
    # pytest-xdist the other processes take the rest meanwhile, and none of them is left to
    # start last, alone, while the others idle. Scheduling only: no test relies on it.
    # The cluster's tests go first too: their process starts the cluster (and builds it on a
    # new machine) while the others start on the rest.
    items.sort(
        key=lambda item: (
            item.get_closest_marker("suite_audit") is not None,
            item.get_closest_marker("cluster") is None,
            item.get_closest_marker("resilience") is None,
        )
    )


@pytest.fixture
def audited_work(api: Api, new_body: Callable[..., dict[str, Any]]) -> None:
    """What an audit reads: the suite's work, or, when the audit runs alone, a vend and its
    decommission of its own (so it audits something either way)."""
    done = api.call(
        "GET", "/v1/account-requests", "carol", params={"status": "completed", "limit": 1}
    ).json()["items"]
    if done:
        return
    body = new_body(organizational_unit="Experiments/Full", environment="dev")
    vend = api.wait_for(api.create("alice", body).json()["id"], {"completed"}, timeout=180)
    change = decommission_when_managed(api, vend["account_id"], body["account_name"])
    assert api.act("bob", change["id"], "approve", {}).status_code == 200
    api.wait_for(change["id"], {"completed"}, timeout=300)


def request_body(**overrides: Any) -> dict[str, Any]:
    """A valid request body with a unique name and email; keyword arguments override fields."""
    suffix = uuid.uuid4().hex[:10]
    body: dict[str, Any] = {
        "account_name": f"t-{suffix}",
        "account_email": f"aws+{suffix}@example.com",
        "organizational_unit": "Workloads/SDLC",
        "environment": "dev",
        "owner_email": "alice@example.com",
        "cost_center": "CC-1234",
        "justification": "integration test",
        "tags": {"team": "platform"},
        "workload_security": {"enabled": True, "policy": None},
        "billing": {"customer_id": "cust-001", "plan": None},
    }
    return body | overrides


@pytest.fixture
def new_body() -> Callable[..., dict[str, Any]]:
    return request_body


@pytest.fixture
def limited(stack: EmbeddedStack) -> Iterator[Callable[[dict[str, str]], httpx.Client]]:
    """An API process of its own with the given settings (low limits, say), beside the suite's
    main one: what it is started with does not reach any other test."""
    procs, clients = [], []

    def start(settings: dict[str, str]) -> httpx.Client:
        port = free_port()
        env = {**FAST, "VEND_LIMITS__MAX_BODY_BYTES": "65536", **settings}
        procs.append(stack.start_api(f"api-limited-{port}", port, env))
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for proc in procs:
        proc.stop()


def run_doctor(env: dict[str, str], timeout: float = 120) -> tuple[int, dict[str, dict[str, Any]]]:
    """``vend doctor --json`` as an operator runs it, in a process of its own with ``env``:
    its exit code and its checks by name."""
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "doctor", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    report = json.loads(out.stdout)
    return out.returncode, {c["name"]: c for c in report["checks"]}


def described(stack: EmbeddedStack, workflow_id: str) -> Any:
    """Temporal's description of a workflow (raw: pending activities and workflow task)."""

    async def describe() -> Any:
        client = await Client.connect(stack.config.temporal_address)
        return (await client.get_workflow_handle(workflow_id).describe()).raw_description

    return asyncio.run(describe())


def idle(stack: EmbeddedStack, workflow_id: str) -> bool:
    """The workflow waits on nothing but a condition: no activity and no workflow task pending,
    so whatever its last task decided has happened (a barrier for "nothing more will come")."""
    found = described(stack, workflow_id)
    return not found.pending_activities and not found.HasField("pending_workflow_task")
