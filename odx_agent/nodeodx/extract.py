"""Safe, verified extraction of a NodeODX result archive (``all.zip``).

The archive comes from a remote node, so every name, size and type in it is untrusted.
``inspect_archive`` judges the central directory before anything is written; only then does
``safe_extract`` create the tree, below one open directory descriptor and never through a
link, streaming each member in bounded chunks while counting the bytes it really produces.

Staging: ``safe_extract`` wants a destination that does not exist yet (or is an empty
directory). Callers extract into a fresh hidden folder beside the final place and rename it
into place once the call returns, so a half-written result is never visible under its real
name. On any error the call removes what it wrote and re-raises.

Errors: UnsafeArchiveError for anything hostile (permanent for that archive),
InsufficientSpaceError when the filesystem is too full (transient), DownloadError when the
archive is corrupt (bad zip structure, CRC mismatch, a member shorter than declared:
transient, fetch it again), FileExistsError when the destination is not usable.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from odx_agent.nodeodx.diskspace import check_free_space, nearest_existing_directory
from odx_agent.nodeodx.exceptions import DownloadError, UnsafeArchiveError
from odx_agent.nodeodx.tree_writer import DIRECTORY_MODE, TreeWriter

CHUNK_BYTES = 1024 * 1024
# Each file and directory may waste up to one block beyond its bytes.
BLOCK_BYTES = 4096
_SUPPORTED_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_ENCRYPTED_FLAGS = 0x0001 | 0x0040
_PATCHED_DATA_FLAG = 0x0020
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
_CORRUPTION = (zipfile.BadZipFile, zlib.error, EOFError, ValueError)


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds an archive must stay within to be extracted."""

    max_total_bytes: int | None = None  # None: no absolute cap, only the free-space check
    max_members: int = 2_000_000
    max_compression_ratio: float = 1000.0  # per member and overall (uncompressed / compressed)
    ratio_min_bytes: int = 64 * 1024 * 1024  # ratio only judged above this uncompressed size
    free_space_margin_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class ExtractResult:
    """What an archive holds: regular files, distinct directories (named or implied by a
    file's path, the destination itself not counted) and the files' total bytes."""

    files: int
    directories: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class _Member:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    is_directory: bool


@dataclass(frozen=True)
class _Plan:
    members: tuple[_Member, ...]
    result: ExtractResult


def _refuse(name: str, rule: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"unsafe archive member {name!r}: {rule}")


def _member_parts(info: zipfile.ZipInfo) -> tuple[tuple[str, ...], bool]:
    """Given a member, return its path components and whether it is a directory. Raise
    UnsafeArchiveError when its name or type could reach outside the destination."""
    # orig_filename keeps what zipfile cuts at a NUL, so the check sees the real name.
    name = info.orig_filename
    if not name:
        raise _refuse(name, "empty name")
    if "\x00" in name:
        raise _refuse(name, "NUL character in name")
    if name.startswith("/"):
        raise _refuse(name, "absolute path")
    if _DRIVE_LETTER.match(name):
        raise _refuse(name, "drive letter in name")
    if "\\" in name:
        raise _refuse(name, "backslash in name")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise _refuse(name, "'..' component in name")
    if not parts:
        raise _refuse(name, "empty name")
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        raise _refuse(name, "symbolic link member")
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _refuse(name, f"special file (mode {oct(info.external_attr >> 16)})")
    if info.flag_bits & _ENCRYPTED_FLAGS:
        raise _refuse(name, "encrypted member")
    if info.flag_bits & _PATCHED_DATA_FLAG or info.compress_type not in _SUPPORTED_METHODS:
        raise _refuse(name, f"unsupported compression method {info.compress_type}")
    is_directory = name.endswith("/")
    if is_directory and info.file_size:
        raise _refuse(name, "directory entry carries data")
    return parts, is_directory


def _too_compressed(uncompressed: int, compressed: int, limits: ExtractLimits) -> bool:
    if uncompressed <= limits.ratio_min_bytes:
        return False
    return uncompressed > limits.max_compression_ratio * max(compressed, 1)


