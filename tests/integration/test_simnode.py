"""Behaviour of the simulated NodeODX node over real HTTP: restarts, faults, webhooks,
test hooks, limits, queueing, keep-alive and the command body."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from odx_agent.simnode import SimulatedNode

IMAGE = ("IMG.JPG", b"\xff\xd8" + b"\x00" * 1000, "image/jpeg")


def create_task(
    session: requests.Session, url: str, images: int = 1, fields: dict[str, str] | None = None
) -> str:
    form = [(key, (None, value)) for key, value in (fields or {"name": "t"}).items()]
    task_uuid = session.post(f"{url}/task/new/init", files=form, timeout=5).json()["uuid"]
    for index in range(images):
        image = (f"IMG_{index:04d}.JPG", IMAGE[1], IMAGE[2])
        answer = session.post(
            f"{url}/task/new/upload/{task_uuid}", files={"images": image}, timeout=5
        )
        assert answer.json() == {"success": True}
    assert session.post(f"{url}/task/new/commit/{task_uuid}", timeout=5).json() == {
        "uuid": task_uuid
    }
    return task_uuid


def wait_for_code(session: requests.Session, url: str, task_uuid: str, code: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        info: dict[str, Any] = session.get(f"{url}/task/{task_uuid}/info", timeout=5).json()
        if info["status"]["code"] == code:
            return info
        time.sleep(0.05)
    pytest.fail(f"status {code} never reached")


def test_restart_keeps_tasks_and_reruns_a_running_one(tmp_path: Path) -> None:
    node = SimulatedNode(tmp_path, processing_seconds=0.3)
    node.start()
    port = node.port
    with requests.Session() as session:
        done = create_task(session, node.url, fields={"name": "done"})
        wait_for_code(session, node.url, done, 40)
    node.stop()
    node = SimulatedNode(tmp_path, port=port, processing_seconds=30.0)
    node.start()
    with requests.Session() as session:
        options = '[{"name": "dsm", "value": true}]'
        running = create_task(session, node.url, fields={"name": "run", "options": options})
        assert session.get(f"{node.url}/task/{running}/info", timeout=5).json()["status"] == {
            "code": 20
        }
    node.stop()
    with SimulatedNode(tmp_path, port=port, processing_seconds=0.3) as again:
        assert again.port == port
        with requests.Session() as session:
            listed = session.get(f"{again.url}/task/list", timeout=5).json()
            assert listed == [{"uuid": done}, {"uuid": running}]
            assert wait_for_code(session, again.url, done, 40)["name"] == "done"
            info = wait_for_code(session, again.url, running, 40)
    assert info["name"] == "run"
    assert info["options"][0] == {"name": "dsm", "value": True}
    assert info["imagesCount"] == 1


def drop_pattern(tmp_path: Path, seed: int) -> list[int]:
    with (
        SimulatedNode(tmp_path, drop_uploads=True, seed=seed) as node,
        requests.Session() as session,
    ):
        task_uuid = session.post(f"{node.url}/task/new/init", timeout=5).json()["uuid"]
        statuses = []
        for index in range(40):
            image = (f"IMG_{index:04d}.JPG", b"\x00" * 100_000, "image/jpeg")
            answer = session.post(
                f"{node.url}/task/new/upload/{task_uuid}", files={"images": image}, timeout=5
            )
            if answer.status_code == 500:
                assert answer.text == "Internal Server Error"
                assert answer.headers["Content-Type"].startswith("text/plain")
            statuses.append(answer.status_code)
        stored = sorted(path.name for path in (tmp_path / task_uuid / "images").iterdir())
    kept = [f"IMG_{index:04d}.JPG" for index, status in enumerate(statuses) if status == 200]
    assert stored == kept  # a dropped upload stores nothing
    return statuses


def test_drop_uploads_is_reproducible_and_drops_about_half(tmp_path: Path) -> None:
    first = drop_pattern(tmp_path / "a", seed=7)
    second = drop_pattern(tmp_path / "b", seed=7)
    assert first == second
    assert 10 <= first.count(500) <= 30
    assert set(first) == {200, 500}


class HookReceiver(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []  # noqa: RUF012 (shared by design)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_webhook_is_posted_when_processing_ends(tmp_path: Path) -> None:
    receiver = HTTPServer(("127.0.0.1", 0), HookReceiver)
    thread = threading.Thread(target=receiver.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook?job=42"
    try:
        with SimulatedNode(tmp_path, processing_seconds=0.2) as node, requests.Session() as session:
            task_uuid = create_task(session, node.url, 2, {"name": "w", "webhook": hook})
            deadline = time.monotonic() + 10
            while not HookReceiver.received and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        receiver.shutdown()
        receiver.server_close()
    path, content_type, body = HookReceiver.received[0]
    assert path == "/hook?job=42"
    assert content_type == "application/json"
    payload = json.loads(body)
    assert payload["uuid"] == task_uuid
    assert payload["status"] == {"code": 40}
    assert payload["images"] == ["IMG_0000.JPG", "IMG_0001.JPG"]


def test_inject_answers_raw_then_resumes(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path) as node, requests.Session() as session:
        node.inject("GET", "/info", status=502, body=b"<html>bad gateway</html>", count=2)
        first = session.get(f"{node.url}/info", timeout=5)
        second = session.get(f"{node.url}/info", timeout=5)
        third = session.get(f"{node.url}/info?x=1", timeout=5)
        assert (first.status_code, first.text, first.headers["Content-Type"]) == (
            502,
            "<html>bad gateway</html>",
            "text/html",
        )
        assert second.status_code == 502
        assert third.json()["version"] == "2.3.1"
        assert node.requests_seen() == [("GET", "/info")] * 3


def test_max_images_refuses_commit_and_is_reported(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path, max_images=2) as node, requests.Session() as session:
        assert session.get(f"{node.url}/info", timeout=5).json()["maxImages"] == 2
        task_uuid = session.post(f"{node.url}/task/new/init", timeout=5).json()["uuid"]
        for index in range(3):
            image = (f"I{index}.JPG", b"x", "image/jpeg")
            session.post(
                f"{node.url}/task/new/upload/{task_uuid}", files={"images": image}, timeout=5
            )
        answer = session.post(f"{node.url}/task/new/commit/{task_uuid}", timeout=5).json()
    assert answer == {"error": "3 images uploaded, but this node can only process up to 2."}


def test_second_task_waits_queued_for_a_free_slot(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path, processing_seconds=0.5) as node, requests.Session() as session:
        first = create_task(session, node.url)
        second = create_task(session, node.url)
        second_info = session.get(f"{node.url}/task/{second}/info", timeout=5).json()
        assert (second_info["status"], second_info["processingTime"]) == ({"code": 10}, -1)
        assert session.get(f"{node.url}/info", timeout=5).json()["taskQueueCount"] == 2
        wait_for_code(session, node.url, first, 40)
        wait_for_code(session, node.url, second, 40)


def test_reinit_keeps_uploads_and_aside_files_are_not_counted(tmp_path: Path) -> None:
    task_uuid = "0b6f8b7e-4b0c-4a39-9d0c-3f1c1a1e2d3f"
    header = {"set-uuid": task_uuid}
    with SimulatedNode(tmp_path) as node, requests.Session() as session:
        url = node.url
        session.post(f"{url}/task/new/init", files=[("name", (None, "a"))], headers=header)
        session.post(f"{url}/task/new/upload/{task_uuid}", files={"images": IMAGE})
        session.post(f"{url}/task/new/init", files=[("name", (None, "b"))], headers=header)
        files = [("images", IMAGE), ("images", IMAGE), ("images", ("geo.txt", b"g", "text/plain"))]
        assert session.post(f"{url}/task/new/upload/{task_uuid}", files=files).json() == {
            "success": True
        }
        assert session.post(f"{url}/task/new/commit/{task_uuid}").json() == {"uuid": task_uuid}
        info = session.get(f"{url}/task/{task_uuid}/info").json()
    assert (info["name"], info["imagesCount"]) == ("b", 3)
    names = sorted(path.name for path in (tmp_path / task_uuid / "images").iterdir())
    assert names == ["IMG.JPG", "IMG_.JPG", "IMG__.JPG"]
    assert [path.name for path in (tmp_path / task_uuid / "gcp").iterdir()] == ["geo.txt"]


def read_answer(stream: Any) -> tuple[int, bytes]:
    status = int(stream.readline().split()[1])
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, stream.read(length)


def test_keep_alive_serves_many_requests_on_one_connection(tmp_path: Path) -> None:
    upload = (
        b'--b\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\n\r\n'
        + b"\x00" * 5000
        + b"\r\n--b--\r\n"
    )
    with (
        SimulatedNode(tmp_path) as node,
        socket.create_connection(("127.0.0.1", node.port)) as sock,
    ):
        sock.settimeout(5)
        stream = sock.makefile("rb")
        answers = []
        for _ in range(10):
            sock.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
            answers.append(read_answer(stream)[0])
            # An error answered before the body is read must leave the connection usable.
            head = (
                "POST /task/new/upload/nope HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {len(upload)}\r\n\r\n"
            )
            sock.sendall(head.encode() + upload)
            status, body = read_answer(stream)
            answers.append(status)
            assert body == b'{"error":"Invalid uuid (not found)"}'
    assert answers == [200] * 20


def test_parallel_large_uploads_arrive_whole(tmp_path: Path) -> None:
    payload = os.urandom(1 << 20) * 8
    with SimulatedNode(tmp_path) as node:
        task_uuid = requests.post(f"{node.url}/task/new/init", timeout=5).json()["uuid"]

        def upload(index: int) -> Any:
            image = (f"BIG_{index}.JPG", payload, "image/jpeg")
            url = f"{node.url}/task/new/upload/{task_uuid}"
            return requests.post(url, files={"images": image}, timeout=30).json()

        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(upload, range(10)))
    assert answers == [{"success": True}] * 10
    stored = sorted((tmp_path / task_uuid / "images").iterdir())
    assert [path.read_bytes() == payload for path in stored] == [True] * 10


def test_token_is_required_everywhere_but_auth_info(tmp_path: Path) -> None:
    refused = {"error": "Invalid authentication token: token does not match."}
    with SimulatedNode(tmp_path, token="t0k") as node, requests.Session() as session:
        assert session.get(f"{node.url}/options", timeout=5).json() == refused
        assert session.post(f"{node.url}/task/cancel", data={"uuid": "x"}).json() == refused
        assert session.get(f"{node.url}/options?token=t0k", timeout=5).status_code == 200
        assert "message" in session.get(f"{node.url}/auth/info", timeout=5).json()
        assert "t0k" not in repr(node)


def test_command_prints_its_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from odx_agent.simnode import run_simulated_node;"
        "sys.exit(run_simulated_node(host='127.0.0.1', port=0, token='', processing_seconds=1,"
        f" fail_tasks=False, drop_uploads=False, seed=0, data_dir=Path({str(tmp_path)!r})))"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("simulated NodeODX node listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert requests.get(f"{url}/info", timeout=5).json()["version"] == "2.3.1"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
