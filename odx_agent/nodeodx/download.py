"""Downloading a task's result archive: streamed to a hidden temporary file, bounded in
time and throughput, checked (length and zip integrity), synced, then renamed into place.

A node that stalls or drips bytes is cut off: every read returns as soon as any data has
arrived, so the deadline and the throughput floor are checked while bytes trickle in, and
a silent node is cut by the read timeout. Nothing is left behind on failure.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import requests
import urllib3

from odx_agent.nodeodx.exceptions import DownloadError, NodeConnectionError
from odx_agent.nodeodx.http import HttpClient, interpret_answer, malformed

ARCHIVE_NAME = "all.zip"
CHUNK_SIZE = 256 * 1024
THROUGHPUT_WINDOW_SECONDS = 30.0
MAX_ATTEMPTS = 3
_ERROR_BODY_LIMIT = 64 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")

ProgressCallback = Callable[[int, int | None], None]


class TransferGuard:
    """Given an optional total deadline and a minimum throughput averaged over windows of
    ``window_seconds``, decide whether a transfer may go on. ``clock`` returns seconds."""

    def __init__(
        self,
        *,
        deadline_seconds: float | None,
        min_bytes_per_second: int,
        window_seconds: float = THROUGHPUT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._min_bytes_per_second = min_bytes_per_second
        self._window_seconds = window_seconds
        now = clock()
        self._deadline = None if deadline_seconds is None else now + deadline_seconds
        self._window_start = now
        self._window_bytes = 0

    def remaining(self) -> float | None:
        """Return the seconds left before the deadline, or None without a deadline."""
        return None if self._deadline is None else self._deadline - self._clock()

    def check(self, transferred: int) -> None:
        """Given the bytes transferred so far, return when the transfer may go on.
        Raise DownloadError when the deadline has passed or the last full window ran
        below the minimum throughput."""
        now = self._clock()
        if self._deadline is not None and now >= self._deadline:
            raise DownloadError("Download deadline passed")
        elapsed = now - self._window_start
        if elapsed >= self._window_seconds:
            rate = (transferred - self._window_bytes) / elapsed
            if rate < self._min_bytes_per_second:
                raise DownloadError(
                    f"Download too slow: {rate:.0f} B/s over {elapsed:.0f} s, "
                    f"below the minimum of {self._min_bytes_per_second} B/s"
                )
            self._window_start = now
            self._window_bytes = transferred


class _BrokenTransferError(Exception):
    """The body broke off; the download may resume or restart within the deadline."""


def _read_timeout(http: HttpClient, guard: TransferGuard) -> float:
    remaining = guard.remaining()
    if remaining is None:
        return http.read_timeout
    if remaining <= 0:
        raise DownloadError("Download deadline passed")
    return min(http.read_timeout, remaining)


def _receive(
    http: HttpClient,
    path: str,
    target: BinaryIO,
    guard: TransferGuard,
    progress_callback: ProgressCallback | None,
) -> None:
    """Fetch the archive into ``target`` once, resuming from its current length when the
    node honours Range (206), restarting from zero when it answers 200."""
    offset = target.seek(0, os.SEEK_END)
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    response = http.send(
        "GET", path, headers=headers, stream=True, read_timeout=_read_timeout(http, guard)
    )
    with response:
        content_type = response.headers.get("Content-Type", "")
        if "json" in content_type or response.status_code not in (200, 206):
            body = response.raw.read(_ERROR_BODY_LIMIT, decode_content=True)
            answer = interpret_answer(
                response.status_code, content_type, body, secrets=http.secrets
            )
            raise malformed("archive download", answer, http.secrets)
        total: int | None
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if response.status_code == 206 and offset and match and int(match[1]) == offset:
            total = int(match[3])
        else:
            target.seek(0)
            target.truncate()
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        received = offset
        while True:
            guard.check(received)
            broken: str | None = None
            try:
                chunk = response.raw.read1(CHUNK_SIZE, decode_content=True)
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as error:
                broken = http.redact(str(error)) or type(error).__name__
            if broken is not None:
                # Raised outside the except block so no library error rides along as context.
                raise _BrokenTransferError(broken)
            if not chunk:
                break
            target.write(chunk)
            received += len(chunk)
            if progress_callback is not None:
                progress_callback(received, total)
        if total is not None and received != total:
            raise _BrokenTransferError(f"archive ended after {received} of {total} bytes")


def _fetch(
    http: HttpClient,
    path: str,
    target: BinaryIO,
    guard: TransferGuard,
    progress_callback: ProgressCallback | None,
) -> None:
    """Receive the archive into ``target``, trying again when the body breaks off."""
    broken = ""
    for _attempt in range(MAX_ATTEMPTS):
        try:
            _receive(http, path, target, guard, progress_callback)
        except _BrokenTransferError as error:
            broken = str(error)
        except NodeConnectionError:
            # Unreachable before any byte arrived: the caller's retry policy decides.
            if target.tell() == 0:
                raise
            broken = "connection lost"
        else:
            return
    raise DownloadError(f"Download failed after {MAX_ATTEMPTS} tries: {broken}")


def _check_archive(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as error:
        message = f"Downloaded archive is not a valid zip: {error}"
    else:
        if bad_member is None:
            return
        message = f"Downloaded archive is corrupt at {bad_member!r}"
    raise DownloadError(message)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def download_archive(
    http: HttpClient,
    task_uuid: str,
    destination_dir: Path,
    *,
    progress_callback: ProgressCallback | None = None,
    deadline_seconds: float | None = None,
    min_bytes_per_second: int = 16384,
    clock: Callable[[], float] = time.monotonic,
) -> Path:
    """Given a completed task, download its ``all.zip`` into ``destination_dir`` (created
    if missing) and return the archive's path. ``progress_callback`` gets (bytes received,
    total bytes or None). A body that breaks off is fetched again (at most 3 tries).

    Raise DownloadError when the archive arrives short or corrupt, the deadline passes or
    throughput stays below ``min_bytes_per_second``; NodeResponseError (e.g. "Asset not
    ready"), NodeServerError or NodeConnectionError as the node answers. On any failure the
    temporary file is removed and an existing ``all.zip`` is left untouched.
    """
    destination_dir = Path(destination_dir)
    destination_dir.mkdir(parents=True, exist_ok=True)
    guard = TransferGuard(
        deadline_seconds=deadline_seconds, min_bytes_per_second=min_bytes_per_second, clock=clock
    )
    path = f"/task/{quote(task_uuid, safe='')}/download/{ARCHIVE_NAME}"
    descriptor, temporary_name = tempfile.mkstemp(
        dir=destination_dir, prefix=f".{ARCHIVE_NAME}.", suffix=".part"
    )
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "w+b") as target:
            _fetch(http, path, target, guard, progress_callback)
            target.flush()
            os.fsync(target.fileno())
        _check_archive(temporary)
        final = destination_dir / ARCHIVE_NAME
        temporary.replace(final)
        _fsync_directory(destination_dir)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return final


__all__ = ["ARCHIVE_NAME", "TransferGuard", "download_archive"]
