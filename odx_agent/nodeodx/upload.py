"""Uploading images: a multipart body streamed from disk, one upload attempt, and the
parallel upload of many files with the seed's retry rules.

An image is never read whole into memory: the body hands the HTTP library a few kilobytes
at a time, with the exact Content-Length known up front.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from odx_agent.nodeodx.exceptions import (
    AuthenticationError,
    GenericError,
    NodeResponseError,
    TaskNotFoundError,
)
from odx_agent.nodeodx.http import HttpClient, malformed

log = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024
DEFAULT_CONTENT_TYPE = "image/jpg"  # what the seed sends when the type cannot be guessed


def _header_value(text: str) -> str:
    # Quotes and line breaks would end the header parameter early.
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartFileBody:
    """Given a file, a field name and the name to upload it under, a file-like
    ``multipart/form-data`` body of exactly ``len(body)`` bytes read from disk on demand.
    ``progress_callback`` receives the file bytes handed out so far.
    Raise OSError from ``read`` when the file shrinks while it is being sent."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        field_name: str = "images",
        upload_name: str | None = None,
        content_type: str | None = None,
        progress_callback: Callable[[int], None] | None = None,
    ) -> None:
        self.path = Path(path)
        name = upload_name if upload_name is not None else self.path.name
        kind = content_type or mimetypes.guess_type(name)[0] or DEFAULT_CONTENT_TYPE
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        self._head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{_header_value(field_name)}"; '
            f'filename="{_header_value(name)}"\r\n'
            f"Content-Type: {kind}\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self._file = self.path.open("rb")
        self.file_size = os.fstat(self._file.fileno()).st_size
        self._progress_callback = progress_callback
        self._head_sent = 0
        self._file_sent = 0
        self._tail_sent = 0

    def __len__(self) -> int:
        return len(self._head) + self.file_size + len(self._tail)

    def read(self, size: int = -1) -> bytes:
        """Return up to ``size`` next bytes of the body (a chunk when ``size`` < 0)."""
        wanted = CHUNK_SIZE if size is None or size < 0 else size
        if self._head_sent < len(self._head):
            part = self._head[self._head_sent : self._head_sent + wanted]
            self._head_sent += len(part)
            return part
        if self._file_sent < self.file_size:
            part = self._file.read(min(wanted, self.file_size - self._file_sent))
            if not part:
                raise OSError(f"{self.path} shrank while it was being uploaded")
            self._file_sent += len(part)
            if self._progress_callback is not None:
                self._progress_callback(self._file_sent)
            return part
        part = self._tail[self._tail_sent : self._tail_sent + wanted]
        self._tail_sent += len(part)
        return part

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK_SIZE):
            yield chunk

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> MultipartFileBody:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def check_readable(files: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Given file paths, return them as Paths. Raise FileNotFoundError, PermissionError,
    IsADirectoryError (an OSError) for the first one that cannot be opened for reading."""
    paths = [Path(file) for file in files]
    for path in paths:
        with path.open("rb"):
            pass
    return paths


def upload_file(
    http: HttpClient,
    task_uuid: str,
    path: str | os.PathLike[str],
    *,
    upload_name: str | None = None,
    progress_callback: Callable[[int], None] | None = None,
) -> None:
    """Given an initialised task, send one file to it, once, streamed from disk.
    Raise OSError when the file cannot be read, or the node errors of ``HttpClient.call``."""
    with MultipartFileBody(
        path, upload_name=upload_name, progress_callback=progress_callback
    ) as body:
        answer = http.call(
            "POST",
            f"/task/new/upload/{quote(task_uuid, safe='')}",
            data=body,
            headers={"Content-Type": body.content_type},
        )
    if not (isinstance(answer, dict) and answer.get("success") is True):
        raise malformed("upload", answer, http.secrets)


def _is_permanent(error: GenericError) -> bool:
    # The node said so, or retrying cannot help (wrong token, task gone).
    if isinstance(error, AuthenticationError | TaskNotFoundError):
        return True
    return isinstance(error, NodeResponseError) and error.no_retry


def upload_all(
    upload_one: Callable[[Path], None],
    files: Sequence[Path],
    *,
    parallel_uploads: int,
    max_retries: int,
    retry_timeout: float,
    progress_callback: Callable[[float], None] | None = None,
) -> None:
    """Given a function that uploads one file once, upload every file with up to
    ``parallel_uploads`` threads. A failed upload is tried again up to ``max_retries``
    times, waiting ``attempt * retry_timeout`` seconds first, unless the error is permanent.
    ``progress_callback`` gets the percentage of files done, from the calling thread.
    Raise the first error that is not retried; the other uploads then stop."""
    if not files:
        return
    stop = threading.Event()

    def upload_with_retries(path: Path) -> None:
        attempt = 0
        while True:
            if stop.is_set():
                return
            try:
                upload_one(path)
            except GenericError as error:
                attempt += 1
                if attempt > max_retries or _is_permanent(error):
                    raise
                delay = attempt * retry_timeout
                log.warning(
                    "Upload of %s failed (attempt %d of %d), trying again in %ss: %s",
                    path.name,
                    attempt,
                    max_retries + 1,
                    delay,
                    error,
                )
                if stop.wait(delay):
                    return
            else:
                return

    workers = max(1, min(parallel_uploads, len(files)))
    done = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nodeodx-upload") as pool:
        pending: set[Future[None]] = {pool.submit(upload_with_retries, path) for path in files}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()
                    done += 1
                    if progress_callback is not None:  # once per file, as the seed does
                        progress_callback(100.0 * done / len(files))
        finally:
            stop.set()
            for future in pending:
                future.cancel()


__all__ = ["MultipartFileBody", "check_readable", "upload_all", "upload_file"]
