"""Webhook delivery: tell a task's webhook URL that processing ended, never blocking."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

DELIVERY_TIMEOUT_SECONDS = 10.0


def deliver_in_background(url: str, payload: dict[str, Any]) -> threading.Thread:
    """Given a webhook URL (query string kept as is) and the task's info plus its image
    names, POST them as JSON from a daemon thread and return the thread. Errors are
    ignored, as the node ignores them."""
    thread = threading.Thread(
        target=_deliver, args=(url, payload), name="simnode-webhook", daemon=True
    )
    thread.start()
    return thread


def _deliver(url: str, payload: dict[str, Any]) -> None:
    if not url.startswith(("http://", "https://")):
        return
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=json.dumps(payload, separators=(",", ":")).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    # No proxy: a webhook on loopback must not be sent through an environment proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=DELIVERY_TIMEOUT_SECONDS) as answer:
            answer.read(65536)
    except (OSError, ValueError):
        pass  # a webhook that fails changes nothing on the node