def _plan(archive: zipfile.ZipFile, limits: ExtractLimits) -> _Plan:
    """Given an open archive, return its checked members in archive order. Raise
    UnsafeArchiveError on the first rule a member or the whole archive breaks."""
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise UnsafeArchiveError(
            f"unsafe archive: {len(infos)} members, more than the limit {limits.max_members}"
        )
    members: list[_Member] = []
    # Tile archives repeat the same directory names a hundred thousand times: share them.
    shared_names: dict[str, str] = {}
    files: set[str] = set()
    named_directories: set[str] = set()
    all_directories: set[str] = set()
    total_bytes = 0
    total_compressed = 0
    for info in infos:
        name = info.orig_filename
        parts, is_directory = _member_parts(info)
        parts = (*(shared_names.setdefault(part, part) for part in parts[:-1]), parts[-1])
        # Compare names as a filesystem that folds Unicode forms would see them.
        key_parts = [unicodedata.normalize("NFC", part) for part in parts]
        key = "/".join(key_parts)
        parents = ["/".join(key_parts[:depth]) for depth in range(1, len(key_parts))]
        if any(parent in files for parent in parents):
            raise _refuse(name, "a parent directory collides with a file")
        if is_directory:
            if key in named_directories:
                raise _refuse(name, "duplicate name")
            if key in files:
                raise _refuse(name, "directory collides with a file")
            named_directories.add(key)
            all_directories.add(key)
        else:
            if key in files:
                raise _refuse(name, "duplicate name")
            if key in all_directories:
                raise _refuse(name, "file collides with a directory")
            files.add(key)
            if _too_compressed(info.file_size, info.compress_size, limits):
                raise _refuse(
                    name,
                    f"compression ratio {info.file_size / max(info.compress_size, 1):.0f}"
                    f" over the limit {limits.max_compression_ratio:g}",
                )
            total_bytes += info.file_size
            total_compressed += info.compress_size
            if limits.max_total_bytes is not None and total_bytes > limits.max_total_bytes:
                raise _refuse(
                    name, f"archive total exceeds the limit of {limits.max_total_bytes} bytes"
                )
        all_directories.update(parents)
        members.append(_Member(info, parts, is_directory))
    if _too_compressed(total_bytes, total_compressed, limits):
        raise UnsafeArchiveError(
            f"unsafe archive: overall compression ratio "
            f"{total_bytes / max(total_compressed, 1):.0f} over the limit "
            f"{limits.max_compression_ratio:g}"
        )
    result = ExtractResult(len(files), len(all_directories), total_bytes)
    return _Plan(tuple(members), result)


@contextmanager
def _open_archive(archive: Path) -> Iterator[zipfile.ZipFile]:
    try:
        opened = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
        raise DownloadError(f"archive {archive.name!r} is not a readable zip: {error}") from error
    except NotImplementedError as error:
        raise UnsafeArchiveError(f"unsafe archive {archive.name!r}: {error}") from error
    with opened:
        yield opened


def inspect_archive(archive: Path, limits: ExtractLimits | None = None) -> ExtractResult:
    """Given an archive path, read only its central directory and return what it holds.
    Raise UnsafeArchiveError (naming the member and the rule) for absolute paths, drive
    letters, '..' components, backslashes, NUL, empty names, links and other special
    files, duplicate names, a file colliding with a directory, too many members, a
    compression ratio or total over the limits. Raise DownloadError when it is no zip."""
    with _open_archive(archive) as opened:
        return _plan(opened, limits or ExtractLimits()).result


def required_space(
    archive: Path, result: ExtractResult, limits: ExtractLimits | None = None
) -> int:
    """Given an archive and its inspection result, return the bytes its extraction needs:
    the declared total, one block of slack per file and directory, and the safety margin.
    The archive itself is not counted: it already occupies its space."""
    del archive  # The estimate needs only the declared figures.
    margin = (limits or ExtractLimits()).free_space_margin_bytes
    return result.total_bytes + (result.files + result.directories) * BLOCK_BYTES + margin


