"""AWS-shaped errors raised by handlers and the protocol layer.

Handlers never build HTTP responses; they raise these and the wire layer turns them into
`{"__type": code, "message": text}` (awsJson) or the rest-json form with `x-amzn-ErrorType`.
Keeping the code and HTTP status on the exception lets every protocol serialise it the same way.
"""

from __future__ import annotations


class AwsError(Exception):
    """An error the client should see with this code, message and HTTP status."""

    code = "InternalFailure"
    status = 400

    def __init__(self, message: str, code: str | None = None, status: int | None = None,
                 extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = dict(extra or {})


class ValidationError(AwsError):
    """SageMaker's unmodelled but most common error (also used for not-found on Describe)."""

    code = "ValidationException"


class ResourceNotFound(AwsError):
    code = "ResourceNotFound"


class ResourceInUse(AwsError):
    code = "ResourceInUse"


class ResourceLimitExceeded(AwsError):
    code = "ResourceLimitExceeded"


class ConflictError(AwsError):
    code = "ConflictException"


class SerializationError(AwsError):
    """The body is not the JSON document the operation's shape describes."""

    code = "SerializationException"


class UnknownOperation(AwsError):
    code = "UnknownOperationException"


class NotImplementedOperation(AwsError):
    """An operation the service model declares but this emulator does not implement yet.

    HTTP 400 rather than 501: botocore does not retry it, and the caller sees at once which
    operation is missing (see docs/decisions.md).
    """

    code = "NotImplementedException"


class InternalFailure(AwsError):
    code = "InternalFailure"
    status = 500
