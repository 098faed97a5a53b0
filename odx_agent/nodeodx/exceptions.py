"""Exceptions raised by the NodeODX client.

The first six names and their hierarchy are the seed library's (pyodx) public contract.
The subclasses below them add detail a daemon needs to decide between "retry later" and
"give up", without breaking code that catches the seed's classes.
No message raised from this package ever contains the node token.
"""

from __future__ import annotations


class GenericError(Exception):
    """Generic catch-all exception. All exceptions of the client inherit from it."""


class NodeServerError(GenericError):
    """The server replied in a manner which we did not expect. Usually this indicates a
    temporary malfunction of the node (a 5xx, an HTML page from a proxy, invalid JSON)."""


class NodeConnectionError(GenericError):
    """A connection problem (such as a timeout or a network error) has occurred."""


class NodeResponseError(GenericError):
    """The node responded with an error message indicating that the requested operation
    failed. ``no_retry`` is True when the node said so (its ``noRetry`` flag)."""

    def __init__(self, message: str, *, no_retry: bool = False) -> None:
        super().__init__(message)
        self.no_retry = no_retry


class TaskFailedError(GenericError):
    """A task did not complete successfully."""


class RangeNotAvailableError(GenericError):
    """A download attempt to use Range requests failed."""


class TaskNotFoundError(NodeResponseError):
    """The node does not know the task (``<uuid> not found`` or ``Invalid uuid (not found)``)."""


class AuthenticationError(NodeResponseError):
    """The node refused the token (``Invalid authentication token: ...``)."""


class DownloadError(NodeServerError):
    """A download arrived incomplete or corrupt (short body, bad archive, deadline or
    minimum throughput missed). Transient: the download can be tried again."""


class UnsafeArchiveError(GenericError):
    """An archive would write outside its destination, holds links or duplicate names, or
    looks like a zip bomb. Permanent for that archive: nothing was written outside."""


class InsufficientSpaceError(GenericError):
    """The destination has not enough free space (or free inodes) for the archive or its
    extraction. Transient: wait for space and try again. ``needed`` and ``available`` count
    ``resource``: "bytes" or "inodes"."""

    def __init__(
        self, message: str, *, needed: int, available: int, resource: str = "bytes"
    ) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available
        self.resource = resource


__all__ = [
    "AuthenticationError",
    "DownloadError",
    "GenericError",
    "InsufficientSpaceError",
    "NodeConnectionError",
    "NodeResponseError",
    "NodeServerError",
    "RangeNotAvailableError",
    "TaskFailedError",
    "TaskNotFoundError",
    "UnsafeArchiveError",
]
