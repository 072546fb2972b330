"""What can go wrong serving an invocation, in hosting's own terms.

Hosting never imports the wire layer: it raises these, and `handlers/runtime.py` (the three
sagemaker-runtime operations) maps each to the AWS error a client sees. Keeping the wire codes out of
here lets internal callers (async inference, later in-process callers) handle a model failure without
knowing how it is serialised. Only error paths construct them; the invocation hot path pays nothing.
"""

from __future__ import annotations


class HostingError(Exception):
    """A failed invocation; `message` is the text the client reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvocationInvalid(HostingError):
    """The request cannot be served as asked: unknown endpoint or variant, wrong headers, expired."""


class ServiceUnavailable(HostingError):
    """Nothing in service can take the request right now (no instance, a serverless cold start failed)."""


class Throttled(HostingError):
    """The variant is already serving its MaxConcurrency."""


class ModelError(HostingError):
    """The model container answered with an error (or not at all).

    `original_status` is the container's HTTP status (0 when it did not answer), `original_message`
    its body (or the timeout text), `log_stream_arn` where its logs are.
    """

    def __init__(self, message: str, original_status: int, original_message: str, log_stream_arn: str,
                 client_side: bool) -> None:
        super().__init__(message)
        self.original_status = original_status
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn
        self.client_side = client_side


class ModelStreamError(HostingError):
    """A response stream broke after it started; `error_code` is ModelInvocationTimeExceeded or StreamBroken."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code
