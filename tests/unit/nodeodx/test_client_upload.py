"""The streamed multipart body and the parallel upload with retries, without a network:
the body is read like the HTTP library reads it, the uploads call a plain function."""

from __future__ import annotations

import os
import threading
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import pytest

from odx_agent.nodeodx import (
    AuthenticationError,
    NodeConnectionError,
    NodeResponseError,
    NodeServerError,
    TaskNotFoundError,
)
from odx_agent.nodeodx.upload import MultipartFileBody, check_readable, upload_all


def read_all(body: MultipartFileBody, size: int) -> bytes:
    chunks = []
    while chunk := body.read(size):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("read_size", [1, 7, 8192, 1 << 20])
def test_body_is_a_valid_multipart_form_of_declared_length(tmp_path: Path, read_size: int) -> None:
    content = os.urandom(100_003)
    path = tmp_path / "DJI_0001.JPG"
    path.write_bytes(content)
    with MultipartFileBody(path) as body:
        data = read_all(body, read_size)
        assert len(data) == len(body)
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {body.content_type}\r\n\r\n".encode() + data
        )
    (part,) = message.iter_parts()  # type: ignore[attr-defined]
    assert part.get_content_type() == "image/jpeg"
    assert part.get_param("name", header="content-disposition") == "images"
    assert part.get_filename() == "DJI_0001.JPG"
    assert part.get_payload(decode=True) == content


def test_body_reports_file_bytes_and_takes_another_name(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 10_000)
    sent: list[int] = []
    with MultipartFileBody(
        path, upload_name='gcp "list".txt', progress_callback=sent.append
    ) as body:
        data = b"".join(body)
    assert sent == [10_000]
    assert b'filename="gcp %22list%22.txt"' in data
    assert b"Content-Type: text/plain" in data


def test_body_refuses_a_file_that_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x" * 1000)
    with MultipartFileBody(path) as body:
        body.read(10_000)  # the head
        os.truncate(path, 10)
        assert body.read(10_000) == b"x" * 10
        with pytest.raises(OSError, match="shrank while it was being uploaded"):
            body.read(10_000)


def test_check_readable_names_the_missing_file(tmp_path: Path) -> None:
    present = tmp_path / "a.jpg"
    present.write_bytes(b"x")
    assert check_readable([str(present)]) == [present]
    with pytest.raises(FileNotFoundError) as caught:
        check_readable([present, tmp_path / "missing.jpg"])
    assert caught.value.filename == str(tmp_path / "missing.jpg")


class FlakyUploads:
    """Fails each file's first ``failures`` attempts with ``error``, then succeeds."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, path: Path) -> None:
        with self.lock:
            self.attempts[path.name] = self.attempts.get(path.name, 0) + 1
            attempt = self.attempts[path.name]
        if attempt <= self.failures:
            raise self.error


FILES = [Path(f"IMG_{index}.JPG") for index in range(5)]


def test_transient_failures_are_retried_and_progress_reaches_100() -> None:
    uploads = FlakyUploads(2, NodeServerError("Node answered HTTP 500"))
    progress: list[float] = []
    upload_all(
        uploads,
        FILES,
        parallel_uploads=3,
        max_retries=2,
        retry_timeout=0,
        progress_callback=progress.append,
    )
    assert uploads.attempts == {path.name: 3 for path in FILES}
    assert progress == sorted(progress)
    assert progress[-1] == 100.0


def test_retries_run_out_after_max_retries() -> None:
    uploads = FlakyUploads(10, NodeConnectionError("GET /x timed out"))
    with pytest.raises(NodeConnectionError):
        upload_all(uploads, FILES[:1], parallel_uploads=2, max_retries=3, retry_timeout=0)
    assert uploads.attempts == {"IMG_0.JPG": 4}


@pytest.mark.parametrize(
    "error",
    [
        NodeResponseError("Need at least 1 file.", no_retry=True),
        AuthenticationError("Invalid authentication token: token does not match."),
        TaskNotFoundError("Invalid uuid (not found)"),
    ],
)
def test_permanent_errors_are_not_retried(error: NodeResponseError) -> None:
    uploads = FlakyUploads(1, error)
    with pytest.raises(type(error)):
        upload_all(uploads, FILES[:1], parallel_uploads=1, max_retries=5, retry_timeout=0)
    assert uploads.attempts == {"IMG_0.JPG": 1}


def test_a_failure_stops_waiting_retries_of_other_files() -> None:
    # One file fails for good while the others wait an hour to retry: no one waits.
    def upload(path: Path) -> None:
        if path.name == "IMG_0.JPG":
            raise NodeResponseError("refused", no_retry=True)
        raise NodeServerError("Node answered HTTP 500")

    with pytest.raises(NodeResponseError, match=r"^refused$"):
        upload_all(upload, FILES, parallel_uploads=5, max_retries=5, retry_timeout=3600)


def test_an_unreadable_file_during_upload_is_not_retried() -> None:
    uploads = FlakyUploads(1, PermissionError("denied"))
    with pytest.raises(PermissionError):
        upload_all(uploads, FILES[:1], parallel_uploads=1, max_retries=5, retry_timeout=0)
    assert uploads.attempts == {"IMG_0.JPG": 1}
