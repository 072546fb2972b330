"""A blocking socket with one receive buffer: how the emulator reads and writes HTTP/1.1 by hand.

Both ends of an InvokeEndpoint use it: the server reading a client's request (`http_server`) and
the client reading a container's reply (`container_http`). A head is found with one search of
the buffer, not read line by line; timeouts are the kernel's (SO_RCVTIMEO/SO_SNDTIMEO on a
blocking socket), not Python's, which would `poll` before every `recv` and hand the GIL to another
thread and back once more per call.
"""

from __future__ import annotations

import io
import os
import socket
import struct
from typing import Any

MAX_LINE = 65536
MAX_HEAD = 1 << 20  # a request or status line and its headers together
RECV_SIZE = 65536


class BufferedSocket:
    """`sock` made blocking with kernel timeouts; running out of time raises TimeoutError."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.timeout: float | None = None
        sock.settimeout(None)
        if sock.family in (socket.AF_INET, socket.AF_INET6):  # a Unix socket (the Docker engine's) has no Nagle
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.set_timeout(timeout)

    def set_timeout(self, timeout: float) -> None:
        """Limit each receive and send to `timeout` seconds (a system call only when it changes)."""
        if timeout != self.timeout:
            limit = struct.pack("ll", int(timeout), int((timeout % 1) * 1e6))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
            self.timeout = timeout

    def close(self) -> None:
        self.sock.close()

    def _recv(self) -> bool:
        """Append what the peer sent next to the buffer; False at end of stream."""
        try:
            data = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            raise TimeoutError("the peer sent nothing in time") from None
        if not data:
            return False
        self.buf += data
        return True

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except BlockingIOError:
            raise TimeoutError("the peer takes nothing in time") from None

    def sendfile(self, handle: Any, offset: int, count: int) -> None:
        """`count` bytes of an open file from `offset`, copied by the kernel (os.sendfile)."""
        fd = handle.fileno()
        while count > 0:
            try:
                sent = os.sendfile(self.sock.fileno(), fd, offset, min(count, 1 << 30))
            except BlockingIOError:
                raise TimeoutError("the peer takes nothing in time") from None
            if sent == 0:
                raise ConnectionError("the file ended before the promised length")
            offset += sent
            count -= sent

    def head(self) -> bytes | None:
        """The next message's head (start line and headers, without the blank line that ends them).

        Stray line ends before it are skipped (RFC 9112 §2.2). None when the peer closed before
        sending anything; ValueError("line") or ValueError("head") when it is too long.
        """
        buf = self.buf
        while True:
            while buf[:1] in (b"\r", b"\n") and buf:
                del buf[:1]
            end = buf.find(b"\r\n\r\n")  # heads are small: searching again from the start is cheap
            if end >= 0:
                size = 4
                break
            end = buf.find(b"\n\n")  # bare LF line ends: tolerated
            if end >= 0:
                size = 2
                break
            if len(buf) > MAX_HEAD:
                raise ValueError("head")
            if len(buf) > MAX_LINE and b"\n" not in buf:
                raise ValueError("line")
            if not self._recv():
                if buf:
                    raise ConnectionError("the peer closed the connection mid-head")
                return None
        head = bytes(buf[:end])
        del buf[:end + size]
        return head

    def read(self, size: int) -> bytes:
        """Up to `size` bytes, fewer only at end of stream."""
        buf = self.buf
        if len(buf) >= size:
            data = bytes(buf[:size])
            del buf[:size]
            return data
        if not buf and size > RECV_SIZE:  # large bodies: straight into one buffer, no re-copying
            out = bytearray(size)
            return bytes(memoryview(out)[:self.readinto(out)])
        while len(buf) < size and self._recv():
            pass
        data = bytes(buf[:size])
        del buf[:size]
        return data

    def read_some(self, limit: int) -> bytes:
        """What is buffered (at most `limit` bytes), else what one receive brings; b"" at end of stream."""
        if not self.buf and not self._recv():
            return b""
        data = bytes(self.buf[:limit])
        del self.buf[:limit]
        return data

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` (a writable memoryview or bytearray) as far as the peer sends, without
        allocating: what is buffered first, then straight from the socket. 0 only at end of stream."""
        view = memoryview(buffer).cast("B")
        size = len(view)
        buf = self.buf
        have = min(len(buf), size)
        if have:
            view[:have] = buf[:have]
            del buf[:have]
        while have < size:
            try:
                got = self.sock.recv_into(view[have:])
            except BlockingIOError:
                raise TimeoutError("the peer sent nothing in time") from None
            if not got:
                break
            have += got
        return have

    def read_to_end(self) -> bytes:
        while self._recv():
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def readline(self, limit: int) -> bytes:
        """One line (with its line end) of at most `limit` bytes."""
        buf = self.buf
        while True:
            end = buf.find(b"\n", 0, limit)
            if end >= 0:
                data = bytes(buf[:end + 1])
                del buf[:end + 1]
                return data
            if len(buf) >= limit or not self._recv():
                data = bytes(buf[:limit])
                del buf[:limit]
                return data


class MalformedBody(ValueError):
    """A body is not valid chunked transfer encoding."""


class ChunkedBody(io.RawIOBase):
    """A `Transfer-Encoding: chunked` body read from `sock`, de-chunked (a request's or a reply's)."""

    def __init__(self, sock: BufferedSocket) -> None:
        self.conn = sock
        self.left = 0
        self.done = False

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> None:
        line = self.conn.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        except ValueError:
            raise MalformedBody(f"malformed chunk size line {line[:40]!r}") from None
        if size < 0:
            raise MalformedBody(f"negative chunk size {size}")
        if size == 0:
            while self.conn.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            self.done = True
        self.left = size

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes (all of it for -1); ConnectionError if the stream ends inside the body."""
        out = bytearray()
        while not self.done and (size is None or size < 0 or len(out) < size):
            if self.left == 0:
                self._next_chunk()
                if self.done:
                    break
            want = self.left if size is None or size < 0 else min(self.left, size - len(out))
            data = self.conn.read(want)
            if not data:
                raise ConnectionError("the peer closed the connection mid-body")
            out += data
            self.left -= len(data)
            if self.left == 0:
                self.conn.readline(8)  # the CRLF after each chunk
        return bytes(out)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
