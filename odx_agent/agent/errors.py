"""How the daemon sorts what went wrong: wait and try again, or give up on the drop."""

from __future__ import annotations

from odx_agent.nodeodx.exceptions import (
    AuthenticationError,
    DownloadError,
    GenericError,
    InsufficientSpaceError,
    NodeConnectionError,
    NodeResponseError,
    NodeServerError,
    TaskNotFoundError,
    UnsafeArchiveError,
)


class DropFailed(Exception):
    """The drop cannot succeed as it is: fail it with this message."""


class DropChanged(Exception):
    """The drop's files changed under an upload: go back and look again."""


class NodeNotConfigured(GenericError):
    """A drop's node is not in the configuration (removed while the daemon was down).
    An upload not yet committed starts again on another node; a task on that node waits
    for it to come back (a reload), then fails after ``give_up_after_hours``. A
    GenericError, so that what tolerates a node failing (a cancel, reading the output
    tail) tolerates this too."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"node {name!r} is not in the configuration: add it back to finish this drop, "
            "or cancel the drop and retry it"
        )
        self.name = name


class Interrupted(Exception):
    """The daemon is stopping or the drop was canceled: leave the state as it is."""


def is_transient(error: BaseException) -> bool:
    """Given an error from node or disk work, return whether waiting may cure it."""
    if isinstance(
        error, (NodeConnectionError, NodeServerError, InsufficientSpaceError, NodeNotConfigured)
    ):
        return True
    if isinstance(error, AuthenticationError):
        return True  # a token fixed by the operator cures it; failing drops would not
    if isinstance(error, TaskNotFoundError):
        return False
    if isinstance(error, NodeResponseError):
        return False
    return isinstance(error, OSError) and not isinstance(error, FileNotFoundError)


def error_kind(error: BaseException) -> str:
    """Given an error, return its metrics kind (a fixed set)."""
    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (NodeConnectionError, "connection"),
        (DownloadError, "download"),
        (NodeServerError, "server"),
        (AuthenticationError, "auth"),
        (NodeResponseError, "response"),
        (UnsafeArchiveError, "archive"),
        (InsufficientSpaceError, "disk_full"),
        (DropFailed, "input"),
        (DropChanged, "input"),
        (NodeNotConfigured, "config"),
        (GenericError, "response"),
    )
    for kind_type, kind in kinds:
        if isinstance(error, kind_type):
            return kind
    return "internal"


def describe(error: BaseException) -> str:
    """Given an error, return a one-line message for status, logs and reports."""
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())
