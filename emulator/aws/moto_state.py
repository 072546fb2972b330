"""The embedded moto services (IAM, STS, SQS, CloudWatch, SNS, Lambda, ...) made durable by snapshots.

moto keeps every service's state in memory, in one backend object per (service, account, region).
Every request moto answers that may change something (any method but GET/HEAD) marks its service
dirty; a background thread then pickles the backends, at most once per `INTERVAL`, into one file
in the data dir (written to a temporary file, fsynced, renamed): a kill -9 loses at most the last
`INTERVAL` plus one snapshot's time of changes. At start-up the file is loaded back into moto's
backend registry before any request is served.

What pickle cannot carry is recreated: locks, conditions and events are made afresh, a
WeakValueDictionary is rebuilt from its live values, and an attribute of a backend that still will
not pickle (a closure as a defaultdict's factory, say) keeps the value a freshly constructed
backend has. S3 is not here: its objects live in our own store (aws/s3) and its bucket
configuration in that store's journal. See docs/decisions.md for the limits.
"""

from __future__ import annotations

import copyreg
import importlib
import io
import logging
import os
import pickle
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INTERVAL = 0.5
EXPENSIVE_SECONDS = 0.02  # a backend slower than this to pickle is re-pickled only when its own service changed
SLOW_SECONDS = 0.4  # a snapshot slower than this is logged: the kill -9 bound (interval + snapshot) is at risk
EXCLUDED = frozenset({"s3", "moto_api", "instance_metadata"})
FORMAT = 1
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})

Key = tuple[str, str, str, str]  # (module, BackendDict attribute, account, region)


def _weak_values(items: dict) -> weakref.WeakValueDictionary:
    return weakref.WeakValueDictionary(items)


def _defaultdict(cls: type, factory: Callable[[], Any] | None) -> defaultdict:
    """A defaultdict (or a subclass, whose __init__ may want other arguments) without calling __init__."""
    made: defaultdict = defaultdict.__new__(cls)
    defaultdict.__init__(made, factory)
    return made


def _reduce_defaultdict(obj: defaultdict) -> Any:
    """A factory made by a lambda or closure cannot be pickled: it is left out, and `_adopt` puts a
    fresh backend's back (top-level attributes only)."""
    factory = obj.default_factory
    if factory is not None and "<" in getattr(factory, "__qualname__", ""):  # <lambda>, <locals>
        factory = None
    return _defaultdict, (type(obj), factory), getattr(obj, "__dict__", None) or None, None, iter(obj.items())


def _subclasses(cls: type) -> list[type]:
    found = [cls]
    sub: type
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found


def _dispatch_table() -> dict:
    """Reducers for what plain pickle refuses or rebuilds wrongly, by exact type (the fast C lookup)."""
    table = dict(copyreg.dispatch_table)
    table[type(threading.Lock())] = lambda _: (threading.Lock, ())
    table[type(threading.RLock())] = lambda _: (threading.RLock, ())
    table[threading.Condition] = lambda _: (threading.Condition, ())
    table[threading.Event] = lambda _: (threading.Event, ())
    table[weakref.WeakValueDictionary] = lambda obj: (_weak_values, (dict(obj.items()),))
    for cls in _subclasses(defaultdict):  # moto's ParameterDict & co. take other __init__ arguments
        table[cls] = _reduce_defaultdict
    return table


def dumps(value: Any) -> bytes:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _dispatch_table()  # type: ignore[misc]
    pickler.dump(value)
    return out.getvalue()


def _unpicklable(exc: BaseException) -> bool:
    """A RuntimeError other than RecursionError means a dict changed while pickled: worth a retry."""
    return not isinstance(exc, RuntimeError) or isinstance(exc, RecursionError)


def _pickle_state(backend: Any) -> tuple[bytes, list[str]]:
    """The backend's attributes, pickled together (shared references kept); when that fails, one by
    one, leaving out those that will not pickle (their names are returned). RuntimeError: retry."""
    state = dict(backend.__dict__)
    try:
        return dumps(state), []
    except Exception as exc:
        if not _unpicklable(exc):
            raise
    kept, dropped = {}, []
    for name, value in state.items():
        try:
            dumps(value)
        except Exception as exc:
            if not _unpicklable(exc):
                raise
            dropped.append(name)
        else:
            kept[name] = value
    return dumps(kept), dropped


_locations: dict[int, tuple[str, str]] = {}


def _location(backends: Any) -> tuple[str, str]:
    """(module, attribute) of a BackendDict, e.g. ("moto.sqs.models", "sqs_backends"): where restore finds it."""
    found = _locations.get(id(backends))
    if found is None:
        module = importlib.import_module(backends.backend.__module__)
        name = next(n for n, v in vars(module).items() if v is backends)
        found = _locations[id(backends)] = (module.__name__, name)
    return found


def _backend_dicts() -> list[Any]:
    from moto.core.base_backend import BackendDict

    return [d for d in list(BackendDict._instances) if d.service_name not in EXCLUDED]  # type: ignore[misc]


def _adopt(key: Key, state: dict) -> None:
    """Put a restored backend into moto's registry: a fresh backend's attributes, overwritten by the
    saved ones (so what was left out keeps its fresh value, and factories lost by pickle come back)."""
    module, attribute, account, region = key
    account_backends = getattr(importlib.import_module(module), attribute)[account]
    fresh = account_backends.backend(region, account_id=account)
    for name, value in state.items():
        current = fresh.__dict__.get(name)
        if isinstance(value, defaultdict) and value.default_factory is None and isinstance(current, defaultdict):
            value.default_factory = current.default_factory
        fresh.__dict__[name] = value
    dict.__setitem__(account_backends, region, fresh)


