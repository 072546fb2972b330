"""The emulator's HTTP/1.1 server: a threaded WSGI server that keeps connections alive.

Werkzeug's development server closes every connection after one response, so each call pays a
TCP handshake and a new thread, several times what forwarding an InvokeEndpoint costs. This one
keeps HTTP/1.1 connections open (botocore and most clients reuse them), sets TCP_NODELAY, streams
request bodies to the application (`wsgi.input` is limited to Content-Length, or de-chunked), and
answers with Content-Length when the application gives one, chunked otherwise.

It is lean on purpose, because every InvokeEndpoint crosses it: a request head is read with one
`recv` into a buffer and split there (not line by line through `email`), a response goes out in
one `send` (head and body together), and sockets are blocking with kernel timeouts
(SO_RCVTIMEO/SO_SNDTIMEO) rather than Python's, which would `poll` before every `recv`. Each of
those system calls also hands the GIL to another thread and back.
"""

from __future__ import annotations

import io
import logging
import socketserver
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import unquote

from werkzeug.http import HTTP_STATUS_CODES

from .sockio import MAX_LINE, RECV_SIZE, BufferedSocket, ChunkedBody, MalformedBody

log = logging.getLogger(__name__)

MAX_HEADERS = 200
DRAIN_LIMIT = 64 << 20  # unread request bytes we swallow (so the client reads our early answer); beyond: close
IDLE_TIMEOUT = 120.0


class _Input(io.RawIOBase):
    """A request body. With `Expect: 100-continue`, the interim answer goes out on the first read:
    a request the application refuses from its headers alone (too large, unknown operation) is
    answered without the client ever sending the body, and the connection is then closed."""

    conn: BufferedSocket
    awaiting_continue = False

    def readable(self) -> bool:
        return True

    def _proceed(self) -> None:
        if self.awaiting_continue:
            self.awaiting_continue = False
            self.conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")


class BodyReader(_Input):
    """`wsgi.input`: exactly Content-Length bytes of the request, never more."""

    def __init__(self, conn: BufferedSocket, length: int) -> None:
        self.conn, self.remaining = conn, length

    def readinto(self, buffer: Any) -> int:
        """Large bodies (S3 objects) land in the caller's buffer, with no copy on the way."""
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.remaining)
        if want <= 0:
            return 0
        self._proceed()
        got = self.conn.readinto(view[:want])
        if not got:
            raise ConnectionError("the client closed the connection mid-body")
        self.remaining -= got
        return got

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.remaining
        if self.remaining <= 0 or size == 0:
            return b""
        self._proceed()
        data = self.conn.read(min(size, self.remaining))
        if not data:
            raise ConnectionError("the client closed the connection mid-body")
        self.remaining -= len(data)
        return data

    def drain(self) -> bool:
        """Swallow what the application did not read; False if too much is left to bother (or the
        client, never told to continue, may not send it at all)."""
        if self.remaining > DRAIN_LIMIT or (self.awaiting_continue and self.remaining > 0):
            return False
        while self.remaining > 0:
            if not self.read(RECV_SIZE):
                return False
        return True


class ChunkedReader(ChunkedBody, _Input):
    """`wsgi.input` for a `Transfer-Encoding: chunked` request body."""

    def _next_chunk(self) -> None:
        self._proceed()
        super()._next_chunk()

    def drain(self) -> bool:
        if self.awaiting_continue and not self.done:
            return False
        try:
            while not self.done:
                if not self.read(RECV_SIZE):
                    break
        except MalformedBody:
            return False
        return True


