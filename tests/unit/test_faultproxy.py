"""The fault proxy does each fault it offers, against a real loopback HTTP server."""

from __future__ import annotations

import http.server
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.faultproxy import FaultProxy
from tests.support.httpframing import RequestFramer

BIG_BODY = bytes(range(256)) * 800  # 204,800 bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.seen.append(f"GET {self.path}")  # type: ignore[attr-defined]
        body = BIG_BODY if self.path == "/big" else b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.seen.append(f"POST {self.path} {len(body)}")  # type: ignore[attr-defined]
        answer = str(len(body)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # cut connections are what these tests cause on purpose


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def proxy(server: http.server.ThreadingHTTPServer) -> Iterator[FaultProxy]:
    with FaultProxy(target_host="127.0.0.1", target_port=server.server_address[1]) as fault:
        yield fault


def _raw_get(proxy: FaultProxy, path: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return sock


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(10)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _closed_by_peer(sock: socket.socket) -> bool:
    """Return True when the peer closed without an answer (FIN or, with unread data, RST)."""
    try:
        return _read_all(sock) == b""
    except ConnectionResetError:
        return True


def _wait_for(condition: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_pass_forwards_requests_and_counts_them(proxy: FaultProxy, server: object) -> None:
    with requests.Session() as session:
        assert session.get(f"{proxy.url}/small", timeout=5).content == b"hello"
        assert session.post(f"{proxy.url}/echo", data=b"x" * 1000, timeout=5).text == "1000"
    assert proxy.url == f"http://127.0.0.1:{proxy.port}"
    assert proxy.connections_seen == 1
    assert proxy.requests_seen == 2
    assert server.seen == ["GET /small", "POST /echo 1000"]  # type: ignore[attr-defined]


def test_latency_delays_each_exchange(proxy: FaultProxy) -> None:
    proxy.set_mode("latency", seconds=0.3)
    started = time.monotonic()
    assert requests.get(f"{proxy.url}/small", timeout=5).content == b"hello"
    assert 0.6 <= time.monotonic() - started < 3.0  # once up, once down


def test_bandwidth_limits_the_rate(proxy: FaultProxy) -> None:
    proxy.set_mode("bandwidth", bytes_per_second=400_000)
    started = time.monotonic()
    assert requests.get(f"{proxy.url}/big", timeout=10).content == BIG_BODY
    assert 0.5 <= time.monotonic() - started < 5.0  # 205 KB at 400 KB/s


def test_cut_after_down_truncates_the_answer(proxy: FaultProxy) -> None:
    proxy.set_mode("cut_after", bytes=100, direction="down")
    with _raw_get(proxy, "/big") as sock:
        received = _read_all(sock)
    assert len(received) == 100
    assert received.startswith(b"HTTP/1.1 200")


def test_cut_after_up_truncates_the_request(
    proxy: FaultProxy, server: http.server.ThreadingHTTPServer
) -> None:
    proxy.set_mode("cut_after", bytes=300, direction="up")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{proxy.url}/echo", data=b"x" * 100_000, timeout=5)
    assert proxy.bytes_up == 300
    assert "POST /echo 100000" not in server.seen  # type: ignore[attr-defined]


def test_reset_sends_rst(proxy: FaultProxy) -> None:
    proxy.set_mode("reset")
    with pytest.raises(ConnectionResetError):  # the connect, send or read meets the RST
        _exchange(proxy.port, b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")


def test_blackhole_times_out_on_the_read_timeout(
    proxy: FaultProxy, server: http.server.ThreadingHTTPServer
) -> None:
    proxy.set_mode("blackhole")
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{proxy.url}/small", timeout=(2, 0.5))
    assert time.monotonic() - started < 2.0
    assert server.seen == []  # type: ignore[attr-defined]


def test_drip_delivers_one_byte_at_a_time(proxy: FaultProxy) -> None:
    proxy.set_mode("drip", interval=0.02)
    with _raw_get(proxy, "/small") as sock:
        started = time.monotonic()
        first = [sock.recv(100) for _ in range(10)]
        elapsed = time.monotonic() - started
    assert [len(b) for b in first] == [1] * 10
    assert b"".join(first) == b"HTTP/1.1 2"
    assert elapsed >= 0.15


def test_shaping_mode_applies_to_open_connections(proxy: FaultProxy) -> None:
    with requests.Session() as session:
        session.get(f"{proxy.url}/small", timeout=5)
        proxy.set_mode("latency", seconds=0.3)
        started = time.monotonic()
        session.get(f"{proxy.url}/small", timeout=5)
        assert time.monotonic() - started >= 0.6
    assert proxy.connections_seen == 1


def test_hold_up_keeps_the_request_from_the_server_until_released(
    proxy: FaultProxy, server: http.server.ThreadingHTTPServer
) -> None:
    hold = proxy.hold(b"POST /task/new/commit/")
    answers: list[str] = []
    with requests.Session() as session:
        session.get(f"{proxy.url}/small", timeout=5)  # same kept-alive connection
        worker = threading.Thread(
            target=lambda: answers.append(
                session.post(f"{proxy.url}/task/new/commit/abc", data=b"z" * 10, timeout=10).text
            )
        )
        worker.start()
        assert hold.wait_held(5)
        assert hold.held
        assert hold.request_head.startswith(b"POST /task/new/commit/abc HTTP/1.1")
        time.sleep(0.2)
        assert server.seen == ["GET /small"]  # type: ignore[attr-defined]
        hold.release()
        worker.join(5)
    assert answers == ["10"]
    assert server.seen == ["GET /small", "POST /task/new/commit/abc 10"]  # type: ignore[attr-defined]


def test_hold_cut_closes_the_held_request(
    proxy: FaultProxy, server: http.server.ThreadingHTTPServer
) -> None:
    hold = proxy.hold(re.compile(rb"GET /task/[^/]+/info"))
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            requests.get(f"{proxy.url}/task/abc/info", timeout=10)
        except requests.ConnectionError as error:
            errors.append(error)

    worker = threading.Thread(target=fetch)
    worker.start()
    assert hold.wait_held(5)
    hold.cut()
    worker.join(5)
    assert len(errors) == 1
    assert server.seen == []  # type: ignore[attr-defined]


def test_hold_after_response_bytes_stops_the_answer_halfway(
    proxy: FaultProxy, server: http.server.ThreadingHTTPServer
) -> None:
    hold = proxy.hold(b"GET /big", after_response_bytes=50_000)
    with _raw_get(proxy, "/big") as sock:
        assert hold.wait_held(5)
        received = b""
        while len(received) < 50_000:
            received += sock.recv(65536)
        assert len(received) == 50_000
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        assert server.seen == ["GET /big"]  # type: ignore[attr-defined]
        hold.release()
        sock.settimeout(5)
        received += _read_all(sock)
    assert received.endswith(BIG_BODY)


def test_unmatched_hold_does_not_hold(proxy: FaultProxy) -> None:
    hold = proxy.hold(b"POST /never")
    assert requests.get(f"{proxy.url}/small", timeout=5).content == b"hello"
    assert not hold.wait_held(0.1)


def test_stop_closes_every_connection_and_thread(server: http.server.ThreadingHTTPServer) -> None:
    before = threading.active_count()
    proxy = FaultProxy("127.0.0.1", server.server_address[1]).start()
    proxy.set_mode("blackhole")
    sockets = [_raw_get(proxy, "/small") for _ in range(3)]
    assert _wait_for(lambda: proxy.connections_open == 3)
    proxy.set_mode("pass")
    hold = proxy.hold(b"GET /held")
    sockets.append(_raw_get(proxy, "/held"))
    assert hold.wait_held(5)
    assert _wait_for(lambda: proxy.connections_open == 4)
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 3.0
    for sock in sockets:
        with sock:
            assert _closed_by_peer(sock)
    assert _wait_for(lambda: threading.active_count() == before)


def test_connections_beyond_the_bound_are_closed(server: http.server.ThreadingHTTPServer) -> None:
    with FaultProxy("127.0.0.1", server.server_address[1], max_connections=2) as proxy:
        proxy.set_mode("blackhole")
        kept = [_raw_get(proxy, "/a") for _ in range(2)]
        assert _wait_for(lambda: proxy.connections_open == 2)
        with _raw_get(proxy, "/b") as extra:
            assert _closed_by_peer(extra)
        assert proxy.connections_refused == 1
        for sock in kept:
            sock.close()


def test_unknown_mode_and_missing_parameter_are_refused(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        proxy.set_mode("slow")
    with pytest.raises(ValueError, match="needs seconds="):
        proxy.set_mode("latency")


def test_framer_finds_heads_across_bodies_and_splits() -> None:
    framer = RequestFramer()
    stream = (
        b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        b"GET /c HTTP/1.1\r\n\r\n"
    )
    pieces = []
    for index in range(0, len(stream), 7):
        pieces += framer.feed(stream[index : index + 7])
    heads = [piece for is_head, piece in pieces if is_head]
    assert [head.split(b" ")[1] for head in heads] == [b"/a", b"/b", b"/c"]
    assert b"".join(piece for _, piece in pieces) == stream
