"""The engine on a real Temporal cluster (sandbox/cluster): PostgreSQL with SQL visibility, two
frontends behind a balancer, two history nodes, matching and the worker service, mTLS on every
hop; two engine workers and two APIs on it, and a sandbox AWS of its own.

Every test here is marked ``cluster`` and shares one xdist group, so one test process starts
the cluster once. The first run on a machine builds the server from its Go module (minutes:
see the README); later runs reuse the build.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from common.auth import mint_dev_token
from common.settings import AuthSettings
from sandbox.cluster.build import built, go_available
from sandbox.cluster.postgres import bin_dir
from sandbox.cluster.stack import ClusterStack
from sandbox.cluster.temporal import TemporalCluster, running_cluster
from tests.conftest import LOGS, USERS, Api, Sandbox, suite_stack_config, tune_sandbox


def missing_prerequisites() -> list[str]:
    missing = []
    if built() is None and not go_available():
        missing.append("Go (to build the Temporal server)")
    if bin_dir() is None:
        missing.append("PostgreSQL's server (Debian: postgresql)")
    if shutil.which("runuser") is None:
        missing.append("runuser (util-linux)")
    return missing


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalCluster]:
    if missing := missing_prerequisites():
        pytest.skip(f"*** the cluster tests need {', '.join(missing)} ***")
    with running_cluster(tmp_path_factory.mktemp("cluster"), LOGS / "cluster") as found:
        yield found


@pytest.fixture(scope="session")
def cluster_stack(
    cluster: TemporalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterStack]:
    config = suite_stack_config(tmp_path_factory.mktemp("cluster-stack"), LOGS / "cluster")
    stack = ClusterStack(config, cluster)
    try:
        stack.start_all()
        tune_sandbox(config)
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="session")
def cluster_tokens(cluster_stack: ClusterStack) -> dict[str, str]:
    auth = AuthSettings(dev_secret_file=cluster_stack.config.data_dir / "dev-secret")
    return {user: mint_dev_token(auth, user, roles) for user, roles in USERS.items()}


@pytest.fixture(scope="session")
def cluster_api(cluster_stack: ClusterStack, cluster_tokens: dict[str, str]) -> Api:
    return Api(cluster_stack.config.api_url, cluster_tokens)


@pytest.fixture
def cluster_sandbox(cluster_stack: ClusterStack) -> Iterator[Sandbox]:
    sandbox = Sandbox(cluster_stack.config.aws_endpoint)
    yield sandbox
    sandbox.clear_faults()
    sandbox.release()


@pytest.fixture(autouse=True)
def _one_process_takes_the_cluster(request: pytest.FixtureRequest) -> None:
    """Under pytest-xdist every cluster test must run in the process that started the cluster
    (``--dist loadgroup`` and the ``cluster`` group): otherwise each process would start a
    cluster of its own. Fails loudly if the grouping stops working (a pytest or xdist change)."""
    grouped = getattr(request.config.option, "loadgroup", False)
    if grouped and not request.node.nodeid.endswith("@cluster"):
        pytest.fail("the cluster tests lost their xdist group: see pyproject.toml's pytest pin")
