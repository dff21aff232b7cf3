"""The API's view of a request is made of the state's own parts (no second validation), and is
exactly what validating the state's dump again would give."""

from __future__ import annotations

import uuid
import warnings
from datetime import UTC, datetime

import pytest

from api.schemas import AccountRequestView
from common.intake import check_against_landing_zone
from common.landing_zone import load_landing_zone
from common.models import (
    AccountRequest,
    ApprovalRecord,
    CompensationRecord,
    Principal,
    RequestState,
    RequestStatus,
    Role,
    StepError,
    StepStatus,
)
from common.request_start import vending_input
from common.settings import Settings
from common.step_plan import plan
from common.step_registry import STEPS, step_names


def _state(monkeypatch: pytest.MonkeyPatch) -> RequestState:
    monkeypatch.setenv("VEND_AUTH__MODE", "dev")
    monkeypatch.setenv("VEND_AUTH__DEV_SECRET", "x" * 48)
    settings = Settings()
    body = AccountRequest.model_validate(
        {
            "account_name": "t-view",
            "account_email": "aws+view@example.com",
            "organizational_unit": "Workloads/SDLC",
            "environment": "dev",
            "owner_email": "Owner@Example.com",
            "cost_center": "CC-1234",
            "justification": "view test",
            "tags": {"team": "platform"},
            "billing": {"customer_id": "cust-001"},
            "expected_instances": {"large": 2},
        }
    )
    user = Principal(sub="alice", email="alice@example.com", roles=[Role.requester])
    inp = vending_input(
        str(uuid.uuid4()),
        body,
        user,
        check_against_landing_zone(body, load_landing_zone(settings.landing_zone_file)),
        settings,
    )
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    state = RequestState(
        id=inp.request_id,
        status=RequestStatus.waiting_for_operator,
        request=body,
        requested_by="alice",
        created_at=now,
        updated_at=now,
        account_id="123456789012",
        approvals=[ApprovalRecord(by="bob", decision="approved", comment="ok", at=now)],
        approvals_required=1,
        steps=[
            {"name": name, "status": StepStatus.succeeded, "attempts": 1, "started_at": now}
            for name in step_names(inp.kind)
        ],
        compensations=[CompensationRecord(step="x", status="undone", detail="d", at=now)],
        refusal=StepError(type="T", message="internal"),
        plan=plan(inp),
        default_vpcs_deleted_in=["eu-west-1"],
    )
    state.steps[2].status = StepStatus.failed
    state.steps[2].error = StepError(type="AccessDenied", message="an SCP denies it")
    state.steps[2].detail = "queued (position 3)"
    return state


def test_the_view_is_what_validating_the_states_dump_would_give(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = _state(monkeypatch)
    view = AccountRequestView.of(state, "http://ui/x", stale=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a part of the wrong type warns as it is serialized
        dumped = view.model_dump_json()
    assert AccountRequestView.model_validate_json(dumped) == view
    shared = state.model_dump(mode="json", exclude={"refusal", "corrections", "steps"})
    shared.pop("default_vpcs_deleted_in")  # kept for a cancel, not shown
    assert {k: v for k, v in view.model_dump(mode="json").items() if k in shared} == shared
    assert view.steps[2].error == StepError(type="AccessDenied", message="an SCP denies it")
    # what a retry of each step may correct, from the step table
    assert [v.corrections for v in view.steps] == [
        list(STEPS[s.name].corrects) for s in state.steps
    ]
    assert any(v.corrections for v in view.steps)
    assert view.workflow_url == "http://ui/x" and view.stale
    assert "refusal" not in view.model_dump()
