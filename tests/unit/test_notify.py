"""Webhook delivery against a loopback receiver, commands as real processes, and backoff."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from odx_agent.backoff import next_retry_delay
from odx_agent.logsetup import add_secret
from odx_agent.notify import (
    NotificationError,
    command_environment,
    deliver_command,
    deliver_webhook,
)

PAYLOAD: dict[str, object] = {
    "event": "drop_completed",
    "watch": "north",
    "drop": "field-2024-05-01",
    "state": "completed",
    "task_uuid": "0d2d2b0c-7a63-4d52-9f1e-1f2f3a4b5c6d",
    "output": "/srv/results/north/field-2024-05-01",
    "error": None,
    "images": 12,
}


class _Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.status = 204
        self.body = b""


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, int]]:
    state = _Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.requests.append(
                ("POST", self.path, dict(self.headers.items()), self.rfile.read(length))
            )
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(state.body)))
            if state.status in (301, 302):
                self.send_header("Location", "/elsewhere")
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield state, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_webhook_receives_the_exact_json(receiver: tuple[_Receiver, int]) -> None:
    state, port = receiver
    deliver_webhook(f"http://127.0.0.1:{port}/hooks/odx", PAYLOAD, timeout=5)
    ((method, path, headers, body),) = state.requests
    assert (method, path) == ("POST", "/hooks/odx")
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == PAYLOAD


def test_webhook_500_raises_without_the_secret_path(receiver: tuple[_Receiver, int]) -> None:
    state, port = receiver
    state.status, state.body = 500, b"internal\nerror"
    url = f"http://127.0.0.1:{port}/hooks/T0KEN-IN-PATH"
    with pytest.raises(NotificationError) as caught:
        deliver_webhook(url, PAYLOAD, timeout=5)
    assert str(caught.value) == f"webhook http://127.0.0.1:{port} answered HTTP 500: internal error"


def test_webhook_redirect_is_not_followed(receiver: tuple[_Receiver, int]) -> None:
    state, port = receiver
    state.status = 302
    with pytest.raises(NotificationError, match="answered HTTP 302"):
        deliver_webhook(f"http://127.0.0.1:{port}/x", PAYLOAD, timeout=5)
    assert len(state.requests) == 1


def test_webhook_connection_error_names_neither_path_nor_token() -> None:
    add_secret("hook-secret-42")
    with pytest.raises(NotificationError) as caught:
        # Port 1 on loopback: nothing listens there, the connection is refused at once.
        deliver_webhook("http://127.0.0.1:1/p/hook-secret-42?token=abc", PAYLOAD, timeout=5)
    message = str(caught.value)
    assert message.startswith("webhook http://127.0.0.1:1 failed: ConnectionError")
    assert "hook-secret-42" not in message
    assert "token=abc" not in message
    assert caught.value.__cause__ is None


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "hook.py"
    path.write_text("import json, os, sys, time\n" + body)
    return [sys.executable, str(path)]


def test_command_receives_payload_on_stdin_and_odx_variables(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    argv = _script(
        tmp_path,
        f"data = json.load(sys.stdin)\n"
        f"env = {{k: v for k, v in os.environ.items() if k.startswith('ODX_')}}\n"
        f"open({str(record)!r}, 'w').write(json.dumps({{'stdin': data, 'env': env}}))\n",
    )
    deliver_command(argv, PAYLOAD, timeout=10)
    recorded = json.loads(record.read_text())
    assert recorded["stdin"] == PAYLOAD
    assert recorded["env"] == {
        "ODX_EVENT": "drop_completed",
        "ODX_WATCH": "north",
        "ODX_DROP": "field-2024-05-01",
        "ODX_STATE": "completed",
        "ODX_TASK_UUID": "0d2d2b0c-7a63-4d52-9f1e-1f2f3a4b5c6d",
        "ODX_OUTPUT": "/srv/results/north/field-2024-05-01",
        "ODX_ERROR": "",
    }


def test_command_failure_reports_status_and_last_stderr_lines(tmp_path: Path) -> None:
    lines = "".join(f"sys.stderr.write('line {n}\\n')\n" for n in range(1, 9))
    argv = _script(tmp_path, lines + "sys.exit(3)\n")
    with pytest.raises(NotificationError) as caught:
        deliver_command(argv, PAYLOAD, timeout=10)
    assert str(caught.value) == (
        "command python3 exited with status 3: line 4\nline 5\nline 6\nline 7\nline 8"
    ).replace("python3", Path(sys.executable).name)


def test_command_is_killed_after_timeout_with_its_children(tmp_path: Path) -> None:
    started_marker, late_marker = tmp_path / "started", tmp_path / "child-outlived-timeout"
    child = tmp_path / "child.py"
    child.write_text(f"import time\ntime.sleep(2.0)\nopen({str(late_marker)!r}, 'w').close()\n")
    argv = _script(
        tmp_path,
        "import subprocess, threading\n"
        f"subprocess.Popen([sys.executable, {str(child)!r}])\n"
        f"open({str(started_marker)!r}, 'w').close()\n"
        "threading.Event().wait()  # hangs until killed\n",
    )
    started = time.monotonic()
    with pytest.raises(NotificationError, match=r"timed out after 1 s"):
        deliver_command(argv, PAYLOAD, timeout=1.0)
    assert time.monotonic() - started < 10
    assert started_marker.exists()
    # The grandchild would write its marker 2 s after it started; wait past that.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not late_marker.exists():
        time.sleep(0.1)
    assert not late_marker.exists()


def test_missing_program_raises(tmp_path: Path) -> None:
    with pytest.raises(NotificationError, match="cannot run nope"):
        deliver_command([str(tmp_path / "nope")], PAYLOAD, timeout=5)
    with pytest.raises(NotificationError, match="empty"):
        deliver_command([], PAYLOAD, timeout=5)


def test_command_environment_drops_systemd_variables() -> None:
    environment = command_environment(
        {"watch": "w"}, {"PATH": "/bin", "NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1"}
    )
    assert environment["PATH"] == "/bin"
    assert environment["ODX_WATCH"] == "w"
    assert environment["ODX_DROP"] == ""
    assert "NOTIFY_SOCKET" not in environment
    assert "WATCHDOG_USEC" not in environment


def test_next_retry_delay_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    assert [next_retry_delay(n, rand=lambda: 1.0) for n in range(1, 6)] == [5, 10, 20, 40, 80]
    assert [next_retry_delay(n, rand=lambda: 0.0) for n in range(1, 4)] == [2.5, 5, 10]
    assert next_retry_delay(3, rand=lambda: 0.5) == 15
    assert next_retry_delay(20, rand=lambda: 1.0) == 3600
    assert next_retry_delay(10_000, rand=lambda: 0.0) == 1800
    assert next_retry_delay(0, rand=lambda: 1.0) == 5
    assert next_retry_delay(4, base=1.0, cap=6.0, rand=lambda: 1.0) == 6
