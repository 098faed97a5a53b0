"""Building hostile zip archives and proving nothing outside a destination changed.

zipfile refuses to write some lies (sizes, NUL in names), so these helpers patch the bytes
of a written archive: the fields sit both in the member's local header and in its central
directory record, and both are changed so the archive lies consistently.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zipfile
from pathlib import Path

_LOCAL_SIGNATURE = b"PK\x03\x04"
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_CENTRAL_FIXED = 46
_LOCAL_FIXED = 30
# Offsets of (CRC, compressed size, uncompressed size) in each record.
_LOCAL_CRC, _CENTRAL_CRC = 14, 16
_MEGABYTE = 1024 * 1024


def _offsets(archive: Path, name: str) -> tuple[int, int]:
    """Return the offsets of the member's local header and central directory record."""
    with zipfile.ZipFile(archive) as opened:
        infos = opened.infolist()
        start = opened.start_dir
    index = next(i for i, info in enumerate(infos) if info.orig_filename == name)
    with archive.open("rb") as handle:
        position = start
        for _ in range(index):
            handle.seek(position)
            record = handle.read(_CENTRAL_FIXED)
            assert record[:4] == _CENTRAL_SIGNATURE
            lengths = struct.unpack("<HHH", record[28:34])
            position += _CENTRAL_FIXED + sum(lengths)
    return infos[index].header_offset, position


def patch_member(
    archive: Path, name: str, *, crc: int | None = None, file_size: int | None = None
) -> None:
    """Given a member of a (non-zip64) archive, overwrite its declared CRC and/or size."""
    local, central = _offsets(archive, name)
    with archive.open("r+b") as handle:
        handle.seek(local)
        assert handle.read(4) == _LOCAL_SIGNATURE
        handle.seek(central)
        assert handle.read(4) == _CENTRAL_SIGNATURE
        for base, crc_offset in ((local, _LOCAL_CRC), (central, _CENTRAL_CRC)):
            if crc is not None:
                handle.seek(base + crc_offset)
                handle.write(struct.pack("<I", crc))
            if file_size is not None:
                handle.seek(base + crc_offset + 8)
                handle.write(struct.pack("<I", file_size))


def rename_member(archive: Path, name: str, raw_name: bytes) -> None:
    """Given a member, replace its stored name with raw bytes of the same length (used to
    plant names zipfile will not write, such as one holding a NUL)."""
    assert len(raw_name) == len(name.encode())
    local, central = _offsets(archive, name)
    with archive.open("r+b") as handle:
        for position in (local + _LOCAL_FIXED, central + _CENTRAL_FIXED):
            handle.seek(position)
            assert handle.read(len(raw_name)) == name.encode()
            handle.seek(position)
            handle.write(raw_name)


def write_zeros(
    archive: zipfile.ZipFile, name: str, size: int, *, force_zip64: bool = False
) -> None:
    """Add a member of ``size`` zero bytes, written in 1 MiB chunks (never held whole)."""
    chunk = bytes(_MEGABYTE)
    with archive.open(name, "w", force_zip64=force_zip64) as member:
        remaining = size
        while remaining:
            piece = min(remaining, _MEGABYTE)
            member.write(chunk[:piece])
            remaining -= piece


def tree_snapshot(root: Path, *, exclude: Path | None = None) -> dict[str, str]:
    """Return every entry below root (links not followed) mapped to its type and content
    hash or link target, leaving out ``exclude`` and what is below it."""
    snapshot: dict[str, str] = {}
    for directory, directories, files in os.walk(root, followlinks=False):
        base = Path(directory)
        if exclude is not None and base == exclude:
            directories.clear()
            continue
        for entry in directories + files:
            path = base / entry
            if exclude is not None and path == exclude:
                continue
            relative = str(path.relative_to(root))
            if path.is_symlink():
                snapshot[relative] = "link:" + os.readlink(path)
            elif path.is_dir():
                snapshot[relative] = "dir"
            else:
                snapshot[relative] = "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return snapshot
