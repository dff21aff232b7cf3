"""The remembered email check answers as pydantic's EmailStr does, and proves an address once."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, EmailStr, ValidationError

from common.email_address import Email, checked_email


class Ours(BaseModel):
    email: Email


class Pydantics(BaseModel):
    email: EmailStr


@pytest.mark.parametrize(
    "address", ["Team.Lead@Example.COM", "aws+b-1@example.com", "owner@sub.example.org"]
)
def test_a_good_address_comes_back_as_email_str_gives_it(address: str) -> None:
    assert Ours(email=address).email == Pydantics(email=address).email


@pytest.mark.parametrize("address", ["no-at-sign", "a@b", "two@@example.com", "x@-bad-.com"])
def test_a_bad_address_is_refused_each_time_with_email_str_s_message(address: str) -> None:
    for _ in range(2):  # a refusal is not remembered as an answer
        with pytest.raises(ValidationError) as ours:
            Ours(email=address)
        with pytest.raises(ValidationError) as theirs:
            Pydantics(email=address)
        assert ours.value.errors()[0]["msg"] == theirs.value.errors()[0]["msg"]


def test_an_address_read_back_again_is_not_checked_again() -> None:
    address = "read-back-many-times@example.com"
    Ours(email=address)
    hits = checked_email.cache_info().hits
    for _ in range(5):
        Ours.model_validate_json(Ours(email=address).model_dump_json())
    assert checked_email.cache_info().hits >= hits + 10


def test_the_schema_still_says_email() -> None:
    assert Ours.model_json_schema()["properties"]["email"] == {
        "format": "email",
        "title": "Email",
        "type": "string",
    }
