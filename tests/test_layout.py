"""The design card's layout holds: the names at the root, imports pointing down, no sandbox shipped.

What a newcomer reads on the card (``workflows/``, ``activities/``, ``api/``, ``worker.py``) is
where the code is; what they share (``common/``) depends on none of them; production installs
(the wheel, and so the image built from it) carry neither the sandbox nor moto.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

CARD = [
    "pyproject.toml",
    "workflows",
    "activities",
    "api",
    "worker.py",
    "tests",
    "docker-compose.yml",
]
# Which top-level packages each may import (besides the standard library and third parties).
MAY_IMPORT = {
    "common": set(),
    "activities": {"common"},
    "workflows": {"common", "activities"},
    "api": {"common"},
    "cli": {"common", "activities", "api", "worker", "sandbox"},  # it stands above them all
    "worker": {"common", "activities", "workflows"},
}
OURS = {"common", "activities", "workflows", "api", "cli", "worker", "sandbox", "tools", "bench"}


def test_the_card_names_stand_at_the_root() -> None:
    for name in CARD:
        assert (ROOT / name).exists(), f"{name} is on the design card but not at the root"
    leftovers = ROOT / "vending"
    assert not leftovers.exists(), "vending/ should be gone: its parts live at the root"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_imports_point_down(package: str) -> None:
    files = [ROOT / "worker.py"] if package == "worker" else sorted((ROOT / package).rglob("*.py"))
    assert files
    wrong = {}
    for path in files:
        bad = _imports(path) - MAY_IMPORT[package] - {package}
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(bad)
    assert wrong == {}, f"{package} may import only {sorted(MAY_IMPORT[package])}"


def test_the_api_process_loads_no_activity_module_nor_boto3() -> None:
    """The API talks to Temporal only: workflows by name, inputs from ``common``."""
    probe = (
        "import json, sys\n"
        "from api.app import create_app\n"
        "create_app()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('activities', 'workflows', 'boto3', 'botocore', 'sandbox', 'moto'))))\n"
    )
    env = {"VEND_AUTH__MODE": "dev", "VEND_AUTH__DEV_SECRET": "x" * 48, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources, so no earlier build in the checkout can leak into it."""
    source = tmp_path_factory.mktemp("source") / "tree"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".data", "build", "*.egg-info", "test-artifacts", "__pycache__"
        ),
    )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("account_vending-*.whl")
    return built


def test_the_wheel_ships_the_engine_and_not_the_sandbox(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("account_vending-")}
    assert tops == {"workflows", "activities", "api", "common", "cli", "worker.py"}
    assert "api/static/index.html" in names
    assert "common/config/landing_zone.yaml" in names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line.lower()
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert not [r for r in requires if "moto" in r or "aiosmtpd" in r or "sandbox" in r]


def test_the_production_image_installs_no_sandbox() -> None:
    """The runtime stage is built from the ``build`` stage, which copies the engine only."""
    text = (ROOT / "Dockerfile").read_text()
    build = text.split("FROM build AS build-sandbox")[0]
    assert "COPY sandbox" not in build and "./sandbox" not in build
    runtime = text.split("AS runtime")[1].split("AS sandbox")[0]
    assert "--from=build /opt/venv" in runtime and "build-sandbox" not in runtime


