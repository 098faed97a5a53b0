"""Deliver one notification (a webhook POST or a local command) and pace the retries.

Which notifications are due and how often each was tried is kept by the state store; this
module only makes one attempt and says how long to wait before the next.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import requests

from odx_agent.logsetup import redact

# Payload key -> environment variable handed to a notification command.
COMMAND_ENVIRONMENT: dict[str, str] = {
    "event": "ODX_EVENT",
    "watch": "ODX_WATCH",
    "drop": "ODX_DROP",
    "state": "ODX_STATE",
    "task_uuid": "ODX_TASK_UUID",
    "output": "ODX_OUTPUT",
    "error": "ODX_ERROR",
}
# Variables meant for the agent alone: a command must not ping systemd in its name.
_PRIVATE_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
_STDERR_LINES = 5
_STDERR_CHARS = 1000
_BODY_CHARS = 200


class NotificationError(Exception):
    """A notification was not delivered. The message names no secret and no full URL."""


def _origin(url: str) -> str:
    """Return ``scheme://host[:port]`` of ``url``: webhook paths often are secrets."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _encode(payload: Mapping[str, object]) -> bytes:
    return json.dumps(dict(payload), default=str, ensure_ascii=False).encode()


def deliver_webhook(url: str, payload: Mapping[str, object], *, timeout: float) -> None:
    """POST ``payload`` as JSON to ``url``. Redirects are not followed. Raise
    NotificationError when the request fails or the answer is not 2xx."""
    where = _origin(url)
    try:
        response = requests.post(
            url,
            data=_encode(payload),
            headers={"Content-Type": "application/json", "User-Agent": "odx-agent"},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        # requests repeats the full URL in its messages: put the origin in its place.
        detail = redact(str(error).replace(url, where))
        raise NotificationError(
            f"webhook {where} failed: {type(error).__name__}: {detail}"
        ) from None
    with response:
        if not 200 <= response.status_code < 300:
            body = " ".join(response.text[:_BODY_CHARS].split())
            raise NotificationError(
                redact(f"webhook {where} answered HTTP {response.status_code}: {body}")
            )


def command_environment(
    payload: Mapping[str, object], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Given a payload and a base environment (``os.environ`` by default), return the
    environment for a notification command: the base without systemd's private variables,
    plus ``ODX_*`` from the payload (a missing or null value gives an empty string)."""
    environment = {
        key: value
        for key, value in (os.environ if base is None else base).items()
        if key not in _PRIVATE_VARIABLES
    }
    for key, variable in COMMAND_ENVIRONMENT.items():
        value = payload.get(key)
        environment[variable] = "" if value is None else str(value).replace("\0", "")
    return environment


def _stderr_tail(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()[-_STDERR_LINES:]
    return redact("\n".join(lines)[-_STDERR_CHARS:])


def deliver_command(argv: Sequence[str], payload: Mapping[str, object], *, timeout: float) -> None:
    """Run ``argv`` without a shell, with ``payload`` as JSON on stdin and ``ODX_*``
    variables in its environment; kill it and everything it started after ``timeout``
    seconds. Raise NotificationError when it cannot start, times out or exits non-zero
    (the message carries the exit status and the last lines of stderr)."""
    if not argv:
        raise NotificationError("notification command is empty")
    name = os.path.basename(argv[0])
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=command_environment(payload),
            # Its own process group, so a timeout kills the children a script started too.
            start_new_session=True,
        )
    except OSError as error:
        raise NotificationError(f"cannot run {name}: {error.strerror or error}") from None
    try:
        _, stderr = process.communicate(_encode(payload), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise NotificationError(f"command {name} timed out after {timeout:g} s") from None
    if process.returncode != 0:
        status = (
            f"was killed by signal {-process.returncode}"
            if process.returncode < 0
            else f"exited with status {process.returncode}"
        )
        tail = _stderr_tail(stderr)
        raise NotificationError(f"command {name} {status}" + (f": {tail}" if tail else ""))


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        # A grandchild that left the group still holds stderr open: stop reading it.
        process.kill()
        process.wait(timeout=5)
