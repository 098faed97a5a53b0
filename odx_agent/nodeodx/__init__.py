"""A client for NodeODX processing nodes, drop-in compatible with the seed library
(``from odx_agent.nodeodx import Node``), built for a daemon that runs for months:
streamed uploads and downloads, pooled connections, bounded waits, verified archives and
no token in any message."""

from odx_agent.nodeodx.api import Node, Task, options_to_json
from odx_agent.nodeodx.exceptions import (
    AuthenticationError,
    DownloadError,
    GenericError,
    InsufficientSpaceError,
    NodeConnectionError,
    NodeResponseError,
    NodeServerError,
    RangeNotAvailableError,
    TaskFailedError,
    TaskNotFoundError,
    UnsafeArchiveError,
)
from odx_agent.nodeodx.http import redact
from odx_agent.nodeodx.types import JsonResponse, NodeInfo, NodeOption, TaskInfo, TaskStatus

__all__ = [
    "AuthenticationError",
    "DownloadError",
    "GenericError",
    "InsufficientSpaceError",
    "JsonResponse",
    "Node",
    "NodeConnectionError",
    "NodeInfo",
    "NodeOption",
    "NodeResponseError",
    "NodeServerError",
    "RangeNotAvailableError",
    "Task",
    "TaskFailedError",
    "TaskInfo",
    "TaskNotFoundError",
    "TaskStatus",
    "UnsafeArchiveError",
    "options_to_json",
    "redact",
]
