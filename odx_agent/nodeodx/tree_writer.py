"""Creation of a file tree below one open directory, never through a link.

Every directory is made with ``mkdir(dir_fd=...)`` and entered with ``O_NOFOLLOW``; every
file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` relative to its parent's descriptor.
So a link already present, or planted while we write, is never followed, and nothing that
existed before is ever opened for writing. The writer remembers what it made so that a
failed extraction can take exactly that back out.
"""

from __future__ import annotations

import os
from contextlib import suppress

from odx_agent.nodeodx.exceptions import UnsafeArchiveError

FILE_MODE = 0o640
DIRECTORY_MODE = 0o750
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

Parts = tuple[str, ...]


def _foreign(parts: Parts) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"unsafe archive member path {'/'.join(parts)!r}: something this extraction did not "
        "create (a link or a foreign entry) is in its place in the destination"
    )


class TreeWriter:
    """Given a descriptor of an open directory, create directories and files below it.

    Only the chain of directories leading to the current member is held open, so the
    number of descriptors stays at the tree's depth however many directories there are.
    Archive members of one directory usually follow each other, so the chain is reused.
    """

    def __init__(self, root_fd: int) -> None:
        self._root_fd = root_fd
        self._chain: list[tuple[str, int]] = []
        self._made_directories: set[Parts] = set()
        self._directory_order: list[Parts] = []
        self._files: list[Parts] = []

    def make_directory(self, parts: Parts) -> None:
        """Given the components of a directory path, create it and its missing parents.
        Raise UnsafeArchiveError when one of them exists without this writer having made
        it, or is a link."""
        self._enter(parts, create=True)

    def create_file(self, parts: Parts) -> int:
        """Given the components of a file path, create the file (and missing parents) and
        return a descriptor open for writing; the caller closes it. Raise
        UnsafeArchiveError when anything already exists at that place."""
        parent_fd = self._enter(parts[:-1], create=True)
        try:
            file_fd = os.open(parts[-1], _FILE_FLAGS, FILE_MODE, dir_fd=parent_fd)
        except FileExistsError as error:
            raise _foreign(parts) from error
        self._files.append(parts)
        return file_fd

    def remove_created(self) -> None:
        """Remove every file and directory this writer created, deepest first, without
        following links; leave anything else (and directories holding it) in place."""
        for parts in reversed(self._files):
            with suppress(OSError, UnsafeArchiveError):
                os.unlink(parts[-1], dir_fd=self._enter(parts[:-1], create=False))
        for parts in reversed(self._directory_order):
            with suppress(OSError, UnsafeArchiveError):
                os.rmdir(parts[-1], dir_fd=self._enter(parts[:-1], create=False))
        self._files.clear()
        self._directory_order.clear()
        self._made_directories.clear()
        self.close()

    def close(self) -> None:
        """Close the descriptors the writer holds open (not the root's)."""
        self._close_from(0)

    def _enter(self, parts: Parts, *, create: bool) -> int:
        common = 0
        limit = min(len(parts), len(self._chain))
        while common < limit and self._chain[common][0] == parts[common]:
            common += 1
        self._close_from(common)
        for depth in range(common, len(parts)):
            parent_fd = self._chain[-1][1] if self._chain else self._root_fd
            path = parts[: depth + 1]
            if create and path not in self._made_directories:
                try:
                    os.mkdir(parts[depth], DIRECTORY_MODE, dir_fd=parent_fd)
                except FileExistsError as error:
                    raise _foreign(path) from error
                self._made_directories.add(path)
                self._directory_order.append(path)
            try:
                directory_fd = os.open(parts[depth], _DIRECTORY_FLAGS, dir_fd=parent_fd)
            except OSError as error:
                raise _foreign(path) from error
            self._chain.append((parts[depth], directory_fd))
        return self._chain[-1][1] if self._chain else self._root_fd

    def _close_from(self, depth: int) -> None:
        for _, directory_fd in self._chain[depth:]:
            os.close(directory_fd)
        del self._chain[depth:]


__all__ = ["DIRECTORY_MODE", "FILE_MODE", "TreeWriter"]
