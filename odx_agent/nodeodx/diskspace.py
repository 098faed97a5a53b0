"""Free-space checks for downloads and extractions.

The figures come from ``os.statvfs`` of the filesystem holding a directory; the function
that reads them is an argument so that tests can present any filesystem they need.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from odx_agent.nodeodx.exceptions import InsufficientSpaceError


class SpaceFigures(Protocol):
    """The part of ``os.statvfs_result`` that free-space decisions read."""

    @property
    def f_bavail(self) -> int: ...

    @property
    def f_frsize(self) -> int: ...

    @property
    def f_files(self) -> int: ...

    @property
    def f_favail(self) -> int: ...


StatvfsFunction = Callable[[Path], SpaceFigures]


def available_bytes(directory: Path, *, statvfs: StatvfsFunction = os.statvfs) -> int:
    """Given a directory, return the bytes an unprivileged process may still write to its
    filesystem (blocks available to non-root users times the fragment size)."""
    figures = statvfs(directory)
    return int(figures.f_bavail) * int(figures.f_frsize)


def check_free_space(
    directory: Path, needed: int, *, entries: int = 0, statvfs: StatvfsFunction = os.statvfs
) -> None:
    """Given a directory, a number of bytes and of files and folders to create (``entries``),
    return when its filesystem has that many bytes and inodes available. Raise
    InsufficientSpaceError (with ``needed``, ``available`` and ``resource``) when not.
    Filesystems that make inodes on demand (btrfs, many network filesystems) report no
    inode total; their inodes are not checked."""
    figures = statvfs(directory)
    available = int(figures.f_bavail) * int(figures.f_frsize)
    if needed > available:
        raise InsufficientSpaceError(
            f"not enough free space under {str(directory)!r}: "
            f"{needed} bytes needed, {available} available",
            needed=needed,
            available=available,
        )
    inodes = int(figures.f_favail)
    if entries and int(figures.f_files) > 0 and entries > inodes:
        raise InsufficientSpaceError(
            f"not enough free inodes under {str(directory)!r}: "
            f"{entries} files and folders to create, {inodes} inodes available",
            needed=entries,
            available=inodes,
            resource="inodes",
        )


def nearest_existing_directory(path: Path) -> Path:
    """Given a path that may not exist yet, return it or its closest ancestor that is an
    existing directory (the place whose filesystem will hold it)."""
    candidate = path.absolute()
    while not candidate.is_dir() and candidate != candidate.parent:
        candidate = candidate.parent
    return candidate


__all__ = [
    "SpaceFigures",
    "StatvfsFunction",
    "available_bytes",
    "check_free_space",
    "nearest_existing_directory",
]
