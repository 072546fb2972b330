"""The one exception type of the staging layer.

Every failure to stage data (a missing object, an empty prefix, a hostile archive member, a key
that would escape the job directory) becomes a `StagingError`, so that the job runners can turn
it into a `ClientError: ...` `FailureReason`, as SageMaker does for bad input data, without having
to know about botocore, tarfile or OS errors.
"""

from __future__ import annotations


class StagingError(Exception):
    """Data could not be staged; the message names the URI (or archive member) at fault."""

    def __init__(self, message: str, uri: str | None = None) -> None:
        super().__init__(message)
        self.uri = uri
