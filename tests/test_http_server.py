"""The emulator's HTTP/1.1 server and its container client, on loopback sockets (no engine).

Both read heads from one buffer and use kernel timeouts (sagemaker_emulator.server.sockio): these tests pin the
framing cases that a buffer-based reader can get wrong (pipelined requests, heads split across
packets, stray line ends, bare LF, HEAD, chunked bodies both ways) and the timeouts.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagemaker_emulator.runtime import container_http
from sagemaker_emulator.runtime.interface import Address
from sagemaker_emulator.server import http_server
from sagemaker_emulator.server.http_server import make_server

EXAMPLES = int(os.environ["FUZZ_EXAMPLES"]) if os.environ.get("FUZZ_EXAMPLES") else None


def echo_app(environ, start_response):
    if environ["PATH_INFO"] == "/refuse":  # answered from the headers alone, the body never read
        start_response("413 Request Entity Too Large", [("Content-Length", "7")])
        return [b"too big"]
    try:
        body = environ["wsgi.input"].read()
    except ValueError:  # sockio.MalformedBody, as the emulator's app answers it
        start_response("400 Bad Request", [("Content-Length", "0")])
        return [b""]
    path = environ["PATH_INFO"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"one,", b"two"])
    reply = f"{environ['REQUEST_METHOD']} {path} {environ.get('HTTP_X_TEST', '-')} {len(body)}:".encode() + body
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(reply)))])
    return [reply]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    srv = make_server("127.0.0.1", 0, echo_app)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", srv.server_port
    srv.shutdown()
    srv.server_close()


def read_replies(sock: socket.socket, count: int) -> list[bytes]:
    """`count` whole replies (Content-Length or chunked) from `sock`."""
    data, replies = b"", []
    sock.settimeout(10)
    while len(replies) < count:
        if b"\r\n\r\n" in data:
            head, rest = data.split(b"\r\n\r\n", 1)
            fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
            if b"Content-Length" in fields and len(rest) >= int(fields[b"Content-Length"]):
                size = int(fields[b"Content-Length"])
                replies.append(head + b"\r\n\r\n" + rest[:size])
                data = rest[size:]
                continue
            if fields.get(b"Transfer-Encoding") == b"chunked" and b"0\r\n\r\n" in rest:
                end = rest.index(b"0\r\n\r\n") + 5
                replies.append(head + b"\r\n\r\n" + rest[:end])
                data = rest[end:]
                continue
            if head.startswith(b"HTTP/1.1 100"):
                replies.append(head + b"\r\n\r\n")
                data = rest
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return replies


def test_pipelined_requests_and_split_heads(server):
    with socket.create_connection(server) as sock:
        sock.sendall(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                     b"POST /b HTTP/1.1\r\nHost: x\r\nX-Test: two\r\nContent-Length: 0\r\n\r\n")
        first, second = read_replies(sock, 2)
        assert first.startswith(b"HTTP/1.1 200") and first.endswith(b"POST /a - 3:abc")
        assert second.endswith(b"POST /b two 0:")
        for piece in (b"POST /c HT", b"TP/1.1\r\nHost: x\r", b"\nContent-Length: 2\r\n\r", b"\nhi"):
            sock.sendall(piece)
            time.sleep(0.02)
        assert read_replies(sock, 1)[0].endswith(b"POST /c - 2:hi")


def test_stray_line_ends_bare_lf_and_head(server):
    with socket.create_connection(server) as sock:
        sock.sendall(b"\r\n\r\nGET /lf HTTP/1.1\nHost: x\nX-Test: bare\n\n")
        assert read_replies(sock, 1)[0].endswith(b"GET /lf bare 0:")
        sock.sendall(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(0.5)
        head = b""
        with pytest.raises(TimeoutError):
            while True:
                head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")  # no body after a HEAD
        sock.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_replies(sock, 1)[0].endswith(b"GET /after - 0:")


def test_chunked_both_ways_and_expect_continue(server):
    with socket.create_connection(server) as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert read_replies(sock, 1)[0].startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n")
        assert read_replies(sock, 1)[0].endswith(b"POST /up - 5:abcde")
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        streamed = read_replies(sock, 1)[0]
        assert b"Transfer-Encoding: chunked" in streamed and streamed.endswith(b"4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n")


def test_continue_only_when_the_body_is_wanted(server):
    with socket.create_connection(server) as sock:
        sock.sendall(b"POST /refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9999999\r\n\r\n")
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(65536):  # the answer, then the server closes: no body was ever sent
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 413") and answer.endswith(b"too big") and b"100 Continue" not in answer


def test_bad_heads_are_answered_and_closed(server):
    cases = {b"NONSENSE\r\n\r\n": b"400", b"GET / HTTP/1.1\r\nno colon here\r\n\r\n": b"400",
             b"POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n": b"400",
             b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n": b"414",
             b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 300 + b"\r\n": b"431"}
    for request, status in cases.items():
        with socket.create_connection(server) as sock:
            sock.sendall(request)
            sock.settimeout(10)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 " + status), (request[:40], answer[:80])
            assert b"Connection: close" in answer


def test_idle_client_is_dropped(monkeypatch):
    monkeypatch.setattr(http_server, "IDLE_TIMEOUT", 0.3)
    srv = make_server("127.0.0.1", 0, echo_app)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.server_port)) as sock:
            sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")  # 7 bytes never come
            sock.settimeout(10)
            started = time.time()
            assert sock.recv(100) == b""  # closed, not left hanging
            assert time.time() - started < 5
    finally:
        srv.shutdown()
        srv.server_close()


# -- the client side: runtime.container_http against a scripted "container" ----------------------
def scripted(replies: list[bytes | None]) -> tuple[Address, list[bytes]]:
    """A one-connection-at-a-time server sending each reply after reading one request head.

    None: read the request, then say nothing (a model that hangs)."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def run() -> None:
        pending = list(replies)
        while pending:
            conn, _ = listener.accept()
            with conn:
                while pending:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if not data:
                        break
                    seen.append(data)
                    reply = pending.pop(0)
                    if reply is None:
                        time.sleep(1.5)
                        break
                    if reply == b"CLOSE":
                        break
                    conn.sendall(reply)
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return Address("127.0.0.1", listener.getsockname()[1]), seen


