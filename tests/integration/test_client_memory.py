"""Uploading stays flat in memory: a process running only the client uploads 100 images of
8 MB with 10 parallel uploads and its peak resident size stays under 45 MB."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

IMAGE_COUNT = 100
IMAGE_BYTES = 8 * 1024 * 1024
PEAK_LIMIT_MB = 45


class SinkHandler(BaseHTTPRequestHandler):
    """Answers init, upload and commit like a node, reading and discarding every body."""

    protocol_version = "HTTP/1.1"
    uploaded: list[int]
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        remaining = int(self.headers.get("Content-Length", "0"))
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                return
            remaining -= len(chunk)
        path = self.path.split("?")[0]
        if path.startswith("/task/new/upload/"):
            with self.lock:
                self.uploaded.append(int(self.headers["Content-Length"]))
            answer: object = {"success": True}
        else:
            answer = {"uuid": "6f1c1d36-0d4f-4bde-9c4e-39f1b1d7a0a5"}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def sink() -> Iterator[tuple[int, list[int]]]:
    uploaded: list[int] = []
    handler = type("Handler", (SinkHandler,), {"uploaded": uploaded})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), uploaded
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


CLIENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from odx_agent.nodeodx import Node

    files = sorted(Path(sys.argv[2]).iterdir())
    node = Node("127.0.0.1", int(sys.argv[1]), "token")
    task = node.create_task(files, parallel_uploads=10)
    # VmHWM is this program's own peak; ru_maxrss would include the parent's size, which
    # Linux carries over across exec.
    status = Path("/proc/self/status").read_text()
    peak_kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    print(task.uuid, peak_kib)
    """
)


@pytest.mark.slow
def test_uploading_100_images_of_8_mb_stays_under_45_mb(
    sink: tuple[int, list[int]], tmp_path: Path
) -> None:
    port, uploaded = sink
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(IMAGE_COUNT):
        with (folder / f"IMG_{index:04d}.JPG").open("wb") as image:
            image.truncate(IMAGE_BYTES)  # sparse: cheap to make, read like any file
    result = subprocess.run(
        [sys.executable, "-c", CLIENT, str(port), str(folder)],
        capture_output=True,
        text=True,
        timeout=110,
        check=True,
    )
    task_uuid, peak_kib = result.stdout.split()
    assert task_uuid == "6f1c1d36-0d4f-4bde-9c4e-39f1b1d7a0a5"
    assert len(uploaded) == IMAGE_COUNT
    assert all(length > IMAGE_BYTES for length in uploaded)
    assert int(peak_kib) / 1024 < PEAK_LIMIT_MB
