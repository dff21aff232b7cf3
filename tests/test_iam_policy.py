"""The worker's IAM policy grants exactly what the activities call.

Static: tools/iam_policy reads every boto3 call in activities/ and the committed policies
must equal what it derives (a missing grant or an unused one fails). Dynamic: the sandbox
records every action made with the worker's access key (a suite audit: it runs after every
other test of its process, over what that process's stack did); each must be granted, which
catches a client the static table does not know.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.stack import WORKER_ACCESS_KEY
from tests.conftest import Sandbox
from tools import iam_policy


@pytest.mark.parametrize("name", sorted(iam_policy.documents()))
def test_committed_policies_are_what_the_code_needs(name: str) -> None:
    committed = (iam_policy.OUT / name).read_text()
    assert committed == iam_policy.render(iam_policy.documents()[name]), (
        f"deploy/iam/{name} is stale: run `python -m tools.iam_policy --write` and review the diff"
    )


def test_the_doctor_simulates_what_the_code_calls() -> None:
    """``vend doctor`` reads the actions from the wheel (deploy/ is not installed)."""
    assert iam_policy.ACTIONS_FILE.read_text() == iam_policy.render(
        iam_policy.actions_document()
    ), "activities/required_actions.json is stale: run `python -m tools.iam_policy --write`"


def _granted(policy: dict[str, object]) -> set[str]:
    statements = policy["Statement"]
    assert isinstance(statements, list)
    return {a for s in statements for a in s["Action"]}


@pytest.mark.suite_audit
def test_every_call_the_worker_made_in_the_suite_is_granted(
    sandbox: Sandbox, audited_work: None
) -> None:
    made = {
        iam_policy.iam_action(a)
        for a in sandbox.state()["actions_by_key"].get(WORKER_ACCESS_KEY, [])
    }
    assert "organizations:CreateAccount" in made  # the suite did run the worker
    granted = _granted(json.loads((iam_policy.OUT / "worker-policy.json").read_text()))
    missing = made - granted - iam_policy.NEEDS_NO_GRANT
    assert not missing, f"the worker called actions its policy does not grant: {sorted(missing)}"


def _with_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, code: str) -> None:
    for src in iam_policy.ACTIVITIES.glob("*.py"):
        (tmp_path / src.name).write_text(src.read_text())
    (tmp_path / name).write_text(code)
    monkeypatch.setattr(iam_policy, "ACTIVITIES", tmp_path)


def test_a_new_module_must_be_placed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_module(tmp_path, monkeypatch, "ec2.py", "def f(self):\n    self.ec2.run_instances()\n")
    with pytest.raises(LookupError, match=r"ec2\.py"):
        iam_policy.calls()


def test_a_new_call_changes_the_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = set(iam_policy.required_actions("management"))
    code = (iam_policy.ACTIVITIES / "stack_sets.py").read_text()
    code += "\n\ndef extra(self):\n    self.cloudformation.delete_stack_set(StackSetName='x')\n"
    _with_module(tmp_path, monkeypatch, "stack_sets.py", code)
    after = set(iam_policy.required_actions("management"))
    assert after - before == {"cloudformation:DeleteStackSet"}


def test_a_misspelt_call_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = (iam_policy.ACTIVITIES / "organizations.py").read_text()
    code += "\n\ndef extra(self):\n    self.client.create_acount()\n"
    _with_module(tmp_path, monkeypatch, "organizations.py", code)
    with pytest.raises(ValueError, match="create_acount"):
        iam_policy.calls()
