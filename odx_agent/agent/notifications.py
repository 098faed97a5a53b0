"""Delivering the notifications kept in the state file: each is sent until it arrives,
with backoff between tries, across restarts, and never in the way of drop work (they have
threads of their own). One still undelivered ``give_up_after_hours`` after it was queued is
dropped with an error in the log, so a webhook that is gone for good does not pile up
retries for months."""

from __future__ import annotations

import threading

import structlog

from odx_agent.agent.reloading import GrowingPool
from odx_agent.agent.runtime import Runtime
from odx_agent.backoff import next_retry_delay
from odx_agent.notify import deliver_command, deliver_webhook
from odx_agent.store import Notification

log = structlog.get_logger(__name__)


class NotificationSender:
    """Sends due notifications on its pool, one attempt per notification at a time."""

    def __init__(self, runtime: Runtime, pool: GrowingPool) -> None:
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
        target = notification.target
        try:
            if target["kind"] == "webhook":
                deliver_webhook(target["url"], notification.payload, timeout=target["timeout"])
            else:
                deliver_command(target["argv"], notification.payload, timeout=target["timeout"])
        except Exception as error:  # noqa: BLE001 - any failure is retried later
            self._failed(notification, str(error))
        else:
            self._runtime.store.forget_notification(notification.id)
        finally:
            with self._lock:
                self._sending.discard(notification.id)

    def _failed(self, notification: Notification, error: str) -> None:
        """Schedule the next try of a notification that failed, or give it up when it is
        older than ``give_up_after_hours``."""
        runtime = self._runtime
        runtime.metrics.error("notify")
        now = runtime.clock()
        described = {
            "kind": notification.target["kind"],
            "notification_event": notification.event,
            "drop_id": notification.drop_id,
            "attempts": notification.attempts + 1,
            "error": error,
        }
        if now - notification.created_at >= runtime.config.give_up_after_hours * 3600:
            log.error("notification given up: not delivered in time", **described)
            runtime.store.forget_notification(notification.id)
            return
        delay = next_retry_delay(notification.attempts + 1)
        log.warning(
            "notification not delivered; will retry", retry_in_seconds=round(delay), **described
        )
        runtime.store.notification_failed(notification.id, error=error, retry_at=now + delay)
