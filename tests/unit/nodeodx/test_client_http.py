"""Reading the node's answers and hiding the token, as pure functions."""

from __future__ import annotations

import pytest

from odx_agent.nodeodx import (
    AuthenticationError,
    NodeResponseError,
    NodeServerError,
    TaskNotFoundError,
    redact,
)
from odx_agent.nodeodx.http import error_for_message, interpret_answer

JSON = "application/json; charset=utf-8"


def test_redact_replaces_raw_and_url_encoded_forms() -> None:
    token = "a/b+c=d"
    text = "url ?token=a%2Fb%2Bc%3Dd, form a%2Fb%2Bc%3Dd, raw a/b+c=d, plus a%2Fb%2Bc%3Dd"
    assert redact(text, [token]) == "url ?token=***, form ***, raw ***, plus ***"
    assert redact("token=a+b", ["a b"]) == "token=***"


def test_redact_ignores_empty_secrets_and_prefers_the_longest() -> None:
    assert redact("nothing here", ["", ""]) == "nothing here"
    assert redact("abcdef abc", ["abc", "abcdef"]) == "*** ***"


def test_json_answers_are_returned() -> None:
    assert interpret_answer(200, JSON, b'{"uuid": "u"}') == {"uuid": "u"}
    assert interpret_answer(200, JSON, b"[]") == []
    # Some proxies label JSON as text/plain; the body decides.
    assert interpret_answer(200, "text/plain", b'{"success": true}') == {"success": True}


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Invalid authentication token: token does not match.", AuthenticationError),
        ("3ece858b-f4df-4d90-9a41-8ce53be65cdd not found", TaskNotFoundError),
        ("Invalid uuid (not found)", TaskNotFoundError),
        ("Asset not ready", NodeResponseError),
        ("Invalid set-uuid: x", NodeResponseError),
        ("Need at least 1 file.", NodeResponseError),
    ],
)
def test_node_error_messages_map_to_their_exception(
    message: str, kind: type[NodeResponseError]
) -> None:
    body = f'{{"error": "{message}"}}'.encode()
    with pytest.raises(NodeResponseError) as caught:
        interpret_answer(200, JSON, body)
    assert type(caught.value) is kind
    assert str(caught.value) == message


def test_no_retry_flag_is_kept() -> None:
    with pytest.raises(NodeResponseError) as caught:
        interpret_answer(200, JSON, b'{"error": "Need at least 1 file.", "noRetry": true}')
    assert caught.value.no_retry is True
    assert error_for_message("Asset not ready").no_retry is False
    assert error_for_message("Invalid authentication token: x").no_retry is True


def test_error_with_success_false_is_an_error() -> None:
    body = b'{"success": false, "error": "569b0293-fe90-4589-b8c1-7ad6ef102580 not found"}'
    with pytest.raises(TaskNotFoundError):
        interpret_answer(200, JSON, body)


@pytest.mark.parametrize(
    ("status", "content_type", "body", "message"),
    [
        (
            500,
            "text/plain",
            b"Internal Server Error",
            "Node answered HTTP 500: Internal Server Error",
        ),
        (502, JSON, b'{"error": "busy"}', 'Node answered HTTP 502: {"error": "busy"}'),
        (503, "text/html", b"", "Node answered HTTP 503"),
        (
            200,
            "text/html",
            b"<h1>\n Login </h1>",
            "Node answered text/html instead of JSON: <h1> Login </h1>",
        ),
        (
            200,
            JSON,
            b"{not json",
            "Node answered application/json; charset=utf-8 instead of JSON: {not json",
        ),
        (200, "", b"", "Node answered no content type instead of JSON: (empty)"),
        (404, "text/html", b"<p>no</p>", "Node answered HTTP 404: <p>no</p>"),
    ],
)
def test_server_failures_are_node_server_errors(
    status: int, content_type: str, body: bytes, message: str
) -> None:
    with pytest.raises(NodeServerError) as caught:
        interpret_answer(status, content_type, body)
    assert str(caught.value) == message


def test_unauthorized_without_json_is_an_authentication_error() -> None:
    with pytest.raises(AuthenticationError, match=r"^Unauthorized\. Do you need to set a token\?$"):
        interpret_answer(401, "text/html", b"<p>401</p>")


def test_answers_are_redacted_and_shortened() -> None:
    page = b"<html>" + b"x" * 1000 + b"</html>"
    with pytest.raises(NodeServerError) as caught:
        interpret_answer(502, "text/html", b"token=sekrit " + page, secrets=["sekrit"])
    assert str(caught.value).startswith("Node answered HTTP 502: token=*** <html>xxx")
    assert len(str(caught.value)) == len("Node answered HTTP 502: ") + 200
    with pytest.raises(NodeResponseError, match=r"^bad \*\*\*$"):
        interpret_answer(200, JSON, b'{"error": "bad sekrit"}', secrets=["sekrit"])
