"""Docker log stream decoding: de-chunking across block boundaries, frames, timestamps (no engine)."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from sagemaker_emulator.runtime import docker_logs
from sagemaker_emulator.runtime.docker_logs import body_blocks, log_lines, parse_timestamp


class Trickle(io.RawIOBase):
    """A connection that hands out at most `step` bytes per read1, as a socket under load would."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step = data, step

    def read1(self, size: int = -1) -> bytes:
        out, self.data = self.data[:min(size, self.step)], self.data[min(size, self.step):]
        return out


def frame(kind: int, payload: bytes) -> bytes:
    return bytes([kind, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def response(body: bytes, step: int, is_chunked: bool = True) -> tuple:
    """body_blocks' arguments for a connection that trickles `body` out `step` bytes at a time."""
    return Trickle(body, step).read1, is_chunked


@pytest.fixture(autouse=True)
def no_batching_wait(monkeypatch):
    monkeypatch.setattr(docker_logs, "BATCH_SECONDS", 0)


FRAMES = [frame(1, b"2026-11-26T17:07:01.250000000Z first\n"), frame(2, b"2026-11-26T17:07:02.5Z oops\n"),
          frame(1, b"2026-11-26T17:07:03Z partial "), frame(1, b"line\n"), frame(1, b"2026-11-26T17:07:04Z no newline")]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 65536])
def test_dechunked_at_any_boundary(step):
    body = chunked(FRAMES)
    assert b"".join(body_blocks(*response(body, step))) == b"".join(FRAMES)
    lines = list(log_lines(body_blocks(*response(body, step))))
    assert lines == [("stdout", b"2026-11-26T17:07:01.250000000Z first"), ("stderr", b"2026-11-26T17:07:02.5Z oops"),
                     ("stdout", b"2026-11-26T17:07:03Z partial line"), ("stdout", b"2026-11-26T17:07:04Z no newline")]


def test_not_chunked():
    body = b"".join(FRAMES)
    assert b"".join(body_blocks(*response(body, 5, is_chunked=False))) == body


def test_malformed_chunk_size_is_an_error():
    with pytest.raises(ValueError):
        list(body_blocks(*response(b"zz\r\nabc\r\n", 64)))


def test_timestamps():
    def epoch(*args: int, micro: int = 0) -> float:
        return dt.datetime(*args, micro, tzinfo=dt.timezone.utc).timestamp()

    for _ in range(2):  # the second time from the remembered seconds
        exact = epoch(2026, 11, 26, 17, 7, 1, micro=123456)
        assert parse_timestamp("2026-11-26T17:07:01.123456789Z") == pytest.approx(exact)
        assert parse_timestamp("2026-11-26T17:07:01Z") == epoch(2026, 11, 26, 17, 7, 1)
        assert parse_timestamp("2026-11-26T17:07:01.5Z") == pytest.approx(epoch(2026, 11, 26, 17, 7, 1, micro=500000))
    assert parse_timestamp("2026-11-26T18:07:01.5+01:00") == pytest.approx(epoch(2026, 11, 26, 17, 7, 1, micro=500000))
    assert abs(parse_timestamp("not a time") - dt.datetime.now().timestamp()) < 5
