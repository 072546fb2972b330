"""Pipe input mode: stream a channel through FIFOs `<channel>_0`, `<channel>_1`, ... (one per epoch).

The algorithm opens `<channel>_<N>`, reads to EOF (or closes early) and then waits for
`<channel>_<N+1>` to appear. The feeder mirrors that: it creates one FIFO, waits for a reader,
streams every object (or augmented-manifest record) of the epoch, closes, removes it, and only
then creates the next one. Opening and writing are non-blocking with short polls, so a stop event
(job stopped, container exited) or a timeout always ends the feeder, even if nobody ever opens the
FIFO or the reader stops reading mid-stream.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import recordio
from .errors import StagingError
from .progress import ProgressCallback, ProgressReporter
from .sources import DataObject
from .store import ObjectStore

PipeItem = bytes | DataObject
PipeSource = Sequence[PipeItem] | Callable[[int], Iterable[PipeItem]]
RECORDIO = "RecordIO"
_SPOOL_IN_MEMORY = 16 << 20


@dataclass(frozen=True)
class PipeResult:
    """How a feeder ended: epochs fully handed over, bytes written, and why it stopped."""

    channel: str
    epochs_completed: int
    bytes_written: int
    stopped: bool = False
    timed_out: bool = False


class _Stopped(Exception):
    pass


class _ReaderGone(Exception):
    pass


def fifo_path(fifo_dir: str | os.PathLike[str], channel: str, epoch: int) -> Path:
    return Path(fifo_dir) / f"{channel}_{epoch}"


def feed_pipe(fifo_dir: str | os.PathLike[str], channel: str, source: PipeSource, *,
              store: ObjectStore | None = None, epochs: int | None = None,
              stop: threading.Event | None = None, gzip: bool = False, record_wrapper: str | None = None,
              open_timeout: float | None = None,
              poll_interval: float = 0.05, progress: ProgressCallback | None = None,
              on_fifo_created: Callable[[Path], None] | None = None) -> PipeResult:
    """Feed `epochs` epochs (or, with None, until `stop` is set or a reader never comes).

    `source` is the epoch's items (the same sequence every epoch, or `epoch -> items` to
    re-shuffle), each `bytes` (an augmented-manifest value) or a `DataObject` streamed from `store`,
    gunzipped when `gzip`. With `record_wrapper="RecordIO"` every item becomes one RecordIO record.
    `open_timeout` bounds the wait for a reader on each FIFO; reaching it ends the feed normally
    (`timed_out=True`): the algorithm simply did not ask for another epoch.
    """
    stop = stop or threading.Event()
    wrap = (record_wrapper or "None").lower() == RECORDIO.lower()
    reporter = ProgressReporter("pipe", f"{channel} ({fifo_dir})", callback=progress)
    completed = 0
    stopped = timed_out = False
    epoch = 0
    while epochs is None or epoch < epochs:
        path = fifo_path(fifo_dir, channel, epoch)
        _make_fifo(path)
        if on_fifo_created:
            on_fifo_created(path)
        try:
            fd = _open_writer(path, stop, open_timeout, poll_interval)
            if fd is None:
                stopped, timed_out = stop.is_set(), not stop.is_set()
                break
            try:
                items = source(epoch) if callable(source) else source
                _write_epoch(fd, items, store, gzip, wrap, stop, poll_interval, reporter)
            except _ReaderGone:
                pass  # the algorithm closed the pipe early: that ends its epoch
            except _Stopped:
                stopped = True
                break
            finally:
                os.close(fd)
            completed += 1
            reporter.object_done(str(path))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        epoch += 1
    reporter.finish()
    return PipeResult(channel, completed, reporter.bytes_done, stopped, timed_out)


def _make_fifo(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISFIFO(mode):
            raise StagingError(f"Cannot create pipe {path}: something else exists there")
        os.unlink(path)  # a stale FIFO of an earlier attempt
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    os.chmod(path, 0o644)  # readable by a non-root container user, whatever our umask


def _open_writer(path: Path, stop: threading.Event, timeout: float | None, poll: float) -> int | None:
    """Open the FIFO for writing once a reader has it open; None on stop or timeout.

    A blocking open would hang until a reader arrives, unstoppable; O_NONBLOCK fails with ENXIO
    while there is no reader, so we poll instead.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if stop.is_set():
            return None
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise StagingError(f"Cannot open pipe {path}: {exc.strerror}") from exc
        if deadline is not None and time.monotonic() >= deadline:
            return None
        stop.wait(poll)


