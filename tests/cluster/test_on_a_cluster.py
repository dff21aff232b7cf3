"""The engine on a Temporal cluster of real processes (PostgreSQL, SQL visibility, two frontends,
two history nodes, mTLS), held to what it does on the dev server.

1. A Prod vend (every step), a decommission and a rollout complete; the lists, the approvals
   queue and the inventory answer from SQL visibility exactly as the dev server's do.
2. A history node SIGKILLed mid-steps and a frontend stopped under connected workers and APIs:
   every request completes, once, and the API errors no longer than the reconnection takes.
3. The search attributes fit SQL visibility, and ``vend doctor`` says so (and what is wrong
   on a namespace where they are missing or of another type).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from common.auth import mint_dev_token
from common.models import Role
from common.settings import AuthSettings
from sandbox.cluster.stack import ClusterStack
from sandbox.cluster.temporal import TemporalCluster
from sandbox.fleet import seed as fleet_seed
from sandbox.stack import EmbeddedStack, temporal_binary
from tests.conftest import Api, Sandbox, request_body, run_doctor
from tests.waiting import eventually, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]


def _body(requester_tag: str, **overrides: Any) -> dict[str, Any]:
    return request_body(owner_email=f"{requester_tag}@example.com", **overrides)


def _pages(api: Api, user: str, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": 100, **params, **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", path, user, params=query)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return items


def _with_user(api: Api, data_dir: Any, user: str, roles: list[Role]) -> Api:
    """The API as a user of this test's own (so the lists hold this test's requests only)."""
    token = mint_dev_token(AuthSettings(dev_secret_file=data_dir / "dev-secret"), user, roles)
    return Api(str(api.http.base_url), {**api.tokens, user: token})


def _approve_all(api: Api, request_id: str) -> None:
    for approver in ("bob", "dave"):
        if api.get("carol", request_id).json()["status"] != "pending_approval":
            return
        assert api.act(approver, request_id, "approve", {}).status_code == 200


def _what_visibility_answers(api: Api, data_dir: Any, sandbox: Sandbox) -> dict[str, Any]:
    """One scenario, observed through every list the portal reads from visibility: a Prod vend
    approved twice and completed, one request left waiting, one rejected; then the Prod account
    decommissioned. Returns what each list showed, with ids replaced by the requests' roles."""
    requester = f"parity-{uuid.uuid4().hex[:8]}"
    api = _with_user(api, data_dir, requester, [Role.requester])
    prod_body = _body(requester, organizational_unit="Workloads/Prod", environment="prod")
    prod = api.create(requester, prod_body)
    waiting = api.create(requester, _body(requester))
    rejected = api.create(requester, _body(requester))
    for created in (prod, waiting, rejected):
        assert created.status_code == 201, created.text
    ids = {
        "prod": prod.json()["id"],
        "waiting": waiting.json()["id"],
        "rejected": rejected.json()["id"],
    }
    label = {v: k for k, v in ids.items()}
    assert api.act("bob", ids["rejected"], "reject", {"reason": "not now"}).status_code == 200
    _approve_all(api, ids["prod"])
    vend = api.wait_for(ids["prod"], {"completed"}, timeout=240)
    assert {s["status"] for s in vend["steps"]} <= {"succeeded", "skipped"}, vend["steps"]
    assert [a["Id"] for a in sandbox.accounts_with_email(prod_body["account_email"])] == [
        vend["account_id"]
    ]
    assert sandbox.ou_path_of(vend["account_id"]) == "Workloads/Prod"

    def mine(items: list[dict[str, Any]], key: str = "id") -> list[str]:
        return [label[i[key]] for i in items if i.get(key) in label]

    def observe() -> dict[str, Any]:
        account = vend["account_id"]
        return {
            "all": mine(_pages(api, requester, "/v1/account-requests", {})),
            "completed": mine(
                _pages(api, requester, "/v1/account-requests", {"status": "completed"})
            ),
            "pending": mine(
                _pages(api, requester, "/v1/account-requests", {"status": "pending_approval"})
            ),
            "rejected": mine(
                _pages(api, requester, "/v1/account-requests", {"status": "rejected"})
            ),
            "bob's queue": mine(_pages(api, "bob", "/v1/approvals", {})),
            "inventory (OU)": [
                a["organizational_unit"]
                for a in _pages(
                    api, "carol", "/v1/accounts", {"organizational_unit": "Workloads/Prod"}
                )
                if a["account_id"] == account
            ],
            "inventory (owner)": [
                a["status"]
                for a in _pages(
                    api, requester, "/v1/accounts", {"owner": f"{requester}@example.com"}
                )
            ],
        }

    expected = {
        "all": ["waiting", "prod", "rejected"],  # the open one, then the closed, last closed first
        "completed": ["prod"],
        "pending": ["waiting"],
        "rejected": ["rejected"],
        "bob's queue": ["waiting"],
        "inventory (OU)": ["Workloads/Prod"],
        "inventory (owner)": ["active"],
    }
    seen = eventually(observe, lambda found: found == expected, "visibility caught up", 30)

    account = vend["account_id"]
    change = api.call(
        "POST",
        f"/v1/accounts/{account}/changes",
        requester,  # the owner
        json={
            "kind": "decommission",
            "justification": "parity over",
            "confirm_account_name": prod_body["account_name"],
        },
    )
    assert change.status_code == 201, change.text
    _approve_all(api, change.json()["id"])
    closed = api.wait_for(change.json()["id"], {"completed"}, timeout=240)
    assert {s["status"] for s in closed["steps"]} <= {"succeeded", "skipped"}
    assert sandbox.org.describe_account(AccountId=account)["Account"]["State"] == "SUSPENDED"
    seen["after decommission"] = eventually(
        lambda: [
            a["status"]
            for a in _pages(api, requester, "/v1/accounts", {"owner": f"{requester}@example.com"})
        ],
        lambda statuses: statuses == ["closed"],
        "the inventory shows it closed",
        30,
    )
    return seen


