"""Values the node answers with: node information, options, task information and status.

The constructors take the node's JSON objects, as the seed library's do, so code that
builds these types by hand keeps working. Attribute names are the seed's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any


class JsonResponse:
    """Base of every answer type: ``str()`` shows the public attributes as a dict."""

    def __str__(self) -> str:
        return str({key: value for key, value in vars(self).items() if not key.startswith("_")})

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{key}={value!r}" for key, value in vars(self).items() if not key.startswith("_")
        )
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]  # mutable value objects are not hashable


class TaskStatus(Enum):
    """Status of a task, with the node's numeric codes."""

    QUEUED = 10
    RUNNING = 20
    FAILED = 30
    COMPLETED = 40
    CANCELED = 50

    @property
    def is_final(self) -> bool:
        """Return True when the node will not change this status on its own."""
        return self in (TaskStatus.FAILED, TaskStatus.COMPLETED, TaskStatus.CANCELED)


class NodeInfo(JsonResponse):
    """Information about a node (``GET /info``).

    Attributes: version, task_queue_count, total_memory, available_memory, cpu_cores,
    max_images (None when unlimited), max_parallel_tasks, odm_version (deprecated),
    engine, engine_version.
    """

    def __init__(self, json: Mapping[str, Any]) -> None:
        self.version: str = json.get("version", "?")
        self.task_queue_count: int | None = json.get("taskQueueCount")
        self.total_memory: int | None = json.get("totalMemory")
        self.available_memory: int | None = json.get("availableMemory")
        self.cpu_cores: int | None = json.get("cpuCores")
        self.max_images: int | None = json.get("maxImages")
        self.max_parallel_tasks: int | None = json.get("maxParallelTasks")
        self.engine: str = json.get("engine", "?")
        self.engine_version: str = json.get("engineVersion", "?")
        self.odm_version: str = json.get("odmVersion", "?")
        # Old nodes only report odmVersion; they ran ODM.
        if self.engine_version == "?" and self.odm_version != "?":
            self.engine = "odm"
            self.engine_version = self.odm_version


class NodeOption(JsonResponse):
    """An option a node accepts for new tasks: name, type, default value, domain, help."""

    def __init__(self, domain: Any, help: str, name: str, value: Any, type: str) -> None:
        self.domain = domain
        self.help = help
        self.name = name
        self.value = value
        self.type = type


class TaskInfo(JsonResponse):
    """Information about a task (``GET /task/{uuid}/info``).

    ``date_created`` is a naive datetime in UTC (whole seconds), like the seed's;
    ``processing_time`` is in milliseconds, -1 before processing starts; ``options`` is the
    node's list of ``{"name", "value"}``; ``output`` is filled only when asked for.
    Raise KeyError, TypeError or ValueError when the JSON lacks a required field.
    """

    def __init__(self, json: Mapping[str, Any]) -> None:
        self.uuid: str = json["uuid"]
        self.name: str = json["name"]
        seconds = int(json["dateCreated"] / 1000.0)
        self.date_created: datetime = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
        self.processing_time: int = json["processingTime"]
        self.status: TaskStatus = TaskStatus(json["status"]["code"])
        self.last_error: str = json["status"].get("errorMessage", "")
        self.options: list[dict[str, Any]] = json["options"]
        self.images_count: int = json["imagesCount"]
        self.progress: float = json.get("progress", 0)
        self.output: list[str] = json.get("output", [])


__all__ = ["JsonResponse", "NodeInfo", "NodeOption", "TaskInfo", "TaskStatus"]
