"""The emulator's HTTP/1.1 server: a threaded WSGI server that keeps connections alive.

Werkzeug's development server closes every connection after one response, so each call pays a
TCP handshake and a new thread, several times what forwarding an InvokeEndpoint costs. This one
keeps HTTP/1.1 connections open (botocore and most clients reuse them), sets TCP_NODELAY, streams
request bodies to the application (`wsgi.input` is limited to Content-Length, or de-chunked), and
answers with Content-Length when the application gives one, chunked otherwise. It is small on
purpose: only what a WSGI application behind AWS SDK clients needs.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

log = logging.getLogger(__name__)

MAX_LINE = 65536
MAX_HEADERS = 200
DRAIN_LIMIT = 64 << 20  # unread request bytes we swallow (so the client reads our early answer); beyond: close
IDLE_TIMEOUT = 120.0


class BodyReader(io.RawIOBase):
    """`wsgi.input`: exactly Content-Length bytes of the request, never more."""

    def __init__(self, rfile: Any, length: int) -> None:
        self.rfile, self.remaining = rfile, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.remaining <= 0:
            return 0
        data = self.rfile.read(min(len(buffer), self.remaining))
        if not data:
            raise ConnectionError("the client closed the connection mid-body")
        buffer[:len(data)] = data
        self.remaining -= len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.remaining
        if self.remaining <= 0 or size == 0:
            return b""
        data = self.rfile.read(min(size, self.remaining))
        if not data:
            raise ConnectionError("the client closed the connection mid-body")
        self.remaining -= len(data)
        return data

    def drain(self) -> bool:
        """Swallow what the application did not read; False if too much is left to bother."""
        if self.remaining > DRAIN_LIMIT:
            return False
        while self.remaining > 0:
            if not self.read(65536):
                return False
        return True


class MalformedBody(ValueError):
    """The request body is not valid chunked transfer encoding."""


class ChunkedReader(io.RawIOBase):
    """`wsgi.input` for a `Transfer-Encoding: chunked` request body."""

    def __init__(self, rfile: Any) -> None:
        self.rfile = rfile
        self.left = 0
        self.done = False

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> None:
        line = self.rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        except ValueError:
            raise MalformedBody(f"malformed chunk size line {line[:40]!r}") from None
        if size < 0:
            raise MalformedBody(f"negative chunk size {size}")
        if size == 0:
            while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            self.done = True
        self.left = size

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while not self.done and (size is None or size < 0 or len(out) < size):
            if self.left == 0:
                self._next_chunk()
                if self.done:
                    break
            want = self.left if size is None or size < 0 else min(self.left, size - len(out))
            data = self.rfile.read(want)
            if not data:
                raise ConnectionError("the client closed the connection mid-body")
            out += data
            self.left -= len(data)
            if self.left == 0:
                self.rfile.readline(8)  # the CRLF after each chunk
        return bytes(out)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def drain(self) -> bool:
        try:
            while not self.done:
                if not self.read(65536):
                    break
        except MalformedBody:
            return False
        return True


class RequestHeaders:
    """Request headers: case-insensitive lookup, repeated headers joined with commas (RFC 9110)."""

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []
        self._lookup: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        key = name.lower()
        self._lookup[key] = f"{self._lookup[key]},{value}" if key in self._lookup else value

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._lookup.get(name.lower(), default)

    def __getitem__(self, name: str) -> str | None:
        return self._lookup.get(name.lower())

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._lookup

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


class WSGIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT
    server_version = "sagemaker-emulator"
    app: Callable = None  # type: ignore[assignment]  # set by make_server

    def handle_one_request(self) -> None:
        """Read one request line and its headers, run the application.

        The standard library parses headers with the `email` package, which costs more than the
        rest of an InvokeEndpoint; a request head is simple enough to read line by line.
        """
        try:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                self.close_connection = True
                return
            self.raw_requestline = line
            self.requestline = line.decode("latin-1").rstrip("\r\n")
            self.command, self.request_version = None, "HTTP/0.9"  # for send_error before we know better
            if len(line) > MAX_LINE:
                self.close_connection = True
                self.send_error(414)
                return
            parts = self.requestline.split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                self.request_version = "HTTP/1.0"
                self.close_connection = True
                self.send_error(400, "Bad request line")
                return
            self.command, self.path, self.request_version = parts
            headers = RequestHeaders()
            while True:
                raw = self.rfile.readline(MAX_LINE + 1)
                if raw in (b"\r\n", b"\n", b""):
                    break
                if len(raw) > MAX_LINE or len(headers) >= MAX_HEADERS:
                    self.close_connection = True
                    self.send_error(431)
                    return
                name, sep, value = raw.decode("latin-1").partition(":")
                if not sep:
                    self.close_connection = True
                    self.send_error(400, "Bad header line")
                    return
                headers.add(name.strip(), value.strip())
            self.headers = headers  # type: ignore[assignment]
            connection = (headers.get("Connection") or "").lower()
            self.close_connection = connection == "close" or (
                self.request_version == "HTTP/1.0" and connection != "keep-alive")
            if (headers.get("Expect") or "").lower() == "100-continue":
                self.send_response_only(100)
                self.end_headers()
            self._run()
            self.wfile.flush()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _environ(self) -> tuple[dict[str, Any], Any]:
        path, _, query = self.path.partition("?")
        if "://" in path:  # absolute-form request target
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        length = self.headers.get("Content-Length")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        body: Any = ChunkedReader(self.rfile) if chunked else BodyReader(self.rfile, int(length or 0))
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "", "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query, "RAW_URI": self.path, "REQUEST_URI": self.path,
            "SERVER_NAME": str(host), "SERVER_PORT": str(port), "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0], "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": body, "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
            "wsgi.input_terminated": chunked,
        }
        if self.headers.get("Content-Type"):
            environ["CONTENT_TYPE"] = self.headers["Content-Type"]
        if length is not None and not chunked:
            environ["CONTENT_LENGTH"] = length
        for key, value in self.headers.items():
            name = key.upper().replace("-", "_")
            if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                continue
            name = "HTTP_" + name
            environ[name] = f"{environ[name]},{value}" if name in environ else value
        return environ, body

    def _run(self) -> None:
        length = self.headers.get("Content-Length")
        if length is not None and not length.strip().isdigit():  # int() would fail below: answer, don't drop
            self.close_connection = True
            self.send_error(400, "Bad Content-Length")
            return
        environ, body = self._environ()
        state: dict[str, Any] = {"status": None, "headers": None, "sent": False, "chunked": False}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            if exc_info and state["sent"]:
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = status, headers
            return write

        def send_head() -> None:
            code, _, reason = state["status"].partition(" ")
            self.send_response_only(int(code), reason)
            names = set()
            for key, value in state["headers"]:
                names.add(key.lower())
                if key.lower() == "connection":
                    continue
                self.send_header(key, value)
            if "date" not in names:
                self.send_header("Date", self.date_time_string())
            bodiless = self.command == "HEAD" or int(code) in (204, 304) or int(code) < 200
            if "content-length" not in names and not bodiless:
                if self.request_version == "HTTP/1.1":
                    state["chunked"] = True
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.close_connection = True
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            state["sent"] = True

        def write(data: bytes) -> None:
            if not state["sent"]:
                send_head()
            if data:
                if state["chunked"]:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    self.wfile.write(data)

        try:
            result: Iterable[bytes] = self.app(environ, start_response)
        except Exception:
            log.exception("unhandled error in %s %s", self.command, self.path)
            self.close_connection = True
            self.send_error(500, "Internal error")
            return
        try:
            for data in result:
                write(data)
            if not state["sent"]:
                send_head()
            if state["chunked"]:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not body.drain():  # even when closing: a client still sending would get a reset, not our answer
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (stdlib signature)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", self.address_string(), format % args)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(host: str, port: int, app: Callable) -> Server:
    handler = type("Handler", (WSGIHandler,), {"app": staticmethod(app)})
    return Server((host, port), handler)
