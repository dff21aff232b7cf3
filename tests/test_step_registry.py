"""A step is declared once (``common/step_registry.py``) and everything else is derived from it:
each kind's workflow table, the preview, the step names the API publishes, the worker's
activity registrations. Fast: no server, no sandbox."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity

from api.schemas import StepName
from common import step_registry
from common.intake import check_against_landing_zone, skippable_steps
from common.landing_zone import load_landing_zone
from common.models import AccountRequest, Principal, RequestKind, Role
from common.request_start import vending_input
from common.settings import Settings
from common.step_plan import plan
from common.step_registry import TABLES, step_names
from tests.conftest import ROOT
from worker import activity_methods, activity_objects
from workflows.steps.tables import BOUND, table_for


def _name(method: Any) -> str:
    definition = activity._Definition.from_callable(method)
    assert definition is not None and definition.name, method
    return definition.name


def _settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("VEND_AUTH__MODE", "dev")
    monkeypatch.setenv("VEND_AUTH__DEV_SECRET", "x" * 48)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unused")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unused")
    return Settings()


def test_each_kinds_table_is_the_registrys_order_bound_to_what_runs() -> None:
    for kind in RequestKind:
        assert list(table_for(kind)) == list(step_names(kind))
        assert set(BOUND[kind]) == {entry.step for entry in TABLES[kind]}
    # The vend reads top to bottom: account, place, governance, baselines, settings, the rest.
    assert step_names(RequestKind.vend)[:4] == (
        "create_account",
        "move_to_ou",
        "enroll_control_tower",
        "apply_baselines",
    )
    assert step_names(RequestKind.vend)[-2:] == ("enroll_workload_security", "register_billing")


def test_the_preview_and_the_published_step_names_come_from_the_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch)
    lz = load_landing_zone(settings.landing_zone_file)
    body = AccountRequest.model_validate(
        {
            "account_name": "t-registry",
            "account_email": "aws+registry@example.com",
            "organizational_unit": "Workloads/SDLC",
            "environment": "dev",
            "owner_email": "alice@example.com",
            "cost_center": "CC-1234",
            "justification": "registry test",
            "billing": {"customer_id": "cust-001"},
        }
    )
    user = Principal(sub="alice", email="alice@example.com", roles=[Role.requester])
    ou = check_against_landing_zone(body, lz)
    inp = vending_input(str(uuid.uuid4()), body, user, ou, settings)
    planned = plan(inp)
    assert [s.name for s in planned.steps] == list(step_names(RequestKind.vend))
    create = planned.steps[0]
    assert create.runs and create.resources[0].kind == "aws account"
    assert planned.eta_seconds == sum(
        step_registry.STEPS[s.name].typical_seconds for s in planned.steps if s.runs
    )
    assert {s.value for s in StepName} == set(step_registry.ALL_STEP_NAMES)
    assert skippable_steps(lz.model_copy(update={"skippable_steps": None})) == ["register_billing"]
    with pytest.raises(ValueError, match="names no step"):
        skippable_steps(lz.model_copy(update={"skippable_steps": ["no_such_step"]}))


def _unregistered(objects: list[object]) -> set[str]:
    registered = {_name(m) for m in activity_methods(objects)}
    declared = {
        _name(method)
        for kind in RequestKind
        for spec in table_for(kind).values()
        for method in spec.activities
    }
    return declared - registered


def test_every_activity_a_step_declares_is_registered_by_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objects = activity_objects(client=None, settings=_settings(monkeypatch))  # type: ignore[arg-type]
    assert _unregistered(objects) == set()
    # And the check bites: a worker that forgot the billing activities would be caught.
    without_billing = [o for o in objects if type(o).__name__ != "BillingActivities"]
    assert {"register_billing", "deregister_billing"} <= _unregistered(without_billing)


def _string_constants(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_a_step_name_is_written_once_outside_tests_and_docs() -> None:
    """Every other module names a step by its ``Step`` (``steps.ASSIGN_ACCESS.name``). The
    activities keep their own names (an activity type is not a step, even where they agree)."""
    places: dict[str, list[str]] = {name: [] for name in step_registry.ALL_STEP_NAMES}
    files = [ROOT / "worker.py"]
    for top in ("common", "workflows", "api", "cli"):
        files += sorted((ROOT / top).rglob("*.py"))
    for path in files:
        for value in _string_constants(path):
            if value in places:
                places[value].append(str(path.relative_to(ROOT)))
    for page in sorted((ROOT / "api" / "static").glob("*.js")):  # the page asks the API
        text = page.read_text()
        for name in places:
            if f'"{name}"' in text or f"'{name}'" in text:
                places[name].append(str(page.relative_to(ROOT)))
    assert {n: p for n, p in places.items() if p != ["common/step_registry.py"]} == {}
