"""Times as the agent shows them: ISO 8601 in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(timestamp: float | None) -> str | None:
    """Given Unix seconds, return ISO 8601 UTC text such as ``2026-11-27T13:37:11Z``
    (None stays None)."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
    return moment.replace("+00:00", "Z")
