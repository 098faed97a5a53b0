"""The drop lifecycle: every state name, and which moves between them are allowed.

Status names exist once, here. The store refuses any transition this table does not list,
so a bug elsewhere cannot quietly move a drop from ``completed`` back to ``uploading``.
"""

from __future__ import annotations

from enum import StrEnum


class DropState(StrEnum):
    """Where a drop stands. The values are a public contract (status JSON, metrics)."""

    WAITING = "waiting"  # seen, not ready yet (marker missing or still changing)
    READY = "ready"  # ready, waiting for an upload slot or a node
    UPLOADING = "uploading"
    PROCESSING = "processing"  # queued or running on the node
    DOWNLOADING = "downloading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


FINAL_STATES = frozenset({DropState.COMPLETED, DropState.FAILED, DropState.CANCELED})
ACTIVE_STATES = frozenset(set(DropState) - FINAL_STATES)

_S = DropState
ALLOWED_TRANSITIONS: dict[DropState, frozenset[DropState]] = {
    # a drop that changes before upload goes back to waiting
    _S.WAITING: frozenset({_S.READY, _S.FAILED, _S.CANCELED}),
    _S.READY: frozenset({_S.WAITING, _S.UPLOADING, _S.FAILED, _S.CANCELED}),
    # uploading -> ready: the node lost the partial upload, or the drop changed; submit anew
    _S.UPLOADING: frozenset({_S.READY, _S.PROCESSING, _S.FAILED, _S.CANCELED}),
    # processing -> ready: the node forgot the task; resubmitted once from the drop
    _S.PROCESSING: frozenset({_S.READY, _S.DOWNLOADING, _S.FAILED, _S.CANCELED}),
    _S.DOWNLOADING: frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELED}),
    # retry (operator) starts a new attempt from ready
    _S.COMPLETED: frozenset({_S.READY}),
    _S.FAILED: frozenset({_S.READY}),
    _S.CANCELED: frozenset({_S.READY}),
}


class TransitionError(Exception):
    """A move the lifecycle does not allow was attempted."""


def check_transition(current: DropState, new: DropState) -> None:
    """Given the current and the wanted state, return if the move is allowed.

    Raise TransitionError when it is not.
    """
    if new not in ALLOWED_TRANSITIONS[current]:
        raise TransitionError(f"a drop cannot go from {current.value} to {new.value}")