def test_a_prod_vend_and_a_decommission_list_as_on_the_dev_server(
    cluster_api: Api,
    cluster_stack: ClusterStack,
    cluster_sandbox: Sandbox,
    api: Api,
    stack: EmbeddedStack,
    sandbox: Sandbox,
) -> None:
    on_cluster = _what_visibility_answers(
        cluster_api, cluster_stack.config.data_dir, cluster_sandbox
    )
    on_dev_server = _what_visibility_answers(api, stack.config.data_dir, sandbox)
    assert on_cluster == on_dev_server


def test_a_rollout_completes_on_the_cluster(cluster_api: Api, cluster_sandbox: Sandbox) -> None:
    stack_set = "vend-rollout-probe"
    accounts = fleet_seed(
        cluster_sandbox.endpoint, "Experiments/Rollout", 3, stack_set, ["us-east-1", "eu-west-1"]
    )
    cfn = cluster_sandbox.client("cloudformation")
    template = str(cfn.describe_stack_set(StackSetName=stack_set)["StackSet"]["TemplateBody"])
    new_template = template + f"\n# cluster rollout {uuid.uuid4().hex}\n"
    body = {
        "baseline": "rollout-probe",
        "reason": "a new version on the cluster",
        "template_body": new_template,
        "waves": {"canary_accounts": 1, "growth": 2},
    }
    created = cluster_api.call("POST", "/v1/rollouts", "carol", json=body)
    assert created.status_code == 201, created.text
    rollout_id = created.json()["rollout_id"]
    if created.json()["status"] == "pending_approval":
        approved = cluster_api.call("POST", f"/v1/rollouts/{rollout_id}/approve", "bob")
        assert approved.status_code == 200, approved.text
    done = eventually(
        lambda: cluster_api.call("GET", f"/v1/rollouts/{rollout_id}", "carol").json(),
        lambda state: state["status"] in {"completed", "halted"},
        "the rollout ended",
        180,
    )
    assert done["status"] == "completed", done
    assert set(accounts) <= {a for w in done["waves"] for a in w["accounts"]}
    assert done["accounts_failed"] == []
    assert cfn.describe_stack_set(StackSetName=stack_set)["StackSet"]["TemplateBody"] == (
        new_template
    )
    listed = eventually(
        lambda: cluster_api.call("GET", "/v1/rollouts", "carol").json()["items"],
        lambda items: rollout_id in {r["rollout_id"] for r in items},
        "the rollout listed",
        30,
    )
    assert listed


