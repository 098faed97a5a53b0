"""The one place that moves drops between states, and what follows each move.

Each move is one store transaction (checked against the lifecycle table), then logged once
with the time spent in the stage that ended, counted in the metrics, and, for a final
state, followed by the report, the notifications and the drop folder's fate.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from odx_agent.agent import outputs
from odx_agent.agent.report import build_report, read_report, timings, write_report
from odx_agent.config import AgentConfig, NotifyConfig, WatchConfig
from odx_agent.metrics import AgentMetrics
from odx_agent.states import FINAL_STATES, DropState
from odx_agent.store import Drop, Store

log = structlog.get_logger(__name__)

_STAGE_ENDED_BY = {
    DropState.READY: "wait",
    DropState.UPLOADING: "queue",
    DropState.PROCESSING: "upload",
    DropState.DOWNLOADING: "processing",
    DropState.COMPLETED: "download",
}
_STAMP = {
    DropState.READY: "ready_at",
    DropState.UPLOADING: "upload_started_at",
    DropState.PROCESSING: "committed_at",
    DropState.DOWNLOADING: "download_started_at",
}


def drop_log(drop: Drop) -> Any:
    """Return a logger bound to a drop's watch, name and (once known) task UUID."""
    bound = log.bind(watch=drop.watch, drop=drop.name, drop_id=drop.id)
    return bound.bind(task_uuid=drop.task_uuid) if drop.task_uuid else bound


class Lifecycle:
    """Moves drops between states for the daemon and the operator commands."""

    def __init__(
        self,
        *,
        store: Store,
        metrics: AgentMetrics,
        clock: Callable[[], float],
        config: Callable[[], AgentConfig],
        watch: Callable[[str], WatchConfig | None],
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self._config = config
        self._watch = watch

    def move(
        self,
        drop: Drop,
        new_state: DropState,
        *,
        node_output_tail: list[str] | None = None,
        **fields: Any,
    ) -> Drop:
        """Move ``drop`` to ``new_state`` with ``fields``; return the drop as it now is."""
        now = self.clock()
        stamp = _STAMP.get(new_state)
        if stamp and stamp not in fields:
            fields[stamp] = now
        if new_state == DropState.DOWNLOADING and "node_finished_at" not in fields:
            fields["node_finished_at"] = now
        if new_state in FINAL_STATES:
            fields.setdefault("finished_at", now)
            fields.setdefault("next_attempt_at", None)
        before, after = self.store.transition(drop.id, new_state, now=now, **fields)
        self._observe(before, after)
        if new_state in FINAL_STATES:
            self._finished(after, node_output_tail)
        return after

    def _observe(self, before: Drop, after: Drop) -> None:
        stage = _STAGE_ENDED_BY.get(after.state)
        spent = timings(after).get(stage) if stage else None
        if stage and spent is not None and before.state != after.state:
            self.metrics.observe_stage(stage, spent)
        event = "drop " + after.state.value
        details: dict[str, Any] = {"previous": before.state.value}
        if spent is not None:
            details[f"{stage}_seconds"] = spent
        if after.error and after.state in (DropState.FAILED, DropState.CANCELED):
            details["error"] = after.error
        level = "warning" if after.state == DropState.FAILED else "info"
        getattr(drop_log(after), level)(event, **details)

    def _finished(self, drop: Drop, node_output_tail: list[str] | None) -> None:
        self.metrics.drop_finished(drop.watch, drop.state.value)
        if drop.state == DropState.COMPLETED and drop.finished_at is not None:
            self.metrics.set_last_success(drop.watch, drop.finished_at)
        # a completed drop's report is the one placed beside its results: notify with that
        placed = read_report(Path(drop.output)) if drop.output else None
        report = placed or build_report(drop, node_output_tail=node_output_tail)
        watch = self._watch(drop.watch)
        if drop.state != DropState.COMPLETED and watch is not None:
            try:
                self._write_failure_report(drop, watch, report)
            except OSError as error:
                drop_log(drop).error("cannot write the report", error=str(error))
        self._enqueue_notifications(drop, watch, report)
        if drop.state == DropState.FAILED and watch is not None and watch.on_failure == "move":
            self.relocate(drop, watch, ".failed")

    def _write_failure_report(self, drop: Drop, watch: WatchConfig, report: dict[str, Any]) -> None:
        outputs.prepare_output_root(watch.output)
        folder = watch.output / drop.name
        if os.path.lexists(folder) and not outputs.only_a_report(folder):
            outputs.move_aside(folder, self.clock())
        folder.mkdir(exist_ok=True)
        write_report(folder, report)
        self.store.update(drop.id, now=self.clock(), output=str(folder))

    def _enqueue_notifications(
        self, drop: Drop, watch: WatchConfig | None, report: dict[str, Any]
    ) -> None:
        notify: NotifyConfig | None = (watch.notify if watch else None) or self._config().notify
        if notify is None or drop.state.value not in notify.events:
            return
        payload = {**report, "event": drop.state.value, "output": drop.output}
        now = self.clock()
        if notify.webhook:
            target = {
                "kind": "webhook",
                "url": str(notify.webhook),
                "timeout": notify.timeout_seconds,
            }
            self.store.enqueue_notification(drop.id, drop.state.value, target, payload, now=now)
        if notify.command:
            target = {
                "kind": "command",
                "argv": list(notify.command),
                "timeout": notify.timeout_seconds,
            }
            self.store.enqueue_notification(drop.id, drop.state.value, target, payload, now=now)

    def relocate(self, drop: Drop, watch: WatchConfig, hidden: str) -> None:
        """Move a finished drop's folder to ``<watch>/.done`` or ``.failed``."""
        folder = Path(drop.path)
        if not folder.is_dir() or folder.parent != watch.path:
            return
        try:
            moved = outputs.move_drop(folder, watch.path, hidden, self.clock())
        except OSError as error:
            drop_log(drop).error("cannot move the drop folder", error=str(error))
            return
        self.store.update(drop.id, now=self.clock(), path=str(moved))

    def report_for(self, drop: Drop, **changes: Any) -> dict[str, Any]:
        """Return the report of ``drop`` as it will read once ``changes`` are made."""
        return build_report(dataclasses.replace(drop, **changes))


def existing_report_matches(folder: Path, drop: Drop) -> bool:
    """Return whether ``folder`` already holds this attempt's completed results (a crash
    between the final rename and the state change)."""
    report = read_report(folder)
    return bool(
        report
        and report.get("task_uuid") == drop.task_uuid
        and report.get("attempt") == drop.attempt
        and report.get("state") == DropState.COMPLETED.value
    )
