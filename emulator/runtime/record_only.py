"""`--execution none`: a ContainerRuntime under which no container runs (record-only mode).

For suites that test their own code around SageMaker, not the model: every job's "container" exits
0 at once (so a training job uploads an empty but valid model.tar.gz, a processing job uploads empty
outputs), and every serving container answers `/ping` and `/invocations` with a canned reply on a
loopback port. Engines cannot tell: jobs, endpoints, tuning jobs and pipelines move through the same
code paths, statuses and lifecycle events as with Docker, only instantly. Built on FakeRuntime, the
in-memory runtime the engine tests use, with the behaviour fixed instead of scripted.
"""

from __future__ import annotations

from .fake import FakeRuntime, Script
from .interface import ContainerSpec

DEFAULT_REPLY = b'{"predictions": []}'
DEFAULT_CONTENT_TYPE = "application/json"


class RecordOnlyRuntime(FakeRuntime):
    """Containers that do nothing: jobs succeed at once, servers answer `reply` (as `content_type`)."""

    def __init__(self, owner: str = "record-only", reply: bytes = DEFAULT_REPLY,
                 content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        super().__init__(owner=owner, script_for=self._script)
        self.reply = reply
        self.content_type = content_type

    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        if path.startswith("/ping"):
            return 200, b"", {}
        if path.startswith("/invocations"):
            return 200, self.reply, {"Content-Type": self.content_type}
        return 404, b"", {}  # /execution-parameters & co.: the engines fall back to their defaults

    def _script(self, spec: ContainerSpec) -> Script:
        if spec.ports:  # a serving container (endpoint or batch transform): runs until stopped
            return Script(after=None, http=self._answer, lines=["record-only mode: no model is loaded"])
        return Script(after=0.0, exit_code=0, lines=["record-only mode: nothing ran"])
