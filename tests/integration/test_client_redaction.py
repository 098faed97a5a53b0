"""The node token never shows: not in exception messages or reprs, not in chained causes
or contexts, not in log records, not in the client's reprs, whatever path the error took."""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from odx_agent.nodeodx import (
    AuthenticationError,
    DownloadError,
    GenericError,
    Node,
    NodeConnectionError,
    NodeResponseError,
    NodeServerError,
)
from odx_agent.simnode import SimulatedNode
from tests.integration.test_client_servers import (
    ScriptedServer,
    black_hole,
    closed_port,
    short_body,
)


@pytest.fixture
def token() -> str:
    # Characters that get percent-encoded in a query string, to catch encoded leaks too.
    return f"t/{secrets.token_urlsafe(18)}+="


@pytest.fixture
def simnode(tmp_path: Path, token: str) -> Iterator[SimulatedNode]:
    with SimulatedNode(tmp_path / "node", token=token, processing_seconds=60) as node:
        yield node


def exception_texts(error: BaseException) -> list[str]:
    """Return every text an exception and everything chained to it can show."""
    texts: list[str] = []
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), *map(repr, current.args)]
        texts += traceback.format_exception_only(current)
        pending += [link for link in (current.__cause__, current.__context__) if link]
    texts += traceback.format_exception(error)
    return texts


def assert_hidden(token: str, texts: list[str]) -> None:
    for text in texts:
        for form in (token, quote(token, safe=""), quote_plus(token), token[2:-2]):
            assert form not in text, f"token leaked in: {text!r}"


def catch(call: Callable[[], object]) -> GenericError:
    with pytest.raises(GenericError) as caught:
        call()
    return caught.value


def test_node_down(token: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    error = catch(Node("127.0.0.1", closed_port(), token).info)
    assert isinstance(error, NodeConnectionError)
    assert "Connection refused" in str(error) or "Failed to establish" in str(error)
    assert "token=***" in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None
    assert_hidden(token, exception_texts(error))
    assert_hidden(token, [record.getMessage() for record in caplog.records])


def test_wrong_token(simnode: SimulatedNode, token: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = f"w/{secrets.token_urlsafe(18)}+="
    error = catch(Node("127.0.0.1", simnode.port, wrong).info)
    assert isinstance(error, AuthenticationError)
    assert str(error) == "Invalid authentication token: token does not match."
    assert error.no_retry is True
    assert_hidden(wrong, exception_texts(error))
    assert_hidden(wrong, [record.getMessage() for record in caplog.records])
    assert Node("127.0.0.1", simnode.port, token).info().version == "2.3.1"


def test_server_error_page_echoing_the_url(
    simnode: SimulatedNode, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    page = f"<html><body>502 Bad Gateway for /info?token={token}</body></html>".encode()
    simnode.inject("GET", "/info", status=502, body=page)
    error = catch(Node("127.0.0.1", simnode.port, token).info)
    assert isinstance(error, NodeServerError)
    assert str(error) == (
        "Node answered HTTP 502: <html><body>502 Bad Gateway for /info?token=***</body></html>"
    )
    assert_hidden(token, exception_texts(error))
    assert_hidden(token, [record.getMessage() for record in caplog.records])


def test_html_answer(simnode: SimulatedNode, token: str) -> None:
    simnode.inject("GET", "/info", status=200, body=f"<p>login {token}</p>".encode())
    error = catch(Node("127.0.0.1", simnode.port, token).info)
    assert isinstance(error, NodeServerError)
    assert str(error) == "Node answered text/html instead of JSON: <p>login ***</p>"
    assert_hidden(token, exception_texts(error))


def test_node_error_echoing_the_token(simnode: SimulatedNode, token: str) -> None:
    body = f'{{"error": "Bad token {token}"}}'.encode()
    simnode.inject("GET", "/task/list", status=200, body=body, content_type="application/json")
    error = catch(Node("127.0.0.1", simnode.port, token).list_tasks)
    assert type(error) is NodeResponseError
    assert str(error) == "Bad token ***"


def test_timeout_against_a_black_hole(token: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with black_hole() as port:
        error = catch(Node("127.0.0.1", port, token, timeout=0.3).info)
    assert isinstance(error, NodeConnectionError)
    assert "timed out" in str(error)
    assert error.__context__ is None
    assert_hidden(token, exception_texts(error))
    assert_hidden(token, [record.getMessage() for record in caplog.records])


def test_upload_failures_and_their_retry_logs(
    simnode: SimulatedNode, token: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    image = tmp_path / "a.jpg"
    image.write_bytes(b"\xff\xd8 image")
    page = f"upstream failed: /task/new/upload?token={token}".encode()
    simnode.inject(
        "POST", "/task/new/upload", status=500, body=page, content_type="text/plain", count=2
    )
    node = Node("127.0.0.1", simnode.port, token)
    error = catch(lambda: node.create_task([image], max_retries=1, retry_timeout=0))
    assert isinstance(error, NodeServerError)
    assert str(error) == "Node answered HTTP 500: upstream failed: /task/new/upload?token=***"
    retry_logs = [record for record in caplog.records if "trying again" in record.getMessage()]
    assert len(retry_logs) == 1
    assert_hidden(token, exception_texts(error))
    assert_hidden(token, [record.getMessage() for record in caplog.records])


def test_download_failures(token: str, tmp_path: Path) -> None:
    refused = catch(
        lambda: Node("127.0.0.1", closed_port(), token).get_task("u").download_archive(tmp_path)
    )
    assert isinstance(refused, NodeConnectionError)
    assert_hidden(token, exception_texts(refused))
    with ScriptedServer(short_body(1000, b"PK")) as server:
        task = Node("127.0.0.1", server.port, token).get_task("u")
        short = catch(lambda: task.download_archive(tmp_path))
    assert isinstance(short, DownloadError)
    assert_hidden(token, exception_texts(short))
    assert len(server.requests) == 3  # the body broke off each time: three tries


def test_reprs_hide_the_token(token: str) -> None:
    node = Node.from_url(f"http://127.0.0.1:3000/?token={quote(token, safe='')}")
    assert node.token == token
    assert repr(node) == "Node(host='127.0.0.1', port=3000, token='***', scheme='http')"
    assert token not in repr(node.get_task("abc"))
    assert repr(Node("h", 1)) == "Node(host='h', port=1, token='', scheme='http')"