def test_worker_py_runs_as_a_script() -> None:
    out = subprocess.run(
        [sys.executable, "worker.py", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "worker" in out.stdout.lower()


def test_the_workflow_answers_to_the_names_the_api_uses() -> None:
    from temporalio.workflow import _Definition

    from common import vending_contract as contract
    from workflows.vending import AccountVending

    definition = _Definition.must_from_class(AccountVending)
    assert definition.name == contract.WORKFLOW
    assert set(definition.updates) == set(contract.UPDATES)
    assert set(definition.queries) == set(contract.QUERIES)


def test_the_account_workflow_answers_to_the_names_the_api_and_requests_use() -> None:
    from temporalio.workflow import _Definition

    from common import account_contract
    from workflows.managed_account import ManagedAccountWorkflow
    from workflows.vending import AccountVending

    definition = _Definition.must_from_class(ManagedAccountWorkflow)
    assert definition.name == account_contract.WORKFLOW
    assert set(definition.queries) == {account_contract.GET_ACCOUNT, account_contract.GET_EVENTS}
    assert set(definition.signals) == {
        account_contract.CHANGE_REQUESTED,
        account_contract.CHANGE_FINISHED,
        account_contract.DRIFT_CHECKED,
        account_contract.ROLLOUT_APPLIED,
    }
    # The request side answers the account's turn signal.
    assert account_contract.TURN_SIGNAL in _Definition.must_from_class(AccountVending).signals


def _module_graph() -> dict[str, set[str]]:
    """Our modules and which of ours each imports (``from x import y`` counts ``x.y`` when that
    is a module)."""
    modules = {}
    for top in ("common", "activities", "workflows", "api", "cli"):
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    modules["worker"] = ROOT / "worker.py"
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = (found & modules.keys()) - {name}
    return graph


def test_no_import_circle() -> None:
    """A circle makes the import order matter and the modules one lump: none may exist."""
    graph = _module_graph()
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done
    circles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    assert circles == [], "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_workflows_shows_its_workflow_types_at_a_glance() -> None:
    """Each module directly in ``workflows/`` defines exactly one workflow type, and every type
    is defined there; helpers live in the packages below (``steps/``, ``request/``)."""
    from temporalio.workflow import _Definition

    from worker import WORKFLOWS
    from workflows.claim_registry import ClaimRegistry

    defined: dict[str, list[str]] = {}
    for path in sorted((ROOT / "workflows").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        defined[path.stem] = [
            node.name
            for node in tree.body
            if isinstance(node, ast.ClassDef)
            and any("workflow.defn" in ast.unparse(d) for d in node.decorator_list)
        ]
    assert {stem: len(types) for stem, types in defined.items()} == dict.fromkeys(defined, 1)
    types = {cls.__name__ for cls in [*WORKFLOWS, ClaimRegistry]}
    assert types == {t for names in defined.values() for t in names}
    for cls in [*WORKFLOWS, ClaimRegistry]:  # Worker Versioning: each says how it upgrades
        assert _Definition.must_from_class(cls).versioning_behavior.name in {
            "PINNED",
            "AUTO_UPGRADE",
        }, cls.__name__


def test_no_workflow_patch_gates() -> None:
    """Workflows are versioned by worker deployment (common/worker_deployment.py)."""
    gates = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "workflows").rglob("*.py")
        if "patched(" in path.read_text() or "deprecate_patch(" in path.read_text()
    ]
    assert gates == []


def test_routers_are_thin() -> None:
    """Routers parse, authorize, call a service and answer: none imports another, and none
    holds a function longer than 40 lines (the business lives in ``api/services/``)."""
    crossing, long = {}, {}
    for path in sorted((ROOT / "api" / "routers").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("api.routers"):
                crossing[path.name] = node.module
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > 40:
                    long[f"{path.name}:{node.name}"] = lines
    assert crossing == {}
    assert long == {}


_SLEEPS = ("time.sleep", "asyncio.sleep")


def _sleeps(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text())
    lines = sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func) in _SLEEPS
    )
    return [f"{path.relative_to(root)}:{n}" for n in lines]


def test_no_test_sleeps_or_polls_by_hand(tmp_path: Path) -> None:
    """A test waits for a condition with a deadline, through tests/waiting.py (``wait_until``
    and ``eventually`` say what never happened), never for a time it hopes is enough: no sleep
    anywhere in tests/, not even in a poll loop of its own. (Time-skipping ``env.sleep`` moves
    the test server's clock and waits for nothing.)"""
    found = [f for path in sorted((ROOT / "tests").rglob("*.py")) for f in _sleeps(path)]
    assert found == []
    planted = tmp_path / "planted.py"  # the check bites, in a loop or not
    calls = "".join(f"    {sleep}(1)\n    while True:\n        {sleep}(1)\n" for sleep in _SLEEPS)
    planted.write_text(f"import asyncio, time\n\ndef f() -> None:\n{calls}")
    assert _sleeps(planted, tmp_path) == [f"planted.py:{n}" for n in (4, 6, 7, 9)]
