"""Operator requests written to the state file by ``odx-agent retry`` and ``cancel``."""

from __future__ import annotations

import os
from pathlib import Path

from odx_agent.agent.lifecycle import drop_log
from odx_agent.agent.runtime import Runtime
from odx_agent.drops import scan_drop
from odx_agent.nodeodx.exceptions import GenericError
from odx_agent.states import FINAL_STATES, DropState
from odx_agent.store import Drop


def cancel(runtime: Runtime, drop: Drop) -> None:
    """Cancel a drop: its node task too, when it has one."""
    runtime.store.update(drop.id, now=runtime.clock(), requested=None)
    if drop.state in FINAL_STATES:
        return
    if drop.task_uuid and drop.node and (drop.commit_sent or drop.state != DropState.UPLOADING):
        try:
            runtime.nodes.client(drop.node).get_task(drop.task_uuid).cancel()
        except GenericError as error:
            drop_log(drop).warning("could not cancel the node task", error=str(error))
    runtime.lifecycle.move(
        runtime.store.get(drop.id), DropState.CANCELED, error="canceled by the operator"
    )
    runtime.canceled.discard(drop.id)


def retry(runtime: Runtime, drop: Drop) -> None:
    """Start a new attempt of a finished drop under a new task UUID.

    The old task is removed from the node if it still exists; a drop moved to ``.failed/``
    is moved back first.
    """
    runtime.store.update(drop.id, now=runtime.clock(), requested=None)
    if drop.state not in FINAL_STATES:
        drop_log(drop).warning("retry ignored: the drop is still active", state=drop.state.value)
        return
    watch = runtime.watch(drop.watch)
    if watch is None:
        drop_log(drop).warning("retry ignored: its watch is no longer configured")
        return
    if drop.task_uuid and drop.node and drop.node in runtime.nodes.names:
        try:
            runtime.nodes.client(drop.node).get_task(drop.task_uuid).remove()
        except GenericError:
            pass  # gone already, or the node is down: the old task is never used again
    folder = Path(drop.path)
    home = watch.path / drop.name
    if folder != home and folder.parent.name in (".failed", ".done") and folder.is_dir():
        if os.path.lexists(home):
            drop_log(drop).warning(
                "retry postponed: a folder of the same name is back", folder=str(home)
            )
            return
        os.rename(folder, home)
    try:
        snapshot = scan_drop(home, watch.ready.marker)
    except OSError as error:
        runtime.lifecycle.move(drop, DropState.READY)  # allowed; fails at upload with why
        drop_log(drop).warning("retry: cannot read the drop", error=str(error))
        return
    now = runtime.clock()
    runtime.lifecycle.move(
        drop,
        DropState.READY,
        path=str(home),
        attempt=drop.attempt + 1,
        task_uuid=None,
        commit_sent=False,
        resubmits=0,
        error=None,
        transient_since=None,
        fingerprint=snapshot.fingerprint(),
        marker_mtime_ns=snapshot.marker.mtime_ns if snapshot.marker else drop.marker_mtime_ns,
        seen_at=now,
        changed_at=now,
        upload_started_at=None,
        committed_at=None,
        node_finished_at=None,
        download_started_at=None,
        finished_at=None,
        changed_after_finish=False,
    )
