"""The console output a simulated task shows, shaped like a NodeODX test-mode run.

The real node in test mode replays a canned log of feature-matching lines ending in
``Compressing all.zip``; the first lines and the last one are reproduced exactly, the
lines between are generated deterministically.
"""

from __future__ import annotations

import random
from functools import cache

from odx_agent.simnode.tasks import Status

LINE_COUNT = 280
_FIRST_LINES = (
    "DJI_0131.JPG - DJI_0313.JPG has 1 candidate matches",
    "DJI_0131.JPG - DJI_0177.JPG has 3 candidate matches",
    "DJI_0131.JPG - DJI_0302.JPG has 0 candidate matches",
)
_LAST_LINES = (
    "DJI_0118.JPG - DJI_0223.JPG has 1 candidate matches",
    "DJI_0118.JPG - DJI_0163.JPG has 1 candidate matches",
    "Compressing all.zip\n",
)


@cache
def full_output() -> tuple[str, ...]:
    """Return every console line of a finished run."""
    generator = random.Random(131)  # noqa: S311 (fixed seed: every node prints the same log)
    middle = []
    for _ in range(LINE_COUNT - len(_FIRST_LINES) - len(_LAST_LINES)):
        first, second = generator.sample(range(100, 330), 2)
        matches = generator.choice((0, 0, 1, 1, 1, 2, 3, 4))
        middle.append(f"DJI_{first:04d}.JPG - DJI_{second:04d}.JPG has {matches} candidate matches")
    return (*_FIRST_LINES, *middle, *_LAST_LINES)


def visible_output(status: Status, progress: int) -> list[str]:
    """Given a task's status and progress, return the lines it has printed so far."""
    lines = full_output()
    if status == Status.COMPLETED:
        return list(lines)
    if status == Status.FAILED:
        return list(lines[:-1])
    return list(lines[: len(lines) * progress // 100])


def select_lines(lines: list[str], line: int) -> list[str]:
    """Given console lines and the ``line`` parameter, return the lines from that index on,
    or the last ``-line`` lines when it is negative."""
    return lines[line:]
