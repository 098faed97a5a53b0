"""Delivering the notifications kept in the state file: each is sent until it arrives,
with backoff between tries, across restarts, and never in the way of drop work."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import structlog

from odx_agent.agent.runtime import Runtime
from odx_agent.backoff import next_retry_delay
from odx_agent.notify import deliver_command, deliver_webhook
from odx_agent.store import Notification

log = structlog.get_logger(__name__)


class NotificationSender:
    """Sends due notifications on a pool, one attempt per notification at a time."""

    def __init__(self, runtime: Runtime, pool: ThreadPoolExecutor) -> None:
        self._runtime = runtime
        self._pool = pool
        self._sending: set[int] = set()
        self._lock = threading.Lock()

    def send_due(self) -> None:
        """Start delivering every notification whose time has come."""
        runtime = self._runtime
        for notification in runtime.store.due_notifications(runtime.clock()):
            with self._lock:
                if notification.id in self._sending:
                    continue
                self._sending.add(notification.id)
            self._pool.submit(self._deliver, notification)

    def _deliver(self, notification: Notification) -> None:
        runtime = self._runtime
        target = notification.target
        try:
            if target["kind"] == "webhook":
                deliver_webhook(target["url"], notification.payload, timeout=target["timeout"])
            else:
                deliver_command(target["argv"], notification.payload, timeout=target["timeout"])
        except Exception as error:  # noqa: BLE001 - any failure is retried later
            delay = next_retry_delay(notification.attempts + 1)
            runtime.metrics.error("notify")
            log.warning(
                "notification not delivered; will retry",
                kind=target["kind"],
                notification_event=notification.event,
                error=str(error),
                retry_in_seconds=round(delay),
            )
            runtime.store.notification_failed(
                notification.id, error=str(error), retry_at=runtime.clock() + delay
            )
        else:
            runtime.store.notification_delivered(notification.id, now=runtime.clock())
        finally:
            with self._lock:
                self._sending.discard(notification.id)