def _write_epoch(fd: int, items: Iterable[PipeItem], store: ObjectStore | None, gzip: bool, wrap: bool,
                 stop: threading.Event, poll: float, reporter: ProgressReporter) -> None:
    for item in items:
        chunks = _item_chunks(item, store, gzip, wrap)
        try:
            for chunk in chunks:
                _write_all(fd, chunk, stop, poll)
                reporter.add_bytes(len(chunk))
        finally:
            chunks.close()  # releases the object's stream when we stop mid-object


def _item_chunks(item: PipeItem, store: ObjectStore | None, gzip: bool, wrap: bool) -> Generator[bytes, None, None]:
    if isinstance(item, (bytes, bytearray, memoryview)):
        data = bytes(item)
        yield recordio.pack(data) if wrap else data
        return
    if store is None:
        raise StagingError(f"No object store to read {item.uri} from", uri=item.uri)
    if not wrap:
        yield from store.iter_chunks(item.uri, gzip=gzip)
        return
    if item.size is not None and not gzip:
        yield recordio.header(item.size)
        sent = 0
        for chunk in store.iter_chunks(item.uri):
            sent += len(chunk)
            if sent > item.size:
                break
            yield chunk
        if sent != item.size:
            raise StagingError(f"{item.uri} changed size while it was streamed", uri=item.uri)
        yield recordio.padding(sent)
        return
    # Length unknown up front (gunzipped, or an augmented-manifest reference): spool it first.
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        for chunk in store.iter_chunks(item.uri, gzip=gzip):
            spool.write(chunk)
        length = spool.tell()
        spool.seek(0)
        yield recordio.header(length)
        while chunk := spool.read(store.chunk_size):
            yield chunk
        yield recordio.padding(length)


def _write_all(fd: int, data: bytes, stop: threading.Event, poll: float) -> None:
    view = memoryview(data)
    while view:
        if stop.is_set():
            raise _Stopped
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], poll)  # pipe full: wait until the reader drains it
            continue
        except BrokenPipeError as exc:
            raise _ReaderGone from exc
        view = view[written:]


class PipeFeeder:
    """`feed_pipe` on a daemon thread, with the stop event and the outcome at hand.

    Start it before the container so that `<channel>_0` exists when the algorithm looks for it
    (`ready` is set once it does).
    """

    def __init__(self, fifo_dir: str | os.PathLike[str], channel: str, source: PipeSource,
                 **kwargs: object) -> None:
        self.channel = channel
        self.stop_event: threading.Event = kwargs.pop("stop", None) or threading.Event()  # type: ignore[assignment]
        self.ready = threading.Event()
        self.result: PipeResult | None = None
        self.error: BaseException | None = None
        self._args = (fifo_dir, channel, source)
        self._kwargs: dict[str, Any] = kwargs
        self._thread = threading.Thread(target=self._run, name=f"pipe-{channel}", daemon=True)

    def _run(self) -> None:
        try:
            self.result = feed_pipe(*self._args, stop=self.stop_event,
                                    on_fifo_created=lambda _path: self.ready.set(), **self._kwargs)
        except BaseException as exc:  # surfaced through .error / join()
            self.error = exc
        finally:
            self.ready.set()

    def start(self) -> PipeFeeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> PipeResult | None:
        """Wait for the feeder; re-raises its error, returns None if it is still running."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            return None
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
