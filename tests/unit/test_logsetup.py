"""Logging output: JSON lines, console text, and the token never in either."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
import structlog

from odx_agent.logsetup import add_secret, configure_logging, redact

TOKEN = "s3cr3t-Token-8d1f"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_timestamp_level_event_and_bound_keys() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="auto", stream=stream)
    structlog.get_logger("odx_agent.test").bind(watch="north").info("drop ready", images=12)
    structlog.get_logger("odx_agent.test").debug("not shown")
    (line,) = _lines(stream)
    assert line["event"] == "drop ready"
    assert line["level"] == "info"
    assert line["watch"] == "north"
    assert line["images"] == 12
    assert line["logger"] == "odx_agent.test"
    timestamp = str(line["timestamp"])
    assert timestamp.endswith("Z")
    assert timestamp[:2] == "20"


def test_stdlib_loggers_go_through_the_same_pipeline() -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    logging.getLogger("urllib3.connectionpool").debug(
        '%s "GET /task/7c1d0e52/info?token=%s HTTP/1.1" 200 512', "http://node:3000", TOKEN
    )
    (line,) = _lines(stream)
    assert line["logger"] == "urllib3.connectionpool"
    assert line["level"] == "debug"
    assert line["event"] == '"GET /task/7c1d0e52/info?token=*** HTTP/1.1" 200 512'.join(
        ["http://node:3000 ", ""]
    )
    assert TOKEN not in stream.getvalue()


def test_exception_with_token_in_message_and_chained_cause_is_redacted() -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream, secrets=[TOKEN])
    log = structlog.get_logger("odx_agent.test")
    try:
        try:
            raise ConnectionError(f"HTTPConnectionPool: /info?token={TOKEN}&x=1 refused")
        except ConnectionError as cause:
            raise RuntimeError(f"upload failed with {TOKEN}") from cause
    except RuntimeError:
        log.debug("upload attempt failed", url=f"http://node/x?token={TOKEN}", extra=[TOKEN])
        log.exception("giving up", detail={"token": TOKEN})
        logging.getLogger("requests").exception("from the standard library")
    output = stream.getvalue()
    assert TOKEN not in output
    first, second, third = _lines(stream)
    assert first["url"] == "http://node/x?token=***"
    assert first["extra"] == ["***"]
    assert second["detail"] == {"token": "***"}
    exception = str(second["exception"])
    assert "RuntimeError: upload failed with ***" in exception
    assert "ConnectionError: HTTPConnectionPool: /info?token=***&x=1 refused" in exception
    assert "direct cause" in exception
    assert "RuntimeError: upload failed with ***" in str(third["exception"])


def test_secrets_added_later_are_masked_too_also_percent_encoded() -> None:
    stream = io.StringIO()
    configure_logging(fmt="json", stream=stream)
    late = "late/secret+value"
    add_secret(late)
    log = structlog.get_logger()
    log.info("sent", body=f"password={late}", path="/x/late%2Fsecret%2Bvalue/y")
    (line,) = _lines(stream)
    assert line["body"] == "password=***"
    assert line["path"] == "/x/***/y"


def test_repr_of_an_object_holding_a_secret_is_masked_in_the_rendered_line() -> None:
    class Holder:
        def __repr__(self) -> str:
            return f"Holder({TOKEN})"

    stream = io.StringIO()
    configure_logging(fmt="json", stream=stream, secrets=[TOKEN])
    structlog.get_logger().info("object", thing=Holder())
    (line,) = _lines(stream)
    assert line["thing"] == "Holder(***)"


def test_console_format_on_a_terminal_is_readable_and_redacted() -> None:
    stream = _Terminal()
    configure_logging(fmt="auto", stream=stream, secrets=[TOKEN])
    try:
        raise ValueError(f"bad {TOKEN}")
    except ValueError:
        structlog.get_logger().exception("failed", watch="north")
    output = stream.getvalue()
    assert "failed" in output
    assert "watch" in output
    assert "north" in output
    assert "ValueError: bad ***" in output
    assert TOKEN not in output
    assert not output.lstrip().startswith("{")


def test_reconfigure_replaces_its_own_handler_only() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(fmt="json", stream=first)
    configure_logging(fmt="json", stream=second, level="WARNING")
    structlog.get_logger().warning("once")
    structlog.get_logger().info("filtered")
    assert first.getvalue() == ""
    assert [line["event"] for line in _lines(second)] == ["once"]


def test_unknown_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging(level="LOUD", stream=io.StringIO())
    with pytest.raises(ValueError, match="log format"):
        configure_logging(fmt="xml", stream=io.StringIO())


def test_add_secret_is_safe_from_many_threads() -> None:
    secrets = [f"thread-secret-{number:03d}" for number in range(40)]
    threads = [threading.Thread(target=add_secret, args=(secret,)) for secret in secrets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert redact(" ".join(secrets)) == " ".join(["***"] * 40)


def test_empty_secret_is_ignored() -> None:
    add_secret("")
    add_secret("   ")
    assert redact("nothing to hide") == "nothing to hide"
