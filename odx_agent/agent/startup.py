"""What the daemon does once when it starts: warn about settings, reconcile the state."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

import structlog

from odx_agent.agent.lifecycle import drop_log
from odx_agent.agent.outputs import STAGING_PREFIX, remove_tree
from odx_agent.agent.runtime import Runtime
from odx_agent.config import AgentConfig
from odx_agent.states import DropState

log = structlog.get_logger(__name__)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_about_plain_tokens(config: AgentConfig) -> None:
    """Warn when a token would cross the network in clear text (http to another host)."""
    for node in config.nodes:
        parts = urlparse(node.base_url)
        if node.token and parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            log.warning(
                "the node token is sent over plain http to another host; use https",
                node=node.name,
                host=parts.hostname,
            )


def reconcile(runtime: Runtime) -> None:
    """Pick up every drop left in flight by an earlier run; remove staging folders of work
    that is not downloading any more; restore the last-success gauge."""
    store = runtime.store
    active = store.active()
    downloading = {drop.id for drop in active if drop.state == DropState.DOWNLOADING}
    for watch in runtime.config.watches:
        try:
            leftovers = [p for p in watch.output.iterdir() if p.name.startswith(STAGING_PREFIX)]
        except OSError:
            continue
        for folder in leftovers:
            suffix = folder.name[len(STAGING_PREFIX) :]
            if not suffix.isdigit() or int(suffix) not in downloading:
                remove_tree(folder)
    for watch_name, finished in store.last_success().items():
        runtime.metrics.set_last_success(watch_name, finished)
    for drop in active:
        if drop.state == DropState.WAITING:
            continue
        drop_log(drop).info("resuming drop", state=drop.state.value)
        if drop.next_attempt_at is not None:
            store.update(drop.id, now=runtime.clock(), next_attempt_at=None)
