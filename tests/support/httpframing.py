"""Find where HTTP/1.1 requests begin in a client's byte stream.

The fault proxy holds "the next request whose head contains X". On a kept-alive
connection several requests follow one another, so the proxy must know where each one
starts: after the previous head and a body of Content-Length bytes or a chunked body.
Anything that does not look like HTTP switches the framer to passing bytes through.
"""

from __future__ import annotations

MAX_HEAD_BYTES = 65536


class RequestFramer:
    """Split a request stream into heads and other bytes, one feed() at a time."""

    def __init__(self) -> None:
        self._state = "head"
        self._buffer = b""
        self._body_left = 0
        self._chunk_left = 0

    def feed(self, data: bytes) -> list[tuple[bool, bytes]]:
        """Given the next bytes, return (is_head, bytes) pieces in order.

        A head piece is a whole request head (request line, headers, blank line); head
        bytes still incomplete are kept back until the rest arrives.
        """
        pieces: list[tuple[bool, bytes]] = []
        while data:
            if self._state == "raw":
                pieces.append((False, data))
                break
            if self._state == "head":
                data = self._feed_head(data, pieces)
            elif self._state == "body":
                taken = min(self._body_left, len(data))
                pieces.append((False, data[:taken]))
                self._body_left -= taken
                data = data[taken:]
                if self._body_left == 0:
                    self._state = "head"
            else:
                data = self._feed_chunked(data, pieces)
        return pieces

    def flush(self) -> bytes:
        """Return the bytes kept back so far (an incomplete head or line) and forget them."""
        pending, self._buffer = self._buffer, b""
        return pending

    def _feed_head(self, data: bytes, pieces: list[tuple[bool, bytes]]) -> bytes:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self._state = "raw"
                pieces.append((False, self._buffer))
                self._buffer = b""
            return b""
        head, rest = self._buffer[: end + 4], self._buffer[end + 4 :]
        self._buffer = b""
        pieces.append((True, head))
        self._start_body(head)
        return rest

    def _start_body(self, head: bytes) -> None:
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if b"chunked" in headers.get(b"transfer-encoding", b""):
            self._state = "chunk-size"
            return
        try:
            self._body_left = int(headers.get(b"content-length", b"0"))
        except ValueError:
            self._state = "raw"
            return
        self._state = "body" if self._body_left > 0 else "head"

    def _feed_chunked(self, data: bytes, pieces: list[tuple[bool, bytes]]) -> bytes:
        if self._state == "chunk-data":
            taken = min(self._chunk_left, len(data))
            pieces.append((False, data[:taken]))
            self._chunk_left -= taken
            if self._chunk_left == 0:
                self._state = "chunk-size"
            return data[taken:]
        # chunk-size and trailer states read whole lines.
        self._buffer += data
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self._state = "raw"
                pieces.append((False, self._buffer))
                self._buffer = b""
            return b""
        line, rest = self._buffer[:end], self._buffer[end + 2 :]
        pieces.append((False, self._buffer[: end + 2]))
        self._buffer = b""
        if self._state == "trailer":
            if not line:
                self._state = "head"
            return rest
        if not line:
            return rest  # the CRLF that closes a chunk's data
        try:
            size = int(line.split(b";")[0], 16)
        except ValueError:
            self._state = "raw"
            return rest
        if size == 0:
            self._state = "trailer"
        else:
            self._state, self._chunk_left = "chunk-data", size
        return rest
