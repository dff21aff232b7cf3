"""An email address type whose check is remembered.

pydantic's ``EmailStr`` runs email_validator on every validation, and a request's record is
validated again each time it is read back: from a memo for each row of the approvals queue and
the lists, from a query's answer, from an activity's input. In the approvals queue that was a
sixth of the API's CPU, spent re-proving addresses proved when the request was filed. The check
is a pure function of the string, so its answer is kept (a bounded LRU; a refused address is
not kept and is refused again each time, with the same message).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema
from pydantic.networks import import_email_validator, validate_email

import_email_validator()  # as EmailStr does: refuse to start without the package


@lru_cache(maxsize=65_536)
def checked_email(value: str) -> str:
    """The address as EmailStr would give it (its normalized form), or its error."""
    return validate_email(value)[1]


Email = Annotated[
    str, AfterValidator(checked_email), WithJsonSchema({"type": "string", "format": "email"})
]
