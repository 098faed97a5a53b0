"""Writing a small file so that readers see the old content or the new, never half."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(target: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``target`` through a hidden temporary file beside it (created
    ``mode``, never through a link), fsync it, then rename it over ``target``."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb", closefd=False) as stream:
            stream.write(data)  # a buffered write loops until every byte is out
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, target)
