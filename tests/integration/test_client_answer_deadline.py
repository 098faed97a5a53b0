"""A JSON answer that drips in must not hold a request past its deadline."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from odx_agent.nodeodx import NodeConnectionError, NodeServerError
from odx_agent.nodeodx.http import HttpClient
from tests.integration.test_client_servers import Handler, Request, ScriptedServer, head


def dripping_json(length: int, seconds_per_byte: float) -> Handler:
    def handler(connection: socket.socket, request: Request, stop: threading.Event) -> None:
        headers = {"Content-Type": "application/json", "Content-Length": str(length)}
        connection.sendall(head("200 OK", headers))
        for _ in range(length):
            connection.sendall(b" ")
            if stop.wait(seconds_per_byte):
                return

    return handler


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
    body = b"[" + b"1," * 2000 + b"1]"

    def handler(connection: socket.socket, request: Request, stop: threading.Event) -> None:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        connection.sendall(head("200 OK", headers) + body)

    with ScriptedServer(handler) as server:
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
