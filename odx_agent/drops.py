"""What is in a drop folder, and is it ready? Pure decisions over a folder snapshot.

``scan_drop`` reads a folder once (never following links) into a ``DropSnapshot``;
``decide`` takes a snapshot, the watch's readiness rules and the current time and says
whether to wait, go, or fail. Neither talks to the node or the state file.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".tif", ".tiff", ".png", ".dng"})
SIDECAR_NAMES = frozenset(
    {"gcp_list.txt", "geo.txt", "image_groups.txt", "align.las", "align.laz", "align.tif"}
)
TICKET_NAME = "odx.yaml"
_PARTIAL_SUFFIXES = (".part", ".tmp", "~", ".crdownload", ".partial", ".filepart")
# rsync writes ".name.XXXXXX" beside the final file
_RSYNC_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9]{6}$")


@dataclass(frozen=True)
class FileEntry:
    """A file of a drop: its path relative to the drop, size and modification time."""

    relative: str
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        return self.relative.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DropSnapshot:
    """A drop folder as seen at one moment."""

    images: tuple[FileEntry, ...]
    sidecars: tuple[FileEntry, ...]
    ticket: FileEntry | None
    marker: FileEntry | None
    ignored: tuple[str, ...]  # "relative/path (reason)"
    partial: tuple[str, ...]  # files still being transferred, by their name
    newest_mtime_ns: int
    unreadable: tuple[str, ...] = ()
    empty_images: tuple[str, ...] = ()
    clashes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def uploads(self) -> tuple[FileEntry, ...]:
        """The files sent to the node: images, then sidecars."""
        return self.images + self.sidecars

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.uploads)

    def fingerprint(self) -> str:
        """Return a digest of the images, sidecars and ticket (names, sizes, mtimes)."""
        digest = hashlib.sha256()
        entries = list(self.uploads) + ([self.ticket] if self.ticket else [])
        for entry in sorted(entries, key=lambda item: item.relative):
            digest.update(f"{entry.relative}\0{entry.size}\0{entry.mtime_ns}\n".encode())
        return digest.hexdigest()[:32]


def classify(relative: str, marker: str | None) -> str:
    """Given a path relative to the drop, return ``image``, ``sidecar``, ``ticket``,
    ``marker``, ``partial``, ``hidden`` or ``other``."""
    name = relative.rsplit("/", 1)[-1]
    lowered = name.lower()
    if "/" not in relative:
        if marker is not None and name == marker:
            return "marker"
        if name == TICKET_NAME:
            return "ticket"
    if lowered.endswith(_PARTIAL_SUFFIXES) or _RSYNC_TEMPORARY.match(name):
        return "partial"
    if any(part.startswith(".") for part in relative.split("/")):
        return "hidden"
    if lowered in SIDECAR_NAMES:
        return "sidecar"
    if os.path.splitext(lowered)[1] in IMAGE_EXTENSIONS:
        return "image"
    return "other"


def scan_drop(
    folder: Path,
    marker: str | None,
    *,
    lstat: Callable[[str], os.stat_result] = os.lstat,
    listdir: Callable[[Path], list[str]] = os.listdir,
    can_read: Callable[[str], bool] = lambda path: os.access(path, os.R_OK),
) -> DropSnapshot:
    """Given a drop folder and the watch's marker name, return what it holds now.

    Links and special files are never followed and never uploaded: they are listed as
    ignored with the reason. Raise FileNotFoundError when the folder is gone.
    """
    images: list[FileEntry] = []
    sidecars: list[FileEntry] = []
    ignored: list[str] = []
    partial: list[str] = []
    unreadable: list[str] = []
    empty: list[str] = []
    ticket: FileEntry | None = None
    marker_entry: FileEntry | None = None
    newest = lstat(str(folder)).st_mtime_ns
    found, closed = _walk(folder, lstat, listdir)
    unreadable.extend(f"{relative or '.'}/ (folder)" for relative in closed)
    for relative, info in found:
        newest = max(newest, info.st_mtime_ns)
        if stat.S_ISDIR(info.st_mode):
            if relative.rsplit("/", 1)[-1].startswith("."):
                ignored.append(f"{relative}/ (hidden folder)")
            continue
        kind = classify(relative, marker)
        if stat.S_ISLNK(info.st_mode):
            ignored.append(f"{relative} (symbolic link)")
            continue
        if not stat.S_ISREG(info.st_mode):
            ignored.append(f"{relative} (not a regular file)")
            continue
        entry = FileEntry(relative, info.st_size, info.st_mtime_ns)
        if kind == "marker":
            marker_entry = entry
        elif kind == "ticket":
            ticket = entry
        elif kind == "partial":
            partial.append(relative)
            ignored.append(f"{relative} (temporary file)")
        elif kind == "hidden":
            ignored.append(f"{relative} (hidden)")
        elif kind == "other":
            ignored.append(f"{relative} (not an image)")
        else:
            if not can_read(str(folder / relative)):
                unreadable.append(relative)
            elif kind == "image" and entry.size == 0:
                empty.append(relative)
            (images if kind == "image" else sidecars).append(entry)
    return DropSnapshot(
        images=tuple(sorted(images, key=lambda item: item.relative)),
        sidecars=tuple(sorted(sidecars, key=lambda item: item.relative)),
        ticket=ticket,
        marker=marker_entry,
        ignored=tuple(sorted(ignored)),
        partial=tuple(sorted(partial)),
        newest_mtime_ns=newest,
        unreadable=tuple(sorted(unreadable)),
        empty_images=tuple(sorted(empty)),
        clashes=_clashes(images + sidecars),
    )


def _walk(
    folder: Path, lstat: Callable[[str], os.stat_result], listdir: Callable[[Path], list[str]]
) -> tuple[list[tuple[str, os.stat_result]], list[str]]:
    """Return every entry below ``folder`` (not below hidden folders) with its lstat, and
    the folders that could not be listed."""
    found: list[tuple[str, os.stat_result]] = []
    closed: list[str] = []
    pending = [""]
    while pending:
        prefix = pending.pop()
        try:
            names = sorted(listdir(folder / prefix if prefix else folder))
        except (FileNotFoundError, NotADirectoryError):
            if not prefix:
                raise
            continue  # a subfolder removed while we looked: the next scan sees the change
        except PermissionError:
            closed.append(prefix)
            continue
        for name in names:
            relative = f"{prefix}/{name}" if prefix else name
            try:
                info = lstat(str(folder / relative))
            except FileNotFoundError:
                continue
            found.append((relative, info))
            if stat.S_ISDIR(info.st_mode) and not name.startswith("."):
                pending.append(relative)
    return found, closed


def _clashes(entries: list[FileEntry]) -> dict[str, tuple[str, ...]]:
    by_name: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        by_name[entry.name.lower()].append(entry.relative)
    return {name: tuple(sorted(paths)) for name, paths in by_name.items() if len(paths) > 1}


class Verdict(Enum):
    WAIT = "wait"
    GO = "go"
    FAIL = "fail"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    # when to look again at the earliest (unix seconds), for WAIT
    recheck_at: float | None = None


def decide(
    snapshot: DropSnapshot,
    *,
    marker: str | None,
    settle_seconds: float,
    min_images: int,
    now: float,
    last_change: float,
) -> Decision:
    """Given a snapshot, the readiness rules, the time now and when the agent last saw the
    drop change (unix seconds), return whether the drop is ready, not yet, or unusable.

    A drop with a marker that is settled but unusable (too few images, name clashes,
    unreadable or empty images) fails with the reason; without a marker it keeps waiting,
    since more files may still come.
    """
    if marker is not None and snapshot.marker is None:
        return Decision(Verdict.WAIT, f"waiting for the marker {marker}")
    quiet_since = max(last_change, snapshot.newest_mtime_ns / 1e9)
    settled_at = quiet_since + settle_seconds
    if now < settled_at:
        return Decision(Verdict.WAIT, "waiting for the drop to settle", recheck_at=settled_at)
    unusable = why_unusable(snapshot, min_images)
    if unusable is None:
        return Decision(Verdict.GO)
    if marker is None:
        return Decision(Verdict.WAIT, unusable)
    return Decision(Verdict.FAIL, unusable)


def why_unusable(snapshot: DropSnapshot, min_images: int) -> str | None:
    """Given a settled snapshot, return why it cannot be submitted, or None."""
    if snapshot.clashes:
        listed = "; ".join(", ".join(paths) for paths in snapshot.clashes.values())
        return f"images with the same file name in different folders: {listed}"
    if snapshot.unreadable:
        return f"cannot read: {', '.join(snapshot.unreadable)}"
    if snapshot.empty_images:
        return f"empty (zero-byte) images: {', '.join(snapshot.empty_images)}"
    count = len(snapshot.images)
    if count < max(min_images, 1):
        others = f" ({len(snapshot.ignored)} other files ignored)" if snapshot.ignored else ""
        return f"{count} images found, at least {max(min_images, 1)} needed{others}"
    return None
