"""Turn AWS errors into Temporal errors that say whether retrying can help.

A throttled or briefly unavailable AWS is the engine's problem (retry with backoff, the operator
never sees it); a refusal that no retry can change is the operator's (non-retryable, so the
request parks with AWS's own words).
"""

from __future__ import annotations

from botocore.exceptions import ClientError
from temporalio.exceptions import ApplicationError

THROTTLING = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "ConcurrentModificationException",
        "ServiceQuotaExceededException",
        "ConflictException",
        "OperationInProgressException",
    }
)
TRANSIENT = frozenset(
    {"ServiceException", "InternalFailure", "ServiceUnavailable", "InternalError"}
)


def final(message: str, kind: str) -> ApplicationError:
    """A refusal no retry can change: the step parks with this message for an operator."""
    return ApplicationError(message, type=kind, non_retryable=True)


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "Unknown"))


def error_message(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Message", str(err)))


def is_transient(err: ClientError) -> bool:
    """Throttling or a server-side failure: the same call can succeed later."""
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return error_code(err) in THROTTLING | TRANSIENT or status >= 500


def to_application_error(err: ClientError, *, action: str) -> ApplicationError:
    """Classify a ClientError: throttling and 5xx are retryable, everything else is final."""
    code = error_code(err)
    message = f"{action}: {error_message(err)}"
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in THROTTLING:
        return ApplicationError(message, type=code)
    if code in TRANSIENT or status >= 500:
        return ApplicationError(message, type=code)
    return ApplicationError(message, type=code, non_retryable=True)
