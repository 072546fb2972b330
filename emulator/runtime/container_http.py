"""HTTP/1.1 to serving containers at their `Address`: pooled kept-alive connections, a lean parser.

Every InvokeEndpoint and transform batch is one request to a container, so this is the hot path:
connections are shared by all request threads (the server gives each client connection its own
thread), TCP_NODELAY is set (no Nagle/delayed-ACK stalls), and a reply's head is found in one receive
buffer (`sagemaker_emulator.server.sockio`) instead of going through the `email` parser `http.client` uses, which
cost more than everything else the emulator does for an invocation.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

from sagemaker_emulator.server.sockio import BufferedSocket, ChunkedBody

from .interface import Address

MAX_HEADERS = 200


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]  # lower-case names

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def custom_attributes(self) -> str | None:
        return self.headers.get("x-amzn-sagemaker-custom-attributes")


class StaleConnection(ConnectionError):
    """The container closed a kept-alive connection before answering (safe to retry once)."""


class Connection:
    def __init__(self, address: Address) -> None:
        self.address = address
        self.sock: BufferedSocket | None = None

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str],
                timeout: float) -> tuple[Reply, bool]:
        """Send one request and read the whole reply; returns (reply, connection must close)."""
        fresh = self.sock is None
        if self.sock is None:
            self.sock = BufferedSocket(socket.create_connection(self.address, timeout=timeout), timeout)
        else:
            self.sock.set_timeout(timeout)
        sock = self.sock
        host, port = self.address
        lines = [f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"]
        for name, value in headers.items():  # names are the emulator's own; values may come from a client
            if "\r" in value or "\n" in value:
                raise ValueError(f"invalid value for header {name!r}")
            lines.append(f"{name}: {value}\r\n")
        lines.append("\r\n")
        try:
            sock.send("".join(lines).encode("latin-1") + body)
            head = sock.head()
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise (ConnectionError(str(exc)) if fresh else StaleConnection(str(exc))) from None
        except ValueError:
            raise ConnectionError("the reply's head is too long") from None
        if head is None:
            raise ConnectionError("the container closed the connection") if fresh else StaleConnection("closed")
        status_line, *header_lines = head.decode("latin-1").split("\n")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ConnectionError(f"not an HTTP reply: {status_line[:60]!r}")
        if len(header_lines) > MAX_HEADERS:
            raise ConnectionError("too many headers in the reply")
        status = int(parts[1])
        reply_headers: dict[str, str] = {}
        for raw in header_lines:
            name, _, value = raw.partition(":")
            key = name.strip().lower()
            value = value.strip()
            reply_headers[key] = f"{reply_headers[key]}, {value}" if key in reply_headers else value
        close = reply_headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif "chunked" in reply_headers.get("transfer-encoding", "").lower():
            data = ChunkedBody(sock).read()
        elif "content-length" in reply_headers:
            length = int(reply_headers["content-length"])
            data = sock.read(length)
            if len(data) < length:
                raise ConnectionError("the reply ended early")
        else:  # the body runs to the end of the connection
            data = sock.read_to_end()
            close = True
        return Reply(status, data, reply_headers), close


class Pool:
    """Idle kept-alive connections per container address, shared by all request threads."""

    MAX_IDLE = 32

    def __init__(self) -> None:
        self._idle: dict[Address, list[Connection]] = {}
        self._lock = threading.Lock()

    def get(self, address: Address) -> Connection:
        with self._lock:
            idle = self._idle.get(address)
            if idle:
                return idle.pop()
        return Connection(address)

    def put(self, conn: Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(conn.address, [])
            if len(idle) < self.MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    def forget(self, address: Address) -> None:
        """A container went away: drop its idle connections."""
        with self._lock:
            idle = self._idle.pop(address, [])
        for conn in idle:
            conn.close()


pool = Pool()


def request(address: Address, path: str, body: bytes, headers: dict[str, str], timeout: float,
            method: str = "POST") -> Reply:
    """One request to a container; a kept-alive connection the container had closed is retried once."""
    for _attempt in (1, 2):
        conn = pool.get(address)
        try:
            reply, close = conn.request(method, path, body, headers, timeout)
        except StaleConnection:
            conn.close()
            continue
        except BaseException:
            conn.close()
            raise
        if close:
            conn.close()
        else:
            pool.put(conn)
        return reply
    raise ConnectionError("the container keeps closing the connection")