class RequestHeaders:
    """Case-insensitive access to the request headers, read from the WSGI environ they were put in.

    Repeated headers are already joined with commas there (RFC 9110). No second copy is made:
    the environ is built anyway, and every InvokeEndpoint reads half a dozen headers.
    """

    __slots__ = ("environ",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.environ.get(_ENVIRON_KEYS.get(name) or _environ_key(name), default)

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __bool__(self) -> bool:
        return True

    def items(self) -> list[tuple[str, str]]:
        out = []
        for key, value in self.environ.items():
            if key.startswith("HTTP_"):
                out.append((key[5:].replace("_", "-").title(), value))
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                out.append((key.replace("_", "-").title(), value))
        return out


_ENVIRON_KEYS: dict[str, str] = {}


def _environ_key(name: str) -> str:
    """`X-Amz-Target` -> `HTTP_X_AMZ_TARGET` (remembered: clients send the same few names)."""
    key = name.upper().replace("-", "_")
    if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        key = "HTTP_" + key
    if len(_ENVIRON_KEYS) < 1024:
        _ENVIRON_KEYS[name] = key
    return key


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header's value, formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)))
    return _date_cache[1]


class BadRequest(Exception):
    """The request cannot be parsed: answer `status` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Exchange:
    """One request on a connection: its parsed head, its WSGI environ and the response it gets."""

    def __init__(self, conn: BufferedSocket, head: bytes, base: dict[str, Any]) -> None:
        """`base`: the environ entries every request on this connection shares (addresses, wsgi.*)."""
        text = head.decode("latin-1")
        lines = text.split("\n")
        parts = lines[0].rstrip("\r").split()
        if len(lines[0]) > MAX_LINE:
            raise BadRequest(414, "Request line too long")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest(400, "Bad request line")
        self.method, self.target, self.version = parts
        if len(lines) - 1 > MAX_HEADERS:
            raise BadRequest(431, "Too many headers")
        path, _, query = self.target.partition("?")
        if "://" in path:  # absolute-form request target
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        environ = base.copy()
        environ["REQUEST_METHOD"] = self.method
        environ["PATH_INFO"] = unquote(path, "latin-1")
        environ["QUERY_STRING"] = query
        environ["RAW_URI"] = environ["REQUEST_URI"] = self.target
        environ["SERVER_PROTOCOL"] = self.version
        headers = environ["emulator.headers"] = RequestHeaders(environ)
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise BadRequest(400, "Bad header line")
            if len(line) > MAX_LINE:
                raise BadRequest(431, "Header line too long")
            name, value = name.strip(), value.strip()
            key = _ENVIRON_KEYS.get(name) or _environ_key(name)
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        length = headers.get("Content-Length")
        chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        if chunked:
            environ.pop("CONTENT_LENGTH", None)
        elif length is not None and not length.strip().isdigit():  # int() would fail: answer, don't drop
            raise BadRequest(400, "Bad Content-Length")
        self.body: BodyReader | ChunkedReader = (ChunkedReader(conn) if chunked
                                                 else BodyReader(conn, int(length or 0)))
        environ["wsgi.input"] = self.body
        environ["wsgi.input_terminated"] = chunked
        environ["emulator.body_limited"] = True  # wsgi.input never reads past this request
        self.environ = environ
        self.headers = headers
        connection = (headers.get("Connection") or "").lower()
        self.close = connection == "close" or (self.version == "HTTP/1.0" and connection != "keep-alive")
        self.status: str | None = None
        self.reply_headers: list[tuple[str, str]] = []
        self.sent = False
        self.chunked = False
        self.bodiless = False


class ConnectionHandler(socketserver.BaseRequestHandler):
    """Serves one client connection: requests one after another until either side closes."""

    app: Callable = None  # type: ignore[assignment]  # set by make_server

    def handle(self) -> None:
        conn = BufferedSocket(self.request, IDLE_TIMEOUT)
        host, port = cast("tuple[str, int]", self.server.server_address)[:2]  # AF_INET: (host, port)
        base = {"SCRIPT_NAME": "", "SERVER_NAME": str(host), "SERVER_PORT": str(port),
                "REMOTE_ADDR": self.client_address[0], "REMOTE_PORT": str(self.client_address[1]),
                "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
                "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False}
        try:
            while True:
                try:
                    head = conn.head()
                except ValueError as exc:
                    self._refuse(conn, 414 if str(exc) == "line" else 431, "Request head too long")
                    return
                if head is None:
                    return
                try:
                    exchange = Exchange(conn, head, base)
                except BadRequest as exc:
                    self._refuse(conn, exc.status, str(exc))
                    return
                if (exchange.headers.get("Expect") or "").lower() == "100-continue":
                    exchange.body.awaiting_continue = True  # sent when the application reads the body
                if not self._run(conn, exchange) or exchange.close:
                    return
        except (ConnectionError, TimeoutError):
            return

    @staticmethod
    def _refuse(conn: BufferedSocket, status: int, message: str) -> None:
        body = message.encode()
        conn.send(f"HTTP/1.1 {status} {HTTP_STATUS_CODES.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
                  f"Content-Length: {len(body)}\r\nDate: {http_date()}\r\nConnection: close\r\n\r\n".encode()
                  + body)

    @staticmethod
    def _head(exchange: Exchange) -> bytes:
        status = exchange.status or "500 Internal Server Error"
        lines = [f"HTTP/1.1 {status}\r\n"]
        names = set()
        for key, value in exchange.reply_headers:
            lower = key.lower()
            names.add(lower)
            if lower != "connection":
                lines.append(f"{key}: {value}\r\n")
        has_length = "content-length" in names
        if "date" not in names:
            lines.append(f"Date: {http_date()}\r\n")
        code = int(status[:3])
        exchange.bodiless = bodiless = exchange.method == "HEAD" or code in (204, 304) or code < 200
        if not has_length and not bodiless:
            if exchange.version == "HTTP/1.1":
                exchange.chunked = True
                lines.append("Transfer-Encoding: chunked\r\n")
            else:
                exchange.close = True
        if exchange.close:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def _run(self, conn: BufferedSocket, exchange: Exchange) -> bool:
        """Run the application for one request; False when the connection must close."""

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            if exc_info and exchange.sent:
                raise exc_info[1].with_traceback(exc_info[2])
            exchange.status, exchange.reply_headers = status, headers
            return write

        def write(data: bytes) -> None:  # the legacy WSGI write(), and each chunk of a streamed body
            if not exchange.sent:
                head = self._head(exchange)
                conn.send(head if exchange.chunked or exchange.bodiless else head + data)
                exchange.sent = True
                if not exchange.chunked:
                    return
            if data and not exchange.bodiless:
                conn.send(b"%x\r\n%s\r\n" % (len(data), data) if exchange.chunked else data)

        try:
            result: Iterable[bytes] = self.app(exchange.environ, start_response)
        except (ConnectionError, TimeoutError):  # the client went away or stalled mid-body: just close
            raise
        except Exception:
            log.exception("unhandled error in %s %s", exchange.method, exchange.target)
            self._refuse(conn, 500, "Internal error")
            return False
        try:
            if isinstance(result, list) and len(result) == 1 and not exchange.sent:  # the common case: one send
                head = self._head(exchange)
                if exchange.bodiless:
                    conn.send(head)
                elif exchange.chunked:
                    data = result[0]
                    conn.send(head + (b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data) if data else b"0\r\n\r\n"))
                else:
                    conn.send(head + result[0])
                exchange.sent = True
            elif getattr(result, "file_range", None) and not exchange.sent:  # a file's bytes: sendfile(2)
                head = self._head(exchange)
                conn.send(head)
                exchange.sent = True
                if not exchange.bodiless:
                    handle, offset, count = result.file_range  # type: ignore[attr-defined]
                    if exchange.chunked:
                        conn.send(b"%x\r\n" % count)
                    conn.sendfile(handle, offset, count)
                    if exchange.chunked:
                        conn.send(b"\r\n0\r\n\r\n")
            else:
                for data in result:
                    write(data)
                if not exchange.sent:
                    write(b"")
                if exchange.chunked:
                    conn.send(b"0\r\n\r\n")
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        # even when closing: a client still sending would get a reset, not our answer
        return exchange.body.drain() and not exchange.close


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    @property
    def server_port(self) -> int:
        return self.server_address[1]


def make_server(host: str, port: int, app: Callable) -> Server:
    handler = type("Handler", (ConnectionHandler,), {"app": staticmethod(app)})
    return Server((host, port), handler)