def test_container_replies_chunked_to_end_and_kept_alive():
    port, seen = scripted([
        b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nX-Amzn-SageMaker-Custom-Attributes: k=v\r\n"
        b"Content-Length: 2\r\n\r\nok",
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nto the end",
    ])
    reply = container_http.request(port, "/invocations", b"x", {"Content-Type": "a/b"}, 5)
    assert (reply.status, reply.body, reply.content_type, reply.custom_attributes) == (200, b"ok", "a/b", "k=v")
    assert container_http.request(port, "/invocations", b"", {}, 5).body == b"abc"
    last = container_http.request(port, "/invocations", b"", {}, 5)
    assert (last.status, last.body) == (500, b"to the end")
    assert len(seen) == 3 and seen[0].startswith(b"POST /invocations HTTP/1.1\r\n")
    container_http.pool.forget(port)


def test_container_timeout_and_stale_connection_retry():
    port, _ = scripted([None])
    started = time.time()
    with pytest.raises(TimeoutError):
        container_http.request(port, "/invocations", b"", {}, 0.5)
    assert time.time() - started < 1.4
    port, seen = scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", b"CLOSE",
                           b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"])
    assert container_http.request(port, "/invocations", b"", {}, 5).body == b"a"
    time.sleep(0.1)  # the container drops the kept-alive connection; the next call retries on a new one
    assert container_http.request(port, "/invocations", b"", {}, 5).body == b"b"
    container_http.pool.forget(port)


# -- any bytes at all ---------------------------------------------------------------------------------
GOOD = b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
PIECES = [b"GET / HTTP/1.1\r\n", b"POST /p HTTP/1.0\r\n", b"Host: x\r\n", b"Content-Length: 3\r\n",
          b"Content-Length: -1\r\n", b"Transfer-Encoding: chunked\r\n", b"Expect: 100-continue\r\n",
          b"Connection: close\r\n", b"\r\n", b"\n", b"3\r\nabc\r\n", b"0\r\n\r\n", b"zz\r\n", b": no name\r\n",
          b"X: " + b"v" * 70000 + b"\r\n", b"\x00\xff\xfe", b"HEAD / HTTP/1.1\r\n"]


@settings(max_examples=EXAMPLES or 60, deadline=None, derandomize=EXAMPLES is None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=40)), max_size=12).map(b"".join))
def test_any_bytes_get_an_answer_or_a_close_and_the_server_lives(server, data):
    with socket.create_connection(server) as sock:
        sock.settimeout(5)
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)  # nothing more comes: the server must answer or close, not wait
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, BrokenPipeError):
            answer = b""
        assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:100]
        for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer):
            assert int(status) < 500, answer[:300]
    with socket.create_connection(server) as sock:  # and it still serves
        sock.sendall(GOOD)
        assert read_replies(sock, 1)[0].endswith(b"POST /ok - 2:ok")
