"""Replay the recorded NodeODX 2.3.1 exchanges against the simulated node.

Every recorded request is sent as recorded (fields, file names and sizes, headers, query,
form); the answer must match in status, headers, JSON field names and order, value types
and every text. Volatile values (generated UUIDs, timestamps, memory figures, timings,
progress, console lines) are compared by type only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from odx_agent.simnode import SimulatedNode

DATA = Path(__file__).resolve().parents[1] / "data" / "nodeodx"
PACKAGE_DATA = Path(__file__).resolve().parents[2] / "odx_agent" / "simnode" / "data"
TOKEN = "s3cret-replay-token"
# Values a real node and this one cannot share: compared by type only.
VOLATILE_KEYS = frozenset(
    {"dateCreated", "processingTime", "progress", "totalMemory", "availableMemory", "cpuCores"}
)
FINAL_CODES = (30, 40)


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def substitute(text: str, uuids: dict[str, str]) -> str:
    for recorded, actual in uuids.items():
        text = text.replace(recorded, actual)
    return text


def compare(recorded: Any, actual: Any, where: str, uuids: dict[str, str]) -> None:
    if isinstance(recorded, dict):
        assert isinstance(actual, dict), where
        assert list(actual) == list(recorded), f"{where}: field names or order"
        for key, value in recorded.items():
            if key in VOLATILE_KEYS:
                assert type(actual[key]) is type(value), f"{where}.{key}: type"
            else:
                compare(value, actual[key], f"{where}.{key}", uuids)
    elif isinstance(recorded, list):
        assert isinstance(actual, list), where
        if "... 274 more lines ..." in recorded:
            assert len(actual) == 280, f"{where}: line count"
            assert actual[:3] == recorded[:3] or actual[:2] == recorded[:2], where
            assert actual[-3:] == recorded[-3:], where
            return
        assert len(actual) == len(recorded), f"{where}: length"
        for index, (left, right) in enumerate(zip(recorded, actual, strict=True)):
            compare(left, right, f"{where}[{index}]", uuids)
    elif isinstance(recorded, str):
        assert actual == substitute(recorded, uuids), where
    else:
        assert type(actual) is type(recorded), f"{where}: type"
        assert actual == recorded, where


def has_volatile(body: Any) -> bool:
    if isinstance(body, dict):
        return any(key in VOLATILE_KEYS or has_volatile(value) for key, value in body.items())
    if isinstance(body, list):
        return any(has_volatile(item) for item in body) or "... 274 more lines ..." in body
    return False


def wait_for_code(session: requests.Session, url: str, code: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if session.get(url, timeout=5).json()["status"]["code"] == code:
            return
        time.sleep(0.05)
    pytest.fail(f"task never reached status {code}")


def build_request(exchange: dict[str, Any], uuids: dict[str, str]) -> dict[str, Any]:
    request = exchange["request"]
    files: list[tuple[str, Any]] = [
        (name, (None, substitute(value, uuids)))
        for name, value in request.get("multipart_fields", {}).items()
    ]
    for name, spec in request.get("multipart_files", {}).items():
        files.append((name, (spec["filename"], b"\xff" * spec["bytes"], spec["content_type"])))
    form = {key: substitute(value, uuids) for key, value in request.get("form", {}).items()}
    return {
        "headers": {
            key: substitute(value, uuids) for key, value in request.get("headers", {}).items()
        },
        "params": request.get("query") or None,
        "files": files or None,
        "data": form or None,
    }


def replay(node: SimulatedNode, exchanges: list[dict[str, Any]], fill_in: Any) -> int:
    uuids: dict[str, str] = {}
    checked = 0
    with requests.Session() as session:
        for exchange in exchanges:
            request = exchange["request"]
            expected = exchange["response"]
            path = substitute(request.get("path") or request["url"], uuids)
            path = path.replace("<TOKEN>", TOKEN)
            arguments = build_request(exchange, uuids)
            fill_in(exchange["name"], arguments)
            body = expected.get("body")
            if isinstance(body, dict) and body.get("status", {}).get("code") in FINAL_CODES:
                wait_for_code(session, node.url + path, body["status"]["code"])
            answer = session.request(request["method"], node.url + path, timeout=10, **arguments)
            where = exchange["name"]
            assert answer.status_code == expected["status"], where
            for header, value in expected.get("headers", {}).items():
                if header != "Content-Length" or not has_volatile(body):
                    assert answer.headers.get(header) == value, f"{where}: {header}"
            assert "Accept-Ranges" not in answer.headers, where
            if isinstance(body, str) and body.startswith("<80 option objects"):
                catalogue = json.loads((PACKAGE_DATA / "options.json").read_text(encoding="utf-8"))
                assert answer.json() == catalogue, where
            elif isinstance(body, str) and "application/zip" in body:
                assert answer.content == (PACKAGE_DATA / "sample-all.zip").read_bytes(), where
            else:
                actual = answer.json()
                no_set_uuid = "set-uuid" not in request.get("headers", {})
                if isinstance(body, dict) and list(body) == ["uuid"] and no_set_uuid:
                    uuids[body["uuid"]] = actual["uuid"]
                compare(body, actual, where, uuids)
            checked += 1
    return checked


def test_replay_of_the_recorded_exchanges(tmp_path: Path) -> None:
    exchanges = load("exchanges.json")
    with SimulatedNode(tmp_path, processing_seconds=3.0) as node:
        checked = replay(node, exchanges, lambda name, arguments: None)
    assert checked == len(exchanges) == 47


def test_replay_with_token_and_failing_tasks(tmp_path: Path) -> None:
    def fill_in(name: str, arguments: dict[str, Any]) -> None:
        # This recording kept only the URLs: supply the bodies its answers imply.
        if name == "init_with_token":
            arguments["files"] = [("name", (None, "failing"))]
        elif name == "upload_with_token":
            arguments["files"] = [("images", ("a.jpg", b"\xff" * 676, "image/jpeg"))]

    exchanges = load("exchanges-token-and-failure.json")
    with SimulatedNode(tmp_path, token=TOKEN, fail_tasks=True, processing_seconds=1.0) as node:
        checked = replay(node, exchanges, fill_in)
        seen = node.requests_seen()
    assert checked == len(exchanges) == 10
    assert all(TOKEN not in path for _, path in seen)
