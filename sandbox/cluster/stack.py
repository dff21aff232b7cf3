"""The engine on a Temporal cluster: the embedded stack's sandbox AWS, vendors, workers and
APIs, with Temporal replaced by a cluster of real processes (sandbox/cluster/temporal.py) that
every engine process reaches through the balancer, with a client certificate of its own."""

from __future__ import annotations

from sandbox.cluster.temporal import TemporalCluster
from sandbox.stack import EmbeddedStack, Process, StackConfig, free_port


class ClusterStack(EmbeddedStack):
    """Two workers and two APIs (``worker``, ``worker-2``, ``api``, ``api-2``) by default."""

    def __init__(self, config: StackConfig, cluster: TemporalCluster) -> None:
        config.host = cluster.host
        config.temporal_port = cluster.address_port
        super().__init__(config)
        self.cluster = cluster
        self.second_api_port = free_port()

    def env(self) -> dict[str, str]:
        # The API's certificate by default; the workers replace it with theirs (worker_env).
        return {**super().env(), **self.cluster.client_env("vend-api")}

    def worker_env(self) -> dict[str, str]:
        return {**super().worker_env(), **self.cluster.client_env("vend-worker")}

    def temporal_cli_env(self) -> dict[str, str]:
        return self.cluster.cli_env()

    def start_temporal(self) -> Process:
        raise RuntimeError("a cluster stack's Temporal is its cluster, started before it")

    @property
    def second_api_url(self) -> str:
        return f"http://{self.config.host}:{self.second_api_port}"

    def start_all(self) -> None:
        self.config.write_manifest()
        self.start_sandbox_aws()
        self.start_sunnypay()
        self.start_webhook_sink()
        self.start_worker()
        self.start_worker("worker-2", metrics_port=free_port())
        self.start_api()
        self.start_api("api-2", self.second_api_port)
