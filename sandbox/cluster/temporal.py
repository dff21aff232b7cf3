"""A Temporal cluster of real processes, started from deploy/temporal/server.yaml (the template
docker-compose.yml mounts) on a private PostgreSQL, with mTLS on every hop.

Two frontends behind a layer-4 balancer, two history nodes, one matching and one worker-service
node, by default. Nodes can be killed, stopped and started again while the engine runs on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.cluster.balancer import TcpBalancer
from sandbox.cluster.build import ServerBinaries, ensure_built
from sandbox.cluster.certs import SERVER_NAME, ClusterCertificates, make_certificates
from sandbox.cluster.postgres import PrivatePostgres
from sandbox.stack import Process, free_port, port_open, temporal_binary

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "temporal" / "server.yaml"
DYNAMIC_CONFIG = ROOT / "deploy" / "temporal" / "dynamicconfig.yaml"
SCHEMA_SCRIPT = ROOT / "deploy" / "temporal" / "schema.sh"
SETUP_SCRIPT = ROOT / "deploy" / "temporal" / "setup.sh"
START_SCRIPT = ROOT / "deploy" / "temporal" / "start.sh"
SERVICES = ("frontend", "history", "matching", "worker")


@dataclass
class Node:
    name: str  # frontend-1, history-2, ...
    service: str
    grpc_port: int
    membership_port: int
    http_port: int | None = None
    process: Process | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running


@dataclass
class ClusterLayout:
    frontends: int = 2
    history: int = 2
    matching: int = 1
    workers: int = 1
    history_shards: int = 16  # fixed for the life of a cluster; a real one takes 512 or more


@dataclass
class TemporalCluster:
    work_dir: Path
    log_dir: Path
    layout: ClusterLayout = field(default_factory=ClusterLayout)
    host: str = "127.0.0.1"
    namespace: str = "default"
    binaries: ServerBinaries | None = None
    postgres: PrivatePostgres | None = None
    certs: ClusterCertificates | None = None
    balancer: TcpBalancer | None = None
    nodes: list[Node] = field(default_factory=list)
    address_port: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------ what clients need
    @property
    def address(self) -> str:
        """What clients dial: the balancer in front of the frontends."""
        return f"{self.host}:{self.address_port}"

    def client_env(self, client: str = "operator") -> dict[str, str]:
        """The engine's settings for this cluster (its mTLS certificate named ``client``)."""
        assert self.certs is not None
        issued = self.certs.clients[client]
        return {
            "VEND_TEMPORAL__ADDRESS": self.address,
            "VEND_TEMPORAL__NAMESPACE": self.namespace,
            "VEND_TEMPORAL__TLS_CA_FILE": str(self.certs.ca),
            "VEND_TEMPORAL__TLS_CERT_FILE": str(issued.cert),
            "VEND_TEMPORAL__TLS_KEY_FILE": str(issued.key),
            "VEND_TEMPORAL__TLS_SERVER_NAME": SERVER_NAME,
        }

    def cli_env(self, client: str = "operator") -> dict[str, str]:
        """The temporal CLI's environment for this cluster."""
        assert self.certs is not None
        issued = self.certs.clients[client]
        return {
            "TEMPORAL_ADDRESS": self.address,
            "TEMPORAL_NAMESPACE": self.namespace,
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(self.certs.ca),
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(issued.cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(issued.key),
            "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
        }

    # ------------------------------------------------------------------ start and stop
    def start(self) -> TemporalCluster:
        began = time.monotonic()
        self.binaries = ensure_built()
        self.timings["build"] = time.monotonic() - began
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.certs = make_certificates(self.work_dir / "certs")
        began = time.monotonic()
        self.postgres = PrivatePostgres(port=free_port()).start()
        self._run_script(SCHEMA_SCRIPT, self._schema_env(), "schema")
        self.timings["database"] = time.monotonic() - began
        began = time.monotonic()
        self._plan_nodes()
        self.address_port = free_port()
        self.balancer = TcpBalancer(self.host, self.address_port, self._frontends_up).start()
        # The first node writes the cluster's metadata; nodes racing to do it at once fail
        # ("failed to initialize current cluster metadata"), so it starts alone, then the rest.
        first, *rest = self.nodes
        self.start_node(first, wait=False)
        self._wait_listening(first, 120)
        for node in rest:
            self.start_node(node, wait=False)
        for node in self.nodes:
            self._wait_serving(node, 120)
        self._run_script(SETUP_SCRIPT, self.cli_env(), "setup")
        self.timings["cluster"] = time.monotonic() - began
        return self

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.process is not None:
                node.process.stop(timeout=20)
        if self.balancer is not None:
            self.balancer.stop()
        if self.postgres is not None:
            self.postgres.stop()

    def _plan_nodes(self) -> None:
        counts = {
            "frontend": self.layout.frontends,
            "history": self.layout.history,
            "matching": self.layout.matching,
            "worker": self.layout.workers,
        }
        for service in SERVICES:
            for i in range(1, counts[service] + 1):
                node = Node(f"{service}-{i}", service, free_port(), free_port())
                if service == "frontend":
                    node.http_port = free_port()
                self.nodes.append(node)

    def _frontends_up(self) -> list[tuple[str, int]]:
        return [
            (self.host, n.grpc_port) for n in self.nodes if n.service == "frontend" and n.running
        ]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def node_env(self, node: Node) -> dict[str, str]:
        assert self.postgres is not None and self.certs is not None
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "TEMPORAL_DB_HOST": self.postgres.host,
            "TEMPORAL_DB_PORT": str(self.postgres.port),
            "TEMPORAL_DB_USER": self.postgres.user,
            "TEMPORAL_DB_PASSWORD": self.postgres.password,
            "TEMPORAL_HISTORY_SHARDS": str(self.layout.history_shards),
            "TEMPORAL_BIND_IP": self.host,
            "TEMPORAL_BROADCAST_ADDRESS": self.host,
            "TEMPORAL_CLUSTER_ADDRESS": self.address,
            "TEMPORAL_TLS_CA": str(self.certs.ca),
            "TEMPORAL_TLS_SERVER_CERT": str(self.certs.server.cert),
            "TEMPORAL_TLS_SERVER_KEY": str(self.certs.server.key),
            "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
            "TEMPORAL_DYNAMIC_CONFIG": str(DYNAMIC_CONFIG),
            "TEMPORAL_LOG_LEVEL": os.environ.get("VEND_TEMPORAL_CLUSTER_LOG_LEVEL", "warn"),
        }
        prefix = f"TEMPORAL_{node.service.upper()}"
        env[f"{prefix}_GRPC_PORT"] = str(node.grpc_port)
        env[f"{prefix}_MEMBERSHIP_PORT"] = str(node.membership_port)
        if node.http_port is not None:
            env["TEMPORAL_FRONTEND_HTTP_PORT"] = str(node.http_port)
        return env

    def start_node(self, node: Node, wait: bool = True) -> None:
        assert self.binaries is not None
        # The image's entrypoint (docker-compose.yml), with this machine's build on PATH.
        argv = ["sh", str(START_SCRIPT), node.service]
        env = self.node_env(node)
        env["PATH"] = os.pathsep.join([str(self._tool_dir()), env["PATH"]])
        log = (self.log_dir / f"temporal-{node.name}.log").open("a", encoding="utf-8")
        node.process = Process(f"temporal-{node.name}", argv, env, log).start()
        if wait:
            self._wait_serving(node, 120)

    def _wait_serving(self, node: Node, timeout: float) -> None:
        """A node serves once its gRPC port accepts; a frontend, once it answers the health
        check through mTLS (it has joined the ring and found history)."""
        self._wait(node, timeout, lambda: node.service != "frontend" or self._healthy(node))

    def _wait_listening(self, node: Node, timeout: float) -> None:
        self._wait(node, timeout, lambda: True)

    def _wait(self, node: Node, timeout: float, also: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not node.running:
                raise RuntimeError(f"Temporal {node.name} exited at start (see its log)")
            if port_open(self.host, node.grpc_port) and also():
                return
            time.sleep(0.2)
        raise RuntimeError(f"Temporal {node.name} did not serve within {timeout:.0f}s")

    def _healthy(self, node: Node) -> bool:
        env = {**os.environ, **self.cli_env(), "TEMPORAL_ADDRESS": f"{self.host}:{node.grpc_port}"}
        done = subprocess.run(
            [temporal_binary(), "operator", "cluster", "health"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.returncode == 0 and "SERVING" in done.stdout

    def kill(self, name: str) -> None:
        """SIGKILL one node: what a crashed machine looks like to the rest of the cluster."""
        node = self.node(name)
        assert node.process is not None
        node.process.kill()

    def stop_node(self, name: str) -> None:
        node = self.node(name)
        assert node.process is not None
        node.process.stop(timeout=30)

    # ------------------------------------------------------------------ helpers
    def _schema_env(self) -> dict[str, str]:
        assert self.postgres is not None and self.binaries is not None
        return {
            "SQL_HOST": self.postgres.host,
            "SQL_PORT": str(self.postgres.port),
            "SQL_USER": self.postgres.user,
            "SQL_PASSWORD": self.postgres.password,
            "TEMPORAL_SCHEMA_DIR": str(self.binaries.schema),
        }

    def _run_script(self, script: Path, env: dict[str, str], what: str) -> None:
        assert self.binaries is not None
        tools = os.pathsep.join(
            [str(self._tool_dir()), str(Path(temporal_binary()).parent), os.environ["PATH"]]
        )
        with (self.log_dir / f"temporal-{what}.log").open("a", encoding="utf-8") as log:
            subprocess.run(
                ["sh", str(script)],
                env={**os.environ, **env, "PATH": tools},
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=300,
            )

    def _tool_dir(self) -> Path:
        """A directory where the build's binaries answer to the names the scripts use."""
        assert self.binaries is not None
        tools = self.work_dir / "tools"
        tools.mkdir(exist_ok=True)
        for name, target in (
            ("temporal-sql-tool", self.binaries.sql_tool),
            ("temporal-server", self.binaries.server),
        ):
            link = tools / name
            if not link.exists():
                link.symlink_to(target)
            if shutil.which(name, path=str(tools)) is None:
                raise RuntimeError(f"{name} is not runnable")
        return tools


@contextmanager
def running_cluster(
    work_dir: Path, log_dir: Path, layout: ClusterLayout | None = None
) -> Iterator[TemporalCluster]:
    cluster = TemporalCluster(work_dir, log_dir, layout or ClusterLayout())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
