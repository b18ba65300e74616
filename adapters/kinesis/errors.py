"""botocore failures as domain errors."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from domain.errors import StoreUnavailableError

# Codes worth another attempt: throttling and the service's own transient failures.
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "LimitExceededException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "KMSThrottlingException",
    }
)


def error_code(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return type(error).__name__


def is_retryable(error: BaseException) -> bool:
    """Connection failures and throttling; not a missing stream or a denied call."""
    if isinstance(error, ClientError):
        return error_code(error) in RETRYABLE_CODES
    return isinstance(error, BotoCoreError | OSError | TimeoutError)


def unavailable(what: str, error: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(f"{what} failed: {error_code(error)}")


AWS_ERRORS = (ClientError, BotoCoreError, OSError, TimeoutError)
