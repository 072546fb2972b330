"""What engine tests on the FakeRuntime need beyond testing.inprocess.InProcessServer: a runtime
that "crashes" with the server, and polling.

A kill -9 cannot be dealt to a server that shares the test's process; `Crashable` does the part
that matters: once crashed, the old server's threads never touch the runtime or their callbacks
again (every call and callback blocks forever), while the fake's containers go on running for a
new server on the same data dir to adopt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sagemaker_emulator.runtime.fake import FakeRuntime


class Crashable:
    """A runtime wrapper whose every call, and every callback it was given, blocks forever after `crash()`."""

    def __init__(self, runtime: FakeRuntime) -> None:
        self._runtime = runtime
        self._crashed = threading.Event()

    def crash(self) -> None:
        self._crashed.set()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._runtime, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._freeze_if_crashed()
            # callbacks too (a log stream's on_line): the fake calls them from its own threads
            args = tuple(self._guarded(a) if callable(a) else a for a in args)
            return value(*args, **kwargs)

        return call

    def _freeze_if_crashed(self) -> None:
        if self._crashed.is_set():
            threading.Event().wait()  # never returns: this thread is "dead"

    def _guarded(self, callback: Callable) -> Callable:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._freeze_if_crashed()
            return callback(*args, **kwargs)

        return guarded
