"""The sandbox's contract check (``sandbox/aws/contract.py``): what it catches in an answer.
The whole suite runs with it (``tests/conftest.py`` fails a test whose calls got an answer AWS
could not give); these show each kind of catch on answers made by hand."""

from __future__ import annotations

import json
from typing import Any

from sandbox.aws.contract import check
from sandbox.aws.ec2_answers import platforms
from sandbox.aws.identity_store import complete

JSON = [("Content-Type", "application/x-amz-json-1.1")]
REST_JSON = [("Content-Type", "application/json")]


def _operation(**operation: Any) -> bytes:
    base = {"operationIdentifier": "op-1", "operationType": "RESET_ENABLED_BASELINE"}
    return json.dumps({"baselineOperation": {**base, **operation}}).encode()


def _problems(service: str, action: str, body: bytes, headers: Any = REST_JSON) -> list[str]:
    return [f"{v.path}: {v.problem}" for v in check(service, action, 200, headers, body)]


def test_an_answer_that_fits_has_no_violation() -> None:
    assert _problems("controltower", "GetBaselineOperation", _operation(status="SUCCEEDED")) == []


def test_an_unknown_member_is_caught() -> None:
    found = _problems("controltower", "GetBaselineOperation", _operation(status="SUCCEEDED", Foo=1))
    assert found == [".baselineOperation.Foo: not a member of BaselineOperation"]


def test_a_missing_required_member_is_caught() -> None:
    found = _problems("controltower", "GetBaselineOperation", json.dumps({}).encode())
    assert found == [".baselineOperation: required member missing"]


def test_a_value_outside_its_enum_is_caught() -> None:
    found = _problems("controltower", "GetBaselineOperation", _operation(status="DONE"))
    assert found == [
        ".baselineOperation.status: 'DONE' is not one of BaselineOperationStatus's values"
    ]


def test_a_wrong_type_is_caught() -> None:
    body = json.dumps({"Account": {"Id": 123456789012, "State": "ACTIVE"}}).encode()
    found = _problems("organizations", "DescribeAccount", body, JSON)
    assert found == [".Account.Id: expected string, got int 123456789012"]


def test_an_xml_answer_is_read_as_its_client_reads_it() -> None:
    """Query protocol: the parsed answer is walked (enums, types, required members)."""
    xml = (
        b"<DescribeStackSetOperationResponse><DescribeStackSetOperationResult><StackSetOperation>"
        b"<OperationId>op</OperationId><Status>SOMEWHERE</Status></StackSetOperation>"
        b"</DescribeStackSetOperationResult></DescribeStackSetOperationResponse>"
    )
    found = _problems(
        "cloudformation", "DescribeStackSetOperation", xml, [("Content-Type", "text/xml")]
    )
    assert found == [
        ".StackSetOperation.Status: 'SOMEWHERE' is not one of StackSetOperationStatus's values"
    ]


def test_errors_and_unknown_operations_are_not_held_to_an_output_shape() -> None:
    assert check("controltower", "GetBaselineOperation", 400, REST_JSON, b"{}") == []
    assert check("nosuchservice", "Anything", 200, REST_JSON, b"{}") == []


def test_moto_identity_store_answers_are_given_the_members_the_model_requires() -> None:
    """moto answers GetGroupId and CreateUser without GroupArn, UserArn and Revision, which
    the model requires: the sandbox adds them in the model's form, and the answer then fits."""
    group = "12345678-1234-1234-1234-123456789012"
    moto = json.dumps({"IdentityStoreId": "d-1234567890", "GroupId": group}).encode()
    assert _problems("identitystore", "GetGroupId", moto, JSON) == [
        ".GroupArn: required member missing"
    ]
    completed = complete("GetGroupId", moto)
    assert _problems("identitystore", "GetGroupId", completed, JSON) == []
    assert json.loads(completed)["GroupArn"] == f"arn:aws:identitystore:::group/{group}"


def test_moto_ec2_platforms_are_answered_as_aws_does() -> None:
    """AWS says ``Windows`` or nothing (the rest is in platformDetails); moto says ``windows``
    and ``Linux/UNIX``, values outside the model's enum."""
    xml = (
        b"<DescribeImagesResponse><imagesSet>"
        b"<item><imageId>ami-1</imageId><platform>windows</platform></item>"
        b"<item><imageId>ami-2</imageId><platform>Linux/UNIX</platform></item>"
        b"</imagesSet></DescribeImagesResponse>"
    )
    assert len(_problems("ec2", "DescribeImages", xml, [("Content-Type", "text/xml")])) == 2
    fixed = platforms(xml)
    assert _problems("ec2", "DescribeImages", fixed, [("Content-Type", "text/xml")]) == []
    assert b"<platform>Windows</platform>" in fixed and b"Linux/UNIX" not in fixed
