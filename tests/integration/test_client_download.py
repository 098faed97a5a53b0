"""Archive downloads against misbehaving loopback servers: a dripping server is cut off at
the deadline, short and corrupt bodies fail without leaving a temporary file or touching
an older archive, a broken body resumes with Range when the server answers 206 and starts
over when it answers 200."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

from odx_agent.nodeodx import DownloadError, Node, NodeConnectionError
from tests.integration.test_client_servers import (
    Request,
    ScriptedServer,
    answer,
    closed_port,
    drip,
    head,
    short_body,
)


def make_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("odm_orthophoto/odm_orthophoto.tif", os.urandom(200_000))
        archive.writestr("log.json", b'{"ok": true}')
    return buffer.getvalue()


ARCHIVE = make_archive()


def test_dripping_server_is_cut_at_the_deadline(tmp_path: Path) -> None:
    with ScriptedServer(drip(10_000, seconds_per_byte=0.5)) as server:
        task = Node("127.0.0.1", server.port, timeout=5).get_task("u")
        started = time.monotonic()
        with pytest.raises(DownloadError, match=r"^Download deadline passed$"):
            task.download_archive(tmp_path, deadline_seconds=1.5)
        elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 4.0
    assert os.listdir(tmp_path) == []


def test_short_body_fails_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "all.zip").write_bytes(b"previous archive")
    with ScriptedServer(short_body(len(ARCHIVE), ARCHIVE[:1000])) as server:
        task = Node("127.0.0.1", server.port).get_task("u")
        with pytest.raises(DownloadError, match=r"^Download failed after 3 tries: "):
            task.download_archive(tmp_path)
    assert os.listdir(tmp_path) == ["all.zip"]
    assert (tmp_path / "all.zip").read_bytes() == b"previous archive"
    assert [request.headers.get("range") for request in server.requests] == [
        None,
        "bytes=1000-",
        "bytes=1000-",
    ]


def test_corrupt_archive_fails_and_leaves_nothing(tmp_path: Path) -> None:
    corrupt = ARCHIVE[:100] + bytes(len(ARCHIVE) - 200) + ARCHIVE[-100:]
    with ScriptedServer(answer(corrupt, content_type="application/zip")) as server:
        task = Node("127.0.0.1", server.port).get_task("u")
        with pytest.raises(DownloadError, match=r"^Downloaded archive is"):
            task.download_archive(tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []


def test_not_a_zip_fails(tmp_path: Path) -> None:
    with ScriptedServer(answer(b"x" * 5000, content_type="application/zip")) as server:
        task = Node("127.0.0.1", server.port).get_task("u")
        with pytest.raises(DownloadError, match=r"^Downloaded archive is not a valid zip"):
            task.download_archive(tmp_path)
    assert os.listdir(tmp_path) == []


def test_unreachable_node_fails_before_the_first_byte(tmp_path: Path) -> None:
    task = Node("127.0.0.1", closed_port()).get_task("u")
    with pytest.raises(NodeConnectionError):
        task.download_archive(tmp_path)
    assert os.listdir(tmp_path) == []


def _breaking_then(resume_status: str) -> tuple[ScriptedServer, threading.Lock]:
    """Return a server that sends half the archive and breaks, then answers the next
    request with ``resume_status`` (206: the rest as asked by Range; 200: everything)."""
    half = len(ARCHIVE) // 2
    calls = threading.Lock()

    def handler(connection: socket.socket, request: Request, stop: threading.Event) -> None:
        if not calls.locked():
            calls.acquire()
            headers = {"Content-Type": "application/zip", "Content-Length": str(len(ARCHIVE))}
            connection.sendall(head("200 OK", headers) + ARCHIVE[:half])
            return
        if resume_status.startswith("206"):
            start = int(request.headers["range"].removeprefix("bytes=").rstrip("-"))
            body = ARCHIVE[start:]
            headers = {
                "Content-Type": "application/zip",
                "Content-Length": str(len(body)),
                "Content-Range": f"bytes {start}-{len(ARCHIVE) - 1}/{len(ARCHIVE)}",
            }
        else:
            body = ARCHIVE
            headers = {"Content-Type": "application/zip", "Content-Length": str(len(body))}
        connection.sendall(head(resume_status, headers) + body)

    return ScriptedServer(handler), calls


@pytest.mark.parametrize("resume_status", ["206 Partial Content", "200 OK"])
def test_broken_body_resumes_or_restarts(tmp_path: Path, resume_status: str) -> None:
    server, _calls = _breaking_then(resume_status)
    progress: list[tuple[int, int | None]] = []
    with server:
        task = Node("127.0.0.1", server.port).get_task("u")
        path = task.download_archive(
            tmp_path, progress_callback=lambda done, total: progress.append((done, total))
        )
    assert path.read_bytes() == ARCHIVE
    assert os.listdir(tmp_path) == ["all.zip"]
    assert server.requests[1].headers["range"] == f"bytes={len(ARCHIVE) // 2}-"
    assert progress[-1] == (len(ARCHIVE), len(ARCHIVE))
