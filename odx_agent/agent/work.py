"""Running one piece of drop work and sorting out what it raised.

Every job on a drop ends here: a permanent problem fails the drop with its message; a
transient one (node down, 5xx, disk full) is retried with exponential backoff and jitter,
and only fails the drop after ``give_up_after_hours`` of nothing but transient errors. A
node that is unreachable is waited for without limit: that is not the drop's fault.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from odx_agent.agent.errors import (
    DropChanged,
    DropFailed,
    Interrupted,
    NodeNotConfigured,
    describe,
    error_kind,
    is_transient,
)
from odx_agent.agent.lifecycle import drop_log
from odx_agent.agent.runtime import Runtime
from odx_agent.agent.track import output_tail
from odx_agent.backoff import next_retry_delay
from odx_agent.nodeodx.exceptions import GenericError, NodeConnectionError, NodeResponseError
from odx_agent.states import FINAL_STATES, DropState
from odx_agent.store import Drop

log = structlog.get_logger(__name__)

BACKOFF_CAP_SECONDS = 300.0  # a drop whose node came back is tried within minutes
_STAGE_OF = {
    DropState.READY: "upload",
    DropState.UPLOADING: "upload",
    DropState.PROCESSING: "processing",
    DropState.DOWNLOADING: "download",
}


class JobRunner:
    """Runs drop jobs and applies the outcome rules above."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._failures: dict[int, int] = {}

    def run(self, drop_id: int, job: Callable[[Drop], object]) -> None:
        runtime = self._runtime
        drop = runtime.store.find(drop_id)
        if drop is None or drop.final:
            self._failures.pop(drop_id, None)
            return
        try:
            job(drop)
        except Interrupted:
            return
        except DropChanged as change:
            self._changed(drop_id, str(change))
        except NodeNotConfigured as gone:
            runtime.metrics.error("config")
            self._node_gone(drop_id, gone)
        except DropFailed as failure:
            runtime.metrics.error(error_kind(failure))
            self._fail(drop_id, describe(failure))
        except Exception as error:  # noqa: BLE001 - every failure must land on the drop
            runtime.metrics.error(error_kind(error))
            if is_transient(error):
                self._transient(drop_id, error)
            elif isinstance(error, NodeResponseError):
                self._fail(drop_id, f"node refused: {describe(error)}")
            elif isinstance(error, GenericError):  # an unsafe archive, a failed task
                self._fail(drop_id, describe(error))
            else:
                drop_log(drop).exception("unexpected error; will try again", error=describe(error))
                self._transient(drop_id, error)
        else:
            self._failures.pop(drop_id, None)

    def _current(self, drop_id: int) -> Drop | None:
        drop = self._runtime.store.find(drop_id)
        return None if drop is None or drop.state in FINAL_STATES else drop

    def _fail(self, drop_id: int, message: str) -> None:
        drop = self._current(drop_id)
        if drop is not None:
            tail = output_tail(self._runtime, drop) if drop.state == DropState.PROCESSING else []
            self._runtime.lifecycle.move(
                drop, DropState.FAILED, error=message, node_output_tail=tail
            )
        self._failures.pop(drop_id, None)

    def _changed(self, drop_id: int, reason: str) -> None:
        drop = self._current(drop_id)
        if drop is None:
            return
        drop_log(drop).info("drop changed; looking again", reason=reason)
        if drop.state == DropState.UPLOADING:
            # the partial upload is abandoned uncommitted; the node cleans it up itself
            drop = self._runtime.lifecycle.move(
                drop, DropState.READY, task_uuid=None, commit_sent=False, ready_at=drop.ready_at
            )
        if drop.state == DropState.READY:
            self._runtime.lifecycle.move(drop, DropState.WAITING, changed_at=self._runtime.clock())

    def _node_gone(self, drop_id: int, error: NodeNotConfigured) -> None:
        """An upload to a node no longer configured starts again on another one while it
        is not committed; anything further along waits for the node to come back."""
        drop = self._current(drop_id)
        if drop is None:
            return
        if drop.state == DropState.UPLOADING and not drop.commit_sent:
            drop_log(drop).warning(
                "its node is no longer configured; uploading again to another node",
                node=error.name,
            )
            self._runtime.lifecycle.move(
                drop, DropState.READY, task_uuid=None, node=None, ready_at=drop.ready_at
            )
            return
        self._transient(drop_id, error)

    def _transient(self, drop_id: int, error: BaseException) -> None:
        runtime = self._runtime
        drop = self._current(drop_id)
        if drop is None:
            return
        now = runtime.clock()
        failures = self._failures.get(drop_id, 0) + 1
        self._failures[drop_id] = failures
        stage = _STAGE_OF.get(drop.state)
        if stage:
            runtime.metrics.retry(stage)
        unreachable = isinstance(error, NodeConnectionError)
        if unreachable and drop.node:
            runtime.nodes.mark(drop.node, up=False, reason=describe(error))
        since = drop.transient_since if drop.transient_since is not None else now
        limit = runtime.config.give_up_after_hours * 3600
        if not unreachable and now - since > limit:
            self._fail(
                drop_id,
                f"gave up after {runtime.config.give_up_after_hours:g} hours of errors: "
                f"{describe(error)}",
            )
            return
        delay = next_retry_delay(
            failures, base=max(1.0, runtime.config.poll_interval_seconds), cap=BACKOFF_CAP_SECONDS
        )
        drop_log(drop).warning(
            "will try again",
            error=describe(error),
            retry_in_seconds=round(delay, 1),
            failures=failures,
        )
        runtime.store.update(
            drop_id,
            now=now,
            transient_since=since,
            next_attempt_at=now + delay,
            error=describe(error),
        )
