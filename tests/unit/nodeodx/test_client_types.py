"""The answer types read the node's recorded JSON with the seed's attribute names."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from odx_agent.nodeodx import Node, NodeInfo, NodeOption, TaskInfo, TaskStatus

EXCHANGES = Path(__file__).parents[2] / "data" / "nodeodx" / "exchanges.json"


def recorded(name: str) -> Any:
    exchanges = json.loads(EXCHANGES.read_text())
    return next(item for item in exchanges if item["name"] == name)["response"]["body"]


def test_node_info_from_the_recorded_answer() -> None:
    info = NodeInfo(recorded("info"))
    assert info.version == "2.3.1"
    assert info.task_queue_count == 0
    assert info.total_memory == 25276510208
    assert info.available_memory == 24400883712
    assert info.cpu_cores == 2
    assert info.max_images is None
    assert info.max_parallel_tasks == 1
    assert (info.engine, info.engine_version, info.odm_version) == ("odx", "?", "?")


def test_old_nodes_reporting_odm_version_run_odm() -> None:
    info = NodeInfo({"version": "1.5.0", "odmVersion": "0.9.1"})
    assert (info.engine, info.engine_version, info.task_queue_count) == ("odm", "0.9.1", None)


def test_task_info_from_the_recorded_answer() -> None:
    info = TaskInfo(recorded("info_completed"))
    assert info.uuid == "bba523c7-3d8f-446f-9d22-4da0456737d9"
    assert info.name == "field-A"
    assert info.date_created == datetime(2026, 11, 27, 13, 14, 48)  # 1795785288113 ms, UTC
    assert info.processing_time == 3320
    assert info.status is TaskStatus.COMPLETED
    assert info.last_error == ""
    assert info.images_count == 4
    assert info.progress == 100
    assert info.output == []
    assert info.options[0] == {"name": "dsm", "value": True}


def test_task_info_carries_the_error_message_and_output() -> None:
    body = dict(recorded("info_completed"), status={"code": 30, "errorMessage": "boom"})
    body["output"] = ["line"]
    info = TaskInfo(body)
    assert (info.status, info.last_error, info.output) == (TaskStatus.FAILED, "boom", ["line"])


@pytest.mark.parametrize("broken", [{}, {"uuid": "u"}, {"status": 20}])
def test_task_info_refuses_incomplete_json(broken: dict[str, Any]) -> None:
    body = dict(recorded("info_completed"), **broken) if "status" in broken else broken
    with pytest.raises((KeyError, TypeError, ValueError)):
        TaskInfo(body)


def test_task_status_prints_like_the_seed() -> None:
    assert repr(TaskStatus.RUNNING) == "<TaskStatus.RUNNING: 20>"
    assert str(TaskStatus.RUNNING) == "TaskStatus.RUNNING"
    assert [status.value for status in TaskStatus] == [10, 20, 30, 40, 50]
    assert TaskStatus(40) is TaskStatus.COMPLETED
    assert [status.is_final for status in TaskStatus] == [False, False, True, True, True]


def test_node_option_and_str_form() -> None:
    option = NodeOption(domain="positive integer", help="h", name="depthmap", value="4", type="int")
    assert str(option) == (
        "{'domain': 'positive integer', 'help': 'h', 'name': 'depthmap', "
        "'value': '4', 'type': 'int'}"
    )
    assert option == NodeOption(**vars(option))
    assert "name='depthmap'" in repr(option)


@pytest.mark.parametrize(
    ("node_version", "other", "expected"),
    [
        ("2.3.1", "2.3.1", 0),
        ("2.3.1", "1.4.0", 1),
        ("2.3.1", "10.5.1", -1),
        ("2.10.0", "2.9.9", 1),
        ("?", "1.0.0", -1),
        (None, "1.0.0", -1),
        ("2.3", "2.3.0", -1),
    ],
)
def test_compare_version(node_version: str | None, other: str, expected: int) -> None:
    assert Node.compare_version(node_version, other) == expected
