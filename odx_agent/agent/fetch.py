"""Bringing results home: verified download, safe extraction, an atomic move into place.

The archive is downloaded and extracted inside a hidden staging folder in the watch's
output folder; the report is written there too; then one rename puts ``<output>/<drop>/``
in place. An earlier version is moved aside first, never deleted. A crash leaves only the
staging folder, which the next attempt removes before starting again.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from odx_agent.agent import outputs
from odx_agent.agent.errors import DropFailed
from odx_agent.agent.lifecycle import drop_log, existing_report_matches
from odx_agent.agent.report import build_report, write_report
from odx_agent.agent.runtime import Runtime
from odx_agent.agent.track import output_tail
from odx_agent.config import WatchConfig
from odx_agent.nodeodx.exceptions import GenericError
from odx_agent.nodeodx.extract import (
    ExtractLimits,
    check_free_space,
    inspect_archive,
    required_space,
    safe_extract,
)
from odx_agent.states import DropState
from odx_agent.store import Drop

# room needed before a download starts at all; the archive's own size is checked once known
DOWNLOAD_MARGIN_BYTES = 64 * 1024 * 1024
DOWNLOAD_DEADLINE_SECONDS = 6 * 3600.0


def fetch(runtime: Runtime, drop: Drop, limits: ExtractLimits | None = None) -> Drop:
    """Given a ``downloading`` drop, put its results in place and complete it.

    Raise InsufficientSpaceError (transient) while the disk is short, DownloadError and
    connection errors (transient), UnsafeArchiveError (permanent).
    """
    assert drop.task_uuid is not None
    assert drop.node is not None
    watch = runtime.watch(drop.watch)
    if watch is None:
        raise DropFailed(f"watch {drop.watch!r} is no longer configured")
    final = watch.output / drop.name
    if existing_report_matches(final, drop):
        # placed before a crash; only the state lagged
        return _complete(runtime, drop, final, None)
    outputs.prepare_output_root(watch.output)
    staging = outputs.staging_folder(watch.output, drop.id)
    outputs.remove_tree(staging)
    staging.mkdir(mode=0o750)
    try:
        check_free_space(staging, DOWNLOAD_MARGIN_BYTES)
        task = runtime.nodes.client(drop.node).get_task(drop.task_uuid)
        received = 0

        def progress(done: int, _total: int | None) -> None:
            nonlocal received
            # a broken body is fetched again from zero: count what really came in
            runtime.metrics.add_download_bytes(done if done < received else done - received)
            received = done

        archive = task.download_archive(
            staging, progress_callback=progress, deadline_seconds=DOWNLOAD_DEADLINE_SECONDS
        )
        contents = inspect_archive(archive, limits)
        check_free_space(
            staging,
            required_space(archive, contents, limits) - archive.stat().st_size,
            entries=contents.files + contents.directories,
        )
        result = staging / "result"
        safe_extract(archive, result, limits=limits)
        if watch.keep_archive:
            os.rename(archive, result / "all.zip")
        else:
            archive.unlink()
        now = runtime.clock()
        report = build_report(
            _as_completed(drop, now, final), node_output_tail=output_tail(runtime, drop)
        )
        write_report(result, report)
        outputs.share_with_group(result, watch.output.stat().st_gid)
        if os.path.lexists(final):
            outputs.move_aside(final, now)
        os.rename(result, final)
    finally:
        outputs.remove_tree(staging)
    return _complete(runtime, drop, final, now)


def _as_completed(drop: Drop, now: float, final: Path) -> Drop:
    return dataclasses.replace(
        drop, state=DropState.COMPLETED, finished_at=now, output=str(final), error=None
    )


def _complete(runtime: Runtime, drop: Drop, final: Path, finished_at: float | None) -> Drop:
    """Record the drop completed (at the time its report says, when known)."""
    done = runtime.lifecycle.move(
        drop,
        DropState.COMPLETED,
        output=str(final),
        error=None,
        transient_since=None,
        finished_at=runtime.clock() if finished_at is None else finished_at,
    )
    watch = runtime.watch(drop.watch)
    if watch is not None:
        after_success(runtime, done, watch)
    return done


def after_success(runtime: Runtime, drop: Drop, watch: WatchConfig) -> None:
    """Remove the node's task and move or delete the drop folder, as the watch asks."""
    if watch.remove_after_download and drop.task_uuid and drop.node:
        try:
            runtime.nodes.client(drop.node).get_task(drop.task_uuid).remove()
        except GenericError as error:
            drop_log(drop).warning("could not remove the task from the node", error=str(error))
    if watch.on_success == "move":
        runtime.lifecycle.relocate(drop, watch, ".done")
    elif watch.on_success == "delete":
        folder = Path(drop.path)
        if folder.parent == watch.path and folder.is_dir() and not folder.is_symlink():
            try:
                outputs.remove_tree(folder)
            except OSError as error:
                drop_log(drop).error("cannot delete the drop folder", error=str(error))
