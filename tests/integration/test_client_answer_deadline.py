"""A JSON answer that drips in must not hold a request past its deadline."""

from __future__ import annotations

import time

import pytest

from odx_agent.nodeodx import NodeConnectionError, NodeServerError
from odx_agent.nodeodx.http import HttpClient
from tests.integration.test_client_servers import Handler, ScriptedServer, answer, drip


def dripping_json(length: int, seconds_per_byte: float) -> Handler:
    """Return a handler that sends a JSON answer (blanks) one byte at a time."""
    return drip(length, seconds_per_byte, content_type="application/json", byte=b" ")


def test_a_dripping_answer_is_cut_at_the_answer_deadline() -> None:
    with ScriptedServer(dripping_json(22_000, 0.1)) as server:
        client = HttpClient(
            f"http://127.0.0.1:{server.port}",
            "answer-deadline-token-5f3a",
            connect_timeout=2,
            read_timeout=5,
            verify=True,
            answer_deadline=1.0,
        )
        started = time.monotonic()
        with pytest.raises(NodeConnectionError, match=r"^GET /options: answer not complete"):
            client.call("GET", "/options")
        elapsed = time.monotonic() - started
        client.close()
    assert 1.0 <= elapsed < 3.0


def test_an_oversized_answer_is_refused() -> None:
    with ScriptedServer(answer(b"[" + b"1," * 2000 + b"1]")) as server:
        client = HttpClient(
            f"http://127.0.0.1:{server.port}",
            "",
            connect_timeout=2,
            read_timeout=5,
            verify=True,
            max_answer_bytes=1000,
        )
        with pytest.raises(NodeServerError, match="answer larger than 1000 bytes"):
            client.call("GET", "/task/list")
        client.close()
