"""The download deadline and throughput floor, decided on an injected clock: these tests
measure nothing about real time."""

from __future__ import annotations

import pytest

from odx_agent.nodeodx import DownloadError
from odx_agent.nodeodx.download import TransferGuard


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_deadline_is_checked_from_the_start() -> None:
    clock = FakeClock()
    guard = TransferGuard(deadline_seconds=10, min_bytes_per_second=0, clock=clock)
    clock.now += 9.9
    guard.check(0)
    assert guard.remaining() == pytest.approx(0.1)
    clock.now += 0.1
    with pytest.raises(DownloadError, match=r"^Download deadline passed$"):
        guard.check(10**9)


def test_no_deadline_means_no_remaining_time() -> None:
    guard = TransferGuard(deadline_seconds=None, min_bytes_per_second=0, clock=FakeClock())
    assert guard.remaining() is None


def test_throughput_is_judged_per_full_window() -> None:
    clock = FakeClock()
    guard = TransferGuard(
        deadline_seconds=None, min_bytes_per_second=100, window_seconds=30, clock=clock
    )
    clock.now += 29
    guard.check(0)  # the window is not over yet: a slow start is allowed
    clock.now += 1
    guard.check(3000)  # exactly 100 B/s over the first window
    clock.now += 30
    with pytest.raises(DownloadError, match=r"^Download too slow: 99 B/s over 30 s"):
        guard.check(3000 + 2970)


def test_a_dripping_transfer_fails_after_one_window() -> None:
    clock = FakeClock()
    guard = TransferGuard(deadline_seconds=None, min_bytes_per_second=16384, clock=clock)
    failure = None
    for received in range(1, 101):  # one byte a second
        clock.now += 1
        try:
            guard.check(received)
        except DownloadError as error:
            failure = error
            break
    assert clock.now == 1030.0
    assert "below the minimum of 16384 B/s" in str(failure)