def _copy_member(archive: zipfile.ZipFile, member: _Member, target_fd: int) -> None:
    """Given a file member and a descriptor open for writing, stream the member into it.
    Raise UnsafeArchiveError when it produces more than its declared size, DownloadError
    when it is corrupt or shorter than declared."""
    info = member.info
    declared = info.file_size
    # zipfile cuts a member at its declared size and then fails its CRC, which would hide
    # a lie as mere corruption. Letting it run up to two chunks further (it may decode one
    # chunk ahead of what it hands out) lets us see the excess first and stop there. The
    # ZipInfo is our own object and is put back as soon as the member is open.
    produced = 0
    try:
        info.file_size = declared + 2 * CHUNK_BYTES + 1
        try:
            source = archive.open(info)
        finally:
            info.file_size = declared
        with source:
            while chunk := source.read(CHUNK_BYTES):
                produced += len(chunk)
                if produced > declared:
                    raise _refuse(
                        info.orig_filename, f"produces more than its declared {declared} bytes"
                    )
                view = memoryview(chunk)
                while view:
                    view = view[os.write(target_fd, view) :]
    except _CORRUPTION as error:
        raise DownloadError(f"archive member {info.orig_filename!r} is corrupt: {error}") from error
    if produced != declared:
        raise DownloadError(
            f"archive member {info.orig_filename!r} is corrupt: "
            f"{produced} bytes instead of the declared {declared}"
        )


def _open_destination(destination: Path) -> tuple[int, bool]:
    """Given the destination, return an open descriptor on it and whether this call created
    it. Raise FileExistsError when it exists and is not an empty real directory."""
    created = False
    try:
        destination.mkdir(mode=DIRECTORY_MODE)
        created = True
    except FileExistsError:
        pass
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        directory_fd = os.open(destination, flags)
    except OSError as error:
        raise FileExistsError(
            f"extraction destination {str(destination)!r} exists and is not a directory"
        ) from error
    with os.scandir(directory_fd) as entries:
        occupied = next(entries, None) is not None
    if occupied:
        os.close(directory_fd)
        raise FileExistsError(f"extraction destination {str(destination)!r} is not empty")
    return directory_fd, created


def safe_extract(
    archive: Path, destination: Path, *, limits: ExtractLimits | None = None
) -> ExtractResult:
    """Given an archive and a destination that does not exist yet or is an empty directory,
    extract every member below it and return what was written. Files get mode 0o640 and
    directories 0o750, less the process umask. Raise UnsafeArchiveError, before writing,
    for anything ``inspect_archive`` refuses, and during writing when a member produces
    more than declared or a link or foreign file appears in the destination;
    InsufficientSpaceError when the filesystem lacks the space ``required_space`` names;
    DownloadError when the archive is corrupt; FileExistsError when the destination is
    not usable. On any error, remove what this call wrote and re-raise."""
    limits = limits or ExtractLimits()
    with _open_archive(archive) as opened:
        plan = _plan(opened, limits)
        needed = required_space(archive, plan.result, limits)
        check_free_space(
            nearest_existing_directory(destination),
            needed,
            entries=plan.result.files + plan.result.directories,
        )
        root_fd, created_root = _open_destination(destination)
        writer = TreeWriter(root_fd)
        try:
            for member in plan.members:
                if member.is_directory:
                    writer.make_directory(member.parts)
                    continue
                target_fd = writer.create_file(member.parts)
                try:
                    _copy_member(opened, member, target_fd)
                finally:
                    os.close(target_fd)
        except BaseException:
            writer.remove_created()
            if created_root:
                # rmdir never follows a link and refuses a directory that is not empty.
                with suppress(OSError):
                    destination.rmdir()
            raise
        finally:
            writer.close()
            os.close(root_fd)
    return plan.result


__all__ = [
    "ExtractLimits",
    "ExtractResult",
    "check_free_space",
    "inspect_archive",
    "required_space",
    "safe_extract",
]
