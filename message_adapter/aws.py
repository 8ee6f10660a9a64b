"""What AWS error codes mean to us: one table for the S3 store and the activity worker.

botocore reports a service's refusal as a ``ClientError`` whose ``response`` holds the
error code; these sets sort the codes we act on. Nothing here imports botocore until a
connection-level error has to be recognised.
"""

from collections.abc import Callable

ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "403",
        "Forbidden",
        "AllAccessDisabled",
    }
)
BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "ExpiredTokenException",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
    }
)
NO_SUCH_KEY = frozenset({"NoSuchKey", "404"})
NO_SUCH_BUCKET = frozenset({"NoSuchBucket"})
ALREADY_EXISTS = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
NOT_IMPLEMENTED = frozenset({"NotImplemented", "501"})
TRANSIENT = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
# Step Functions refusals meaning a worker can never poll its activity: stop, do not spin.
FATAL_POLL = frozenset(
    {
        "ActivityDoesNotExist",
        "InvalidArn",
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ValidationException",
    }
)


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError``, else ``""``."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_transient(error: BaseException) -> bool:
    """Throttling, a 5xx, or a dropped connection: worth retrying after a pause."""
    code = error_code(error)
    if code:
        status = getattr(error, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in TRANSIENT or (isinstance(status, int) and status >= 500)
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return isinstance(error, (ConnectionError, TimeoutError))
    return isinstance(error, (BotoConnectionError, HTTPClientError, ConnectionError, TimeoutError))


def backoff_delay(
    attempt: int, base: float = 0.5, cap: float = 20.0, rand: Callable[[], float] | None = None
) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential with full jitter."""
    if rand is None:
        import random

        rand = random.random
    return min(cap, base * 2 ** min(attempt, 30)) * rand()