class ApiWatch:
    """Reads the API continuously from another thread (a request's detail and the list, through
    both API processes) and records every failed read's time: the outage a user would see."""

    def __init__(self, api: Api, urls: list[str], request_id: str) -> None:
        self.clients = [httpx.Client(base_url=u, timeout=30) for u in urls]
        self.headers = {"Authorization": f"Bearer {api.tokens['carol']}"}
        self.request_id = request_id
        self.failures: list[tuple[float, str]] = []
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        paths = [f"/v1/account-requests/{self.request_id}", "/v1/account-requests?limit=20"]
        while not self._stop.is_set():
            for client in self.clients:
                for path in paths:
                    try:
                        got = client.get(path, headers=self.headers)
                        failed = got.status_code >= 500 and f"{got.status_code} {got.text[:200]}"
                    except httpx.HTTPError as err:
                        failed = f"{type(err).__name__}: {err}"
                    self.reads += 1
                    if failed:
                        self.failures.append((time.monotonic(), str(failed)))
            self._stop.wait(0.05)  # paced, and ends as soon as the watch does

    def __enter__(self) -> ApiWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        for client in self.clients:
            client.close()

    def longest_outage(self) -> float:
        """The longest run of consecutive failures, first to last (0 when none failed)."""
        longest, start, last = 0.0, None, None
        for at, _ in self.failures:
            if last is None or at - last > 1.0:  # a success came between (reads every ~50 ms)
                start = at
            last = at
            longest = max(longest, at - (start or at))
        return longest


@pytest.fixture
def node_restored(cluster: TemporalCluster) -> Iterator[Callable[[str], None]]:
    """Nodes a test took down come back after it, whatever happened (other tests share them)."""
    taken: list[str] = []
    yield taken.append
    for name in taken:
        node = cluster.node(name)
        if not node.running:
            cluster.start_node(node)


@pytest.mark.resilience
def test_a_history_node_killed_and_a_frontend_stopped_lose_and_duplicate_nothing(
    cluster: TemporalCluster,
    cluster_api: Api,
    cluster_stack: ClusterStack,
    cluster_sandbox: Sandbox,
    node_restored: Callable[[str], None],
) -> None:
    # Requests held mid-steps: every CreateAccount waits in the sandbox until released.
    cluster_sandbox.fault(service="organizations", action="CreateAccount", hold=True, times=6)
    bodies = [_body("alice", organizational_unit="Experiments/Full") for _ in range(6)]
    ids = []
    for body in bodies:
        created = _create_retrying(cluster_api, body)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    wait_until(
        lambda: cluster_sandbox.state()["held"].get("organizations", 0) >= 3,
        "requests mid create_account",
        90,
    )
    urls = [cluster_stack.config.api_url, cluster_stack.second_api_url]
    with ApiWatch(cluster_api, urls, ids[0]) as watch:
        # A history node dies: its shards move to the other once membership sees it gone.
        node_restored("history-1")
        cluster.kill("history-1")
        cluster_sandbox.release()
        # A frontend goes away under the connected workers and APIs (a rolling restart).
        node_restored("frontend-1")
        cluster.stop_node("frontend-1")
        done = [cluster_api.wait_for(i, {"completed"}, timeout=300) for i in ids]
        # Both come back (a replacement machine), and the work goes on across them.
        cluster.start_node(cluster.node("history-1"))
        cluster.start_node(cluster.node("frontend-1"))
        # A node just started may not serve yet: a careful client retries the 503.
        after = _create_retrying(
            cluster_api, _body("alice", organizational_unit="Experiments/Full")
        )
        assert after.status_code == 201, after.text
        cluster_api.wait_for(after.json()["id"], {"completed"}, timeout=180)
    for body, state in zip(bodies, done, strict=True):
        found = cluster_sandbox.accounts_with_email(body["account_email"])
        assert [a["Id"] for a in found] == [state["account_id"]], (body, found)
    outage = watch.longest_outage()
    print(f"API reads: {watch.reads}, failed: {len(watch.failures)}, longest outage {outage:.1f}s")
    assert watch.reads > 50
    # The SDK reconnects through the balancer to the other frontend; a read in flight on the
    # stopped one may fail, and no outage lasts longer than that reconnection.
    assert outage <= 10.0, watch.failures[:20]


