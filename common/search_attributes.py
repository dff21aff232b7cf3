"""Custom search attributes: what lets anyone list requests by status without a database.

They must be registered on the namespace (``temporal server start-dev --search-attribute`` in the
embedded stack, ``temporal operator search-attribute create`` on a cluster).
"""

from __future__ import annotations

import hashlib
import hmac

from temporalio.common import SearchAttributeKey

STATUS = SearchAttributeKey.for_keyword("VendingStatus")
STEP = SearchAttributeKey.for_keyword("VendingStep")
REQUESTER = SearchAttributeKey.for_keyword("VendingRequester")
OU = SearchAttributeKey.for_keyword("VendingOU")
ACCOUNT_ID = SearchAttributeKey.for_keyword("VendingAccountId")
KIND = SearchAttributeKey.for_keyword("VendingKind")  # vend, decommission, ...
# A digest of the owner's email: visibility is not encrypted, so it never holds the email itself.
OWNER = SearchAttributeKey.for_keyword("VendingOwner")
# An account's last drift check: "drifted" or "in_sync" (unset before its first check).
DRIFT = SearchAttributeKey.for_keyword("VendingDrift")

ALL = (STATUS, STEP, REQUESTER, OU, ACCOUNT_ID, KIND, OWNER, DRIFT)


def quote(value: str) -> str:
    """A value as a string literal of a visibility query."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def owner_digest(email: str, key: bytes) -> str:
    """What the owner search attribute holds: a keyed hash of the email (HMAC-SHA256), so that
    whoever reads visibility cannot test guessed addresses against it, as they could an
    unsalted hash. Only the API holds the key; the workflows carry the digest it made."""
    message = f"owner:{email.strip().lower()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:40]


def cli_flags() -> list[str]:
    """``--search-attribute Name=Keyword`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}=Keyword"]
    return flags
