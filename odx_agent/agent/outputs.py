"""Where results and drops go on disk: output folders, earlier versions, .done/.failed.

Nothing here deletes results: an earlier version of a drop's output is moved aside to
``<drop>@<UTC timestamp>``. Staging folders are hidden inside the output folder so the
final rename is atomic (same file system) and a crash leaves only a hidden folder that the
next attempt removes.
"""

from __future__ import annotations

import os
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

from odx_agent.agent.report import REPORT_NAME

STAGING_PREFIX = ".odx-staging-"


def staging_folder(output: Path, drop_id: int) -> Path:
    return output / f"{STAGING_PREFIX}{drop_id}"


def remove_tree(path: Path) -> None:
    """Remove a folder we made (links inside are removed, never followed)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")


def free_name(parent: Path, base: str) -> Path:
    """Return ``parent/base``, or ``parent/base-2``, ... whichever does not exist yet."""
    candidate, number = parent / base, 1
    while os.path.lexists(candidate):
        number += 1
        candidate = parent / f"{base}-{number}"
    return candidate


def move_aside(folder: Path, now: float) -> Path | None:
    """Move an existing output folder to ``<name>@<UTC timestamp>``; return where it went."""
    if not os.path.lexists(folder):
        return None
    target = free_name(folder.parent, f"{folder.name}@{stamp(now)}")
    os.rename(folder, target)
    return target


def only_a_report(folder: Path) -> bool:
    """Return whether ``folder`` holds nothing but a report (a failed attempt's output)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    leftover = f".{REPORT_NAME}."  # a report write cut short: see atomicfile
    return all(name == REPORT_NAME or name.startswith(leftover) for name in names)


def prepare_output_root(output: Path) -> None:
    """Create the watch's output folder if needed (group-readable, group inherited)."""
    output.mkdir(parents=True, exist_ok=True)


def share_with_group(root: Path, gid: int) -> None:
    """Give every file under ``root`` the output folder's group, readable by it."""
    for current, folders, files in os.walk(root):
        for name in [*folders, *files, ""]:
            path = os.path.join(current, name) if name else current
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                continue
            if info.st_gid != gid:
                try:
                    os.chown(path, -1, gid, follow_symlinks=False)
                except PermissionError:
                    pass  # not a member of that group: keep ours, still group-readable
            wanted = (
                info.st_mode | stat.S_IRGRP | (stat.S_IXGRP if stat.S_ISDIR(info.st_mode) else 0)
            )
            if wanted != info.st_mode:
                os.chmod(path, stat.S_IMODE(wanted))


def move_drop(folder: Path, watch_path: Path, hidden: str, now: float) -> Path:
    """Move a drop folder into ``<watch>/<hidden>/`` (``.done`` or ``.failed``)."""
    target_parent = watch_path / hidden
    target_parent.mkdir(exist_ok=True)
    target = target_parent / folder.name
    if os.path.lexists(target):
        target = free_name(target_parent, f"{folder.name}@{stamp(now)}")
    os.rename(folder, target)
    return target
