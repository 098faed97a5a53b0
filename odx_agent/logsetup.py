"""Logging for the agent: structlog and the standard library through one pipeline.

Off a terminal every record is one JSON line (journald keeps it whole and tools can parse
it); on a terminal it is readable console text. Whatever the format, every string value,
every rendered exception and finally the whole rendered line pass through ``redact``, so
the node token never reaches the journal, also not inside a URL that requests or urllib3
put into an exception or a debug line.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO
from urllib.parse import quote

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

MASK = "***"
FORMATS = ("auto", "json", "console")

# A token in a query string or a form body, whatever its value: covers tokens we were never
# told about, such as one pasted into a URL in the configuration.
_TOKEN_PARAMETER = re.compile(r"(?i)(\btoken=)[^&\s'\"<>]+")

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_secret_pattern: re.Pattern[str] | None = None


def add_secret(secret: str) -> None:
    """Given a secret (the node token, a webhook password), mask it in every later log
    line. Empty strings are ignored. Safe to call from any thread."""
    global _secrets, _secret_pattern  # one process-wide set, as logging itself is
    if not secret.strip():
        return
    with _lock:
        # requests writes query values percent-encoded, so mask that spelling too.
        variants = {secret, quote(secret, safe=""), quote(secret)}
        _secrets = _secrets | variants
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
        _secret_pattern = re.compile("|".join(re.escape(item) for item in ordered))


def redact(text: str) -> str:
    """Given any text, return it with every registered secret and every ``token=`` query
    value replaced by ``***``."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _TOKEN_PARAMETER.sub(r"\1" + MASK, text)


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(item) for item in value]
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value


def redact_processor(
    _logger: WrappedLogger, _method: str, event_dict: MutableMapping[str, Any]
) -> EventDict:
    """Mask secrets in every value of ``event_dict`` (a structlog processor)."""
    return {key: _redact_value(value) for key, value in event_dict.items()}


def _redacting(renderer: Processor) -> Processor:
    """Wrap ``renderer`` so the rendered line is masked as a whole: catches values whose
    repr, not str, carried a secret."""

    def render(logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        rendered = renderer(logger, method, event_dict)
        return redact(rendered if isinstance(rendered, str) else str(rendered))

    return render


def _renderer(fmt: str, stream: TextIO) -> Processor:
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    console = fmt == "console" or (fmt == "auto" and _is_terminal(stream))
    if console:
        # The plain formatter: rich's pretty tracebacks would print local variables.
        return structlog.dev.ConsoleRenderer(
            colors=_is_terminal(stream), exception_formatter=structlog.dev.plain_traceback
        )
    return structlog.processors.JSONRenderer(default=repr)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _AgentHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler this module installs, told apart from others so a reconfigure replaces
    only its own."""


def configure_logging(
    *,
    level: str = "INFO",
    fmt: str = "auto",
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Set up structlog and the standard library to write to ``stream`` (stderr by
    default) at ``level``, as JSON lines or console text (``fmt``: auto|json|console),
    masking ``secrets``. Calling it again (on a reload) replaces the previous setup and
    keeps the secrets already known. Raise ValueError for an unknown level or format."""
    output = sys.stderr if stream is None else stream
    numeric_level = logging.getLevelNamesMapping().get(level.upper())
    if numeric_level is None:
        raise ValueError(f"unknown log level {level!r}")
    for secret in secrets:
        add_secret(secret)
    renderer = _renderer(fmt, output)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a reload may change the level and loggers must follow.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_processor,
            _redacting(renderer),
        ],
    )
    handler = _AgentHandler(output)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [item for item in root.handlers if isinstance(item, _AgentHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    logging.captureWarnings(True)