_active: MotoState | None = None


def changed(service: str | None = None) -> None:
    """For code that writes moto's state directly, not through its WSGI app (S3 notifications)."""
    if _active is not None:
        _active.mark_dirty(service)


class MotoState:
    """Snapshots of moto's backends in `path`; `mark_dirty(service)` after a change, `close()` at the end."""

    def __init__(self, path: Path, interval: float = INTERVAL) -> None:
        self.path, self.interval = path, interval
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pickled: dict[Key, bytes] = {}
        self._unrestored: dict[Key, bytes] = {}  # saved backends that would not load: kept in the file, not dropped
        self._cost: dict[Key, float] = {}
        self._dropped_logged: set[tuple[str, str]] = set()
        self._thread: threading.Thread | None = None
        self.last_snapshot_seconds = 0.0

    # -- start-up
    def restore(self) -> int:
        """Load the snapshot (if any) into moto; returns the number of backends restored."""
        try:
            with open(self.path, "rb") as f:
                saved = pickle.load(f)
        except FileNotFoundError:
            return 0
        except Exception:
            log.exception("the moto snapshot %s cannot be read: the embedded AWS services start empty", self.path)
            return 0
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            log.warning("the moto snapshot %s has an unknown format: ignored", self.path)
            return 0
        restored = 0
        for key, data in saved["backends"].items():
            try:
                _adopt(key, pickle.loads(data))
                self._pickled[key] = data
                restored += 1
            except Exception:
                self._unrestored[key] = data
                log.exception("could not restore moto's backend %s.%s (%s, %s)", *key)
        return restored

    def start(self) -> None:
        global _active
        if self.interval <= 0:
            return  # snapshots off
        _active = self
        self._thread = threading.Thread(target=self._loop, name="moto-snapshots", daemon=True)
        self._thread.start()

    # -- changes
    def mark_dirty(self, service: str | None = None) -> None:
        """`service` changed (None: any may have)."""
        with self._lock:
            self._dirty.add(service or "*")
        self._wake.set()

    def wrap(self, service: str, app: Callable) -> Callable:
        """moto's WSGI app of `service`, marking the service dirty after each request that may write."""
        def marking(environ: dict, start_response: Callable) -> Iterable[bytes]:
            try:
                return app(environ, start_response)
            finally:
                if environ.get("REQUEST_METHOD", "POST") not in _READ_ONLY:
                    self.mark_dirty(service)
        return marking

    # -- snapshots
    def _loop(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                break
            pause = last + self.interval - time.monotonic()
            if pause > 0 and self._stop.wait(pause):
                break
            self._wake.clear()
            last = time.monotonic()
            try:
                self.snapshot()
            except Exception:
                log.exception("could not snapshot moto's state")

    def snapshot(self) -> None:
        """Pickle what changed (and every cheap backend: a request to one service may write another's
        state, e.g. SNS delivering to SQS), then write the file atomically."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        started = time.perf_counter()
        current: dict[Key, bytes] = {}
        for backends in _backend_dicts():
            service = backends.service_name
            try:
                where = _location(backends)
            except (ImportError, StopIteration):
                continue
            for account, account_backends in list(backends.items()):
                for region, backend in list(account_backends.items()):
                    key = (*where, account, region)
                    previous = self._pickled.get(key)
                    if (previous is not None and service not in dirty and "*" not in dirty
                            and self._cost.get(key, 0.0) > EXPENSIVE_SECONDS):
                        current[key] = previous
                        continue
                    data = self._pickle_backend(key, backend)
                    if data is None:  # kept changing under us: next time
                        self.mark_dirty(service)
                        if previous is not None:
                            current[key] = previous
                        continue
                    current[key] = data
        self._pickled = current
        pickled = time.perf_counter()
        current = {**{k: v for k, v in self._unrestored.items() if k not in current}, **current}
        self._write({"format": FORMAT, "backends": current})
        self.last_snapshot_seconds = time.perf_counter() - started
        log.log(logging.WARNING if self.last_snapshot_seconds > SLOW_SECONDS else logging.DEBUG,
                "moto snapshot: %d backends in %.1f ms (pickling %.1f ms)", len(current),
                self.last_snapshot_seconds * 1000, (pickled - started) * 1000)

    def _pickle_backend(self, key: Key, backend: Any) -> bytes | None:
        for _ in range(3):
            started = time.perf_counter()
            try:
                data, dropped = _pickle_state(backend)
            except RuntimeError:  # "dictionary changed size during iteration": a request was writing
                time.sleep(0.01)
                continue
            self._cost[key] = time.perf_counter() - started
            for name in dropped:
                if (key[1], name) not in self._dropped_logged:
                    self._dropped_logged.add((key[1], name))
                    log.info("moto's %s: attribute %s cannot be saved; it starts afresh after a restart",
                             key[1], name)
            return data
        return None

    def _write(self, value: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Graceful shutdown: stop the thread, then one last snapshot of whatever is still dirty."""
        global _active
        if _active is self:
            _active = None
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            pending = bool(self._dirty)
        if pending and self.interval > 0:
            try:
                self.snapshot()
            except Exception:
                log.exception("could not write the last snapshot of moto's state")
