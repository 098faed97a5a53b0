"""Request bodies of the simulated node: streamed multipart uploads and small forms.

Uploaded files go straight from the socket to their final place on disk in chunks, so
memory stays flat whatever the file size; text fields are kept in memory, bounded.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header

CHUNK_SIZE = 1 << 20
MAX_FIELD_BYTES = 4 << 20


class BodyError(Exception):
    """The request body could not be read or parsed."""


@dataclass
class FormData:
    """What a form body carried: text fields (first value wins) and stored file names."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    file_parts: int = 0


def iter_body(stream: BinaryIO, length: int | None, chunked: bool) -> Iterator[bytes]:
    """Given the request stream and its framing, yield the body in chunks. Raise
    BodyError when the client goes away before the body ends."""
    if chunked:
        yield from _iter_chunked(stream)
        return
    remaining = length or 0
    while remaining > 0:
        chunk = stream.read(min(remaining, CHUNK_SIZE))
        if not chunk:
            raise BodyError("connection closed before the body ended")
        remaining -= len(chunk)
        yield chunk


def _iter_chunked(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        size_line = stream.readline(1024)
        if not size_line:
            raise BodyError("connection closed inside a chunked body")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BodyError("bad chunk size") from None
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers carry nothing the node uses
            return
        remaining = size
        while remaining > 0:
            chunk = stream.read(min(remaining, CHUNK_SIZE))
            if not chunk:
                raise BodyError("connection closed inside a chunk")
            remaining -= len(chunk)
            yield chunk
        stream.readline(16)


def read_form(chunks: Iterator[bytes], content_type: str, file_dir: Path | None) -> FormData:
    """Given the body chunks and the Content-Type, return the fields and files it carried.
    Files are stored in ``file_dir`` (renamed ``NAME_.EXT`` when the name is taken), or
    skipped when it is None. Raise BodyError on a malformed body, leaving no partial file."""
    media_type, parameters = parse_options_header(content_type)
    if media_type == b"multipart/form-data" and parameters.get(b"boundary"):
        return _read_multipart(chunks, parameters[b"boundary"], file_dir)
    body = bytearray()
    for chunk in chunks:
        if len(body) + len(chunk) > MAX_FIELD_BYTES:
            raise BodyError("form body too large")
        body += chunk
    form = FormData()
    if media_type == b"application/x-www-form-urlencoded" or not media_type:
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            form.fields.setdefault(name, value)
    return form


class _MultipartSink:
    """Receives the parser's callbacks for one body and stores what they describe."""

    def __init__(self, file_dir: Path | None) -> None:
        self.form = FormData()
        self._file_dir = file_dir
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._field_name = ""
        self._field_value: bytearray | None = None
        self._file: BinaryIO | None = None
        self._file_path: Path | None = None
        self._field_bytes = 0

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._field_value = None
        self._file = None
        self._file_path = None

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).strip().lower()] = bytes(self._header_value).strip()
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"").decode("latin-1")
        _, parameters = parse_options_header(disposition)
        self._field_name = parameters.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in parameters:
            self._field_value = bytearray()
            return
        self.form.file_parts += 1
        name = _safe_name(parameters[b"filename"].decode("utf-8", "replace"))
        if self._file_dir is not None and name:
            self._file_path = reserve_name(self._file_dir, name)
            self._file = self._file_path.open("wb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(memoryview(data)[start:end])
        elif self._field_value is not None:
            self._field_bytes += end - start
            if self._field_bytes > MAX_FIELD_BYTES:
                raise BodyError("form fields too large")
            self._field_value.extend(data[start:end])

    def _part_end(self) -> None:
        if self._file is not None and self._file_path is not None:
            self._file.close()
            self.form.files.append(self._file_path.name)
            self._file = None
            self._file_path = None
        elif self._field_value is not None:
            value = self._field_value.decode("utf-8", "replace")
            self.form.fields.setdefault(self._field_name, value)
            self._field_value = None

    def discard_partial(self) -> None:
        """Close and delete the file being written, if any, and every stored file."""
        if self._file is not None:
            self._file.close()
        if self._file_dir is not None:
            leftovers = [*self.form.files, *([self._file_path.name] if self._file_path else [])]
            for name in leftovers:
                (self._file_dir / name).unlink(missing_ok=True)


def _read_multipart(chunks: Iterator[bytes], boundary: bytes, file_dir: Path | None) -> FormData:
    sink = _MultipartSink(file_dir)
    try:
        parser = MultipartParser(boundary, sink.callbacks())  # type: ignore[arg-type]
        for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except BodyError:
        sink.discard_partial()
        raise
    except Exception as error:  # the parser's own errors are plain exceptions
        sink.discard_partial()
        raise BodyError(f"malformed multipart body: {error}") from error
    return sink.form


def _safe_name(raw: str) -> str:
    # Only the last path component counts: a client never writes outside the task folder.
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip().replace("\x00", "")
    return "" if name in ("", ".", "..") else name


def reserve_name(folder: Path, name: str) -> Path:
    """Given a folder and a file name, create and return a new empty file there, named
    ``name`` or, when taken, with ``_`` added before the extension until it is free."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, dot, extension = name, "", ""
    candidate = name
    while True:
        path = folder / candidate
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            return path
        stem += "_"
        candidate = f"{stem}{dot}{extension}"
