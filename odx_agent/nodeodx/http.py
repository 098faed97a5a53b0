"""HTTP plumbing for the node client: one pooled session per thread, requests with
(connect, read) timeouts, reading the node's JSON answers, mapping its errors to our
exceptions, and keeping the token out of every message.

The node answers errors as HTTP 200 with ``{"error": ...}``, so the status code alone
never tells success. Exceptions are raised outside the ``except`` block that caught the
HTTP library's error: that library puts the URL, token included, in its messages, and an
exception raised inside the block would carry it along as ``__context__``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

import requests
import urllib3
from requests.adapters import HTTPAdapter

from odx_agent.nodeodx.exceptions import (
    AuthenticationError,
    GenericError,
    NodeConnectionError,
    NodeResponseError,
    NodeServerError,
    TaskNotFoundError,
)

REDACTED = "***"
# A JSON answer (info, options, a task's whole output) must arrive whole within this long
ANSWER_DEADLINE_SECONDS = 120.0
MAX_ANSWER_BYTES = 64 * 1024 * 1024
_ANSWER_CHUNK = 64 * 1024
SNIPPET_LENGTH = 200
_TASK_NOT_FOUND = re.compile(r"^(\S+ not found|Invalid uuid \(not found\))$")


def redact(text: str, secrets: Iterable[str]) -> str:
    """Given a text and secrets, return the text with every secret, raw or URL-encoded,
    replaced by ``***``. Empty secrets are ignored."""
    variants: set[str] = set()
    for secret in secrets:
        if secret:
            variants.update({secret, quote(secret, safe=""), quote_plus(secret)})
    # Longest first, so a secret that contains another is replaced whole.
    for variant in sorted(variants, key=len, reverse=True):
        text = text.replace(variant, REDACTED)
    return text


class _RedactingLogFilter(logging.Filter):
    """Rewrites records of the HTTP libraries' loggers (which log request lines with the
    query string at DEBUG) so that no known token reaches a handler."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        if secret:
            with self._lock:
                self._secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = tuple(self._secrets)
        if not secrets:
            return True
        record.msg = redact(record.getMessage(), secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        return True


_LOG_FILTER = _RedactingLogFilter()
for _logger_name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry"):
    logging.getLogger(_logger_name).addFilter(_LOG_FILTER)


def register_secret(secret: str) -> None:
    """Given a token, make the HTTP libraries' log records redact it from now on."""
    _LOG_FILTER.add(secret)


def error_for_message(message: str, *, no_retry: bool = False) -> NodeResponseError:
    """Given the node's error text (already redacted), return the exception that names it:
    AuthenticationError, TaskNotFoundError or NodeResponseError."""
    if message.startswith("Invalid authentication token"):
        return AuthenticationError(message, no_retry=True)
    if _TASK_NOT_FOUND.search(message):
        return TaskNotFoundError(message, no_retry=no_retry)
    return NodeResponseError(message, no_retry=no_retry)


def _snippet(body: bytes, secrets: Iterable[str]) -> str:
    text = " ".join(body[: SNIPPET_LENGTH * 4].decode("utf-8", "replace").split())
    return redact(text, secrets)[:SNIPPET_LENGTH]


def interpret_answer(
    status: int, content_type: str, body: bytes, *, secrets: Iterable[str] = ()
) -> Any:
    """Given an answer's status, Content-Type and body, return its decoded JSON.

    Raise NodeServerError for a 5xx, an HTML or otherwise non-JSON body, or an unexpected
    status; AuthenticationError, TaskNotFoundError or NodeResponseError when the JSON holds
    an ``error`` (``noRetry`` sets ``no_retry``). Messages are redacted of ``secrets``.
    """
    secrets = tuple(secrets)
    if status >= 500:
        detail = _snippet(body, secrets)
        raise NodeServerError(f"Node answered HTTP {status}" + (f": {detail}" if detail else ""))
    decoded: Any = None
    is_json = "html" not in content_type.lower()
    if is_json:
        try:
            decoded = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            is_json = False
    if is_json and isinstance(decoded, dict) and "error" in decoded:
        message = redact(str(decoded["error"]), secrets)
        raise error_for_message(message, no_retry=decoded.get("noRetry") is True)
    if status == 401:
        raise AuthenticationError("Unauthorized. Do you need to set a token?", no_retry=True)
    if status not in (200, 201, 206):
        raise NodeServerError(f"Node answered HTTP {status}: {_snippet(body, secrets)}")
    if not is_json:
        kind = content_type or "no content type"
        raise NodeServerError(
            f"Node answered {kind} instead of JSON: {_snippet(body, secrets) or '(empty)'}"
        )
    return decoded


class HttpClient:
    """Given a base URL and a token, send requests to the node with one pooled keep-alive
    session per thread. The token travels as the ``token`` query parameter."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        verify: bool | str,
        pool_size: int = 4,
        answer_deadline: float = ANSWER_DEADLINE_SECONDS,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.answer_deadline = answer_deadline
        self.max_answer_bytes = max_answer_bytes
        self._verify = verify
        self._pool_size = pool_size
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: list[tuple[threading.Thread, requests.Session]] = []
        register_secret(token)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Return the texts that must never be shown (the token)."""
        return (self._token,) if self._token else ()

    def session(self) -> requests.Session:
        """Return this thread's session, creating it on first use. Sessions of threads
        that have ended are closed here, so short-lived worker threads leak no sockets."""
        existing: requests.Session | None = getattr(self._local, "session", None)
        if existing is not None:
            return existing
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self._pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        with self._lock:
            self._sessions.append((threading.current_thread(), session))
        self.close_finished_threads()
        self._local.session = session
        return session

    def close_finished_threads(self) -> None:
        """Close the sessions of threads that have ended (their idle keep-alive sockets)."""
        with self._lock:
            finished = [entry for entry in self._sessions if not entry[0].is_alive()]
            self._sessions = [entry for entry in self._sessions if entry[0].is_alive()]
        for _thread, session in finished:
            session.close()

    def close(self) -> None:
        """Close every session this client opened."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for _thread, session in sessions:
            session.close()
        self._local = threading.local()

    def redact(self, text: str) -> str:
        """Given a text, return it without the token."""
        return redact(text, self.secrets)

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        data: Any = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        read_timeout: float | None = None,
    ) -> requests.Response:
        """Given a method and a path, send the request and return the raw answer.
        Raise NodeConnectionError (redacted, without a chained cause) when the node cannot
        be reached, the connection breaks or a timeout passes."""
        params = {key: str(value) for key, value in (query or {}).items()}
        if self._token:
            params["token"] = self._token
        timeout = (
            self.connect_timeout,
            self.read_timeout if read_timeout is None else read_timeout,
        )
        failure: GenericError
        try:
            return self.session().request(
                method,
                self.base_url + path,
                params=params,
                data=data,
                files=files,
                headers=dict(headers or {}),
                timeout=timeout,
                stream=stream,
                # Given per request: a session-level setting loses to REQUESTS_CA_BUNDLE.
                verify=self._verify,
            )
        except requests.Timeout as error:
            failure = NodeConnectionError(self.redact(f"{method} {path} timed out: {error}"))
        except requests.RequestException as error:
            failure = NodeConnectionError(self.redact(f"{method} {path} failed: {error}"))
        raise failure

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Given a method and a path (and the arguments of ``send``), return the node's
        decoded JSON answer. Raise as ``send`` and ``interpret_answer`` do; raise
        NodeConnectionError when the answer takes longer than ``answer_deadline`` seconds
        in all (a node dripping bytes must not hold a request for hours) and
        NodeServerError when it is larger than ``max_answer_bytes``."""
        response = self.send(method, path, stream=True, **kwargs)
        failure: GenericError | None = None
        deadline = time.monotonic() + self.answer_deadline
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                chunk = response.raw.read1(_ANSWER_CHUNK, decode_content=True)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_answer_bytes:
                    failure = NodeServerError(
                        f"{method} {path}: answer larger than {self.max_answer_bytes} bytes"
                    )
                    break
                if time.monotonic() > deadline:
                    failure = NodeConnectionError(
                        f"{method} {path}: answer not complete after {self.answer_deadline:g} s"
                    )
                    break
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as error:
            failure = NodeConnectionError(self.redact(f"{method} {path} failed: {error}"))
        finally:
            response.close()
        if failure is not None:
            raise failure
        return interpret_answer(
            response.status_code,
            response.headers.get("Content-Type", ""),
            b"".join(chunks),
            secrets=self.secrets,
        )


def malformed(what: str, value: object, secrets: Iterable[str] = ()) -> NodeServerError:
    """Given what was expected and what came, return the NodeServerError to raise."""
    return NodeServerError(redact(f"Malformed answer for {what}: {value!r}"[:400], secrets))


__all__ = [
    "REDACTED",
    "HttpClient",
    "error_for_message",
    "interpret_answer",
    "malformed",
    "redact",
    "register_secret",
]