def _create_retrying(api: Api, body: dict[str, Any]) -> httpx.Response:
    return api.create_retrying("alice", body, f"cluster-{body['account_name']}", timeout=60)


def _doctor(cluster_stack: ClusterStack, **env: str) -> dict[str, dict[str, Any]]:
    return run_doctor({**cluster_stack.doctor_env(), **env}, timeout=300)[1]


def test_the_search_attributes_fit_sql_visibility_and_the_doctor_says_what_is_wrong(
    cluster: TemporalCluster, cluster_stack: ClusterStack
) -> None:
    ready = _doctor(cluster_stack)["temporal.namespace"]
    assert ready["status"] == "ok", ready
    assert "SQL visibility: 8 of its 10 Keyword columns taken" in ready["found"]

    # A namespace set up by hand and wrong: one attribute missing, one of another type, and
    # the Keyword columns nearly full of someone else's.
    namespace = f"doctor-{uuid.uuid4().hex[:6]}"
    env = {**cluster.cli_env(), "TEMPORAL_NAMESPACE": namespace}

    def attribute(name: str, kind: str) -> None:
        subprocess.run(
            [
                temporal_binary(),
                "operator",
                "search-attribute",
                "create",
                "-n",
                namespace,
                "--name",
                name,
                "--type",
                kind,
            ],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            timeout=60,
        )

    subprocess.run(
        [temporal_binary(), "operator", "namespace", "create", "-n", namespace],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )
    wait_until(lambda: _namespace_ready(cluster, namespace), "the namespace known", 30)
    for name in (
        "VendingStatus",
        "VendingStep",
        "VendingRequester",
        "VendingOU",
        "VendingAccountId",
        "VendingKind",
    ):
        attribute(name, "Keyword")
    attribute("VendingOwner", "Text")
    for i in range(4):  # every Keyword column taken: VendingDrift cannot be created here
        attribute(f"TeamKeyword{i}", "Keyword")
    found = eventually(
        lambda: _doctor(cluster_stack, VEND_TEMPORAL__NAMESPACE=namespace)["temporal.namespace"],
        lambda check: "VendingDrift" in check["found"],
        "the doctor sees the namespace's attributes",
        30,
    )
    assert found["status"] == "failed"
    assert "missing: VendingDrift" in found["found"]
    assert "not Keyword: VendingOwner (TEXT)" in found["found"]
    assert (
        "SQL visibility holds 10 custom Keyword attributes per namespace: 10 are taken"
        in (found["found"])
    )
    assert f"--namespace {namespace} --name VendingDrift --type Keyword" in found["fix"]
    assert "search-attribute remove" in found["fix"]


def _namespace_ready(cluster: TemporalCluster, namespace: str) -> bool:
    env = {**os.environ, **cluster.cli_env(), "TEMPORAL_NAMESPACE": namespace}
    done = subprocess.run(
        [temporal_binary(), "operator", "search-attribute", "list", "-n", namespace],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0
