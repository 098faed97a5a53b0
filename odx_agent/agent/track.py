"""Following a task on the node until it ends."""

from __future__ import annotations

from odx_agent.agent.errors import DropFailed
from odx_agent.agent.lifecycle import drop_log
from odx_agent.agent.runtime import Runtime
from odx_agent.agent.submit import resubmit
from odx_agent.nodeodx import TaskStatus
from odx_agent.nodeodx.exceptions import GenericError, TaskNotFoundError
from odx_agent.states import DropState
from odx_agent.store import Drop

OUTPUT_TAIL_LINES = 50
# a task this far along is polled every second: completion is noticed at once
NEAR_END_PROGRESS = 90.0
NEAR_END_INTERVAL = 1.0


def output_tail(runtime: Runtime, drop: Drop) -> list[str]:
    """Return the last lines of the node's output for the drop's task (empty if unknown)."""
    if not drop.task_uuid or not drop.node:
        return []
    try:
        lines = runtime.nodes.client(drop.node).get_task(drop.task_uuid).output(-OUTPUT_TAIL_LINES)
    except GenericError:
        return []
    return [line.rstrip("\n") for line in lines][-OUTPUT_TAIL_LINES:]


def poll(runtime: Runtime, drop: Drop) -> Drop:
    """Given a ``processing`` drop, ask the node about its task once and act on the answer.

    Return the drop as it now is; ``next_attempt_at`` says when to ask again.
    """
    assert drop.task_uuid is not None
    assert drop.node is not None
    client = runtime.nodes.client(drop.node)
    try:
        info = client.get_task(drop.task_uuid).info()
    except TaskNotFoundError:
        if drop.resubmits >= 1:
            raise DropFailed(
                f"the node no longer knows task {drop.task_uuid}, and it was already "
                "submitted again once"
            ) from None
        return resubmit(runtime, drop, f"the node no longer knows task {drop.task_uuid}")
    runtime.nodes.mark(drop.node, up=True)
    now = runtime.clock()
    if info.status == TaskStatus.COMPLETED:
        # the next poll's time must not hold back the download (a webhook polls early)
        return runtime.lifecycle.move(
            drop, DropState.DOWNLOADING, transient_since=None, error=None, next_attempt_at=None
        )
    if info.status == TaskStatus.FAILED:
        reason = info.last_error or "the task failed on the node"
        return runtime.lifecycle.move(
            drop,
            DropState.FAILED,
            error=f"processing failed on node {drop.node}: {reason}",
            node_output_tail=output_tail(runtime, drop),
        )
    if info.status == TaskStatus.CANCELED:
        return runtime.lifecycle.move(
            drop,
            DropState.CANCELED,
            error="the task was canceled on the node",
            node_output_tail=output_tail(runtime, drop),
        )
    interval = runtime.config.poll_interval_seconds
    if (info.progress or 0) >= NEAR_END_PROGRESS:
        interval = min(interval, NEAR_END_INTERVAL)
    if drop.transient_since is not None or drop.error:
        drop_log(drop).info("node answers again")
    return runtime.store.update(
        drop.id, now=now, next_attempt_at=now + interval, transient_since=None, error=None
    )
