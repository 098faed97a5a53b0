"""Checks that need more than one field: unique names, folder layout, known presets.

Each check takes already validated values and returns (location, message) pairs, so the
loader can report them next to schema problems and tests can call them directly.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from .presets import describe_known
from .sections import WatchConfig

Problem = tuple[tuple[str | int, ...], str]


def duplicate_names(section: str, names: Sequence[tuple[int, str]]) -> list[Problem]:
    """Given (index, name) pairs of one list, return a problem for every repeated name."""
    first_index: dict[str, int] = {}
    problems: list[Problem] = []
    for index, name in names:
        if name in first_index:
            problems.append(
                (
                    (section, index, "name"),
                    f"duplicate name {name!r} (also {section}[{first_index[name]}])",
                )
            )
        else:
            first_index[name] = index
    return problems


def watch_layout(watches: Sequence[tuple[int, WatchConfig]]) -> list[Problem]:
    """Given watches with absolute, resolved paths, return the folder layout problems.

    A watch path must exist and be a folder, must not lie inside another watch (a drop
    would be seen twice) nor inside any output; an output must not lie inside any watch
    (results would look like a new drop) nor be shared by two watches.
    """
    problems: list[Problem] = []
    for index, watch in watches:
        if not watch.path.exists():
            problems.append((("watches", index, "path"), f"folder does not exist: {watch.path}"))
        elif not watch.path.is_dir():
            problems.append((("watches", index, "path"), f"not a folder: {watch.path}"))
    for index, watch in watches:
        for other_index, other in watches:
            problems.extend(_pair_problems(index, watch, other_index, other))
    return problems


def _pair_problems(
    index: int, watch: WatchConfig, other_index: int, other: WatchConfig
) -> list[Problem]:
    """Return the problems of ``watch`` with respect to ``other`` (maybe itself)."""
    problems: list[Problem] = []
    here = ("watches", index)
    there = f"watches[{other_index}]"
    if other_index != index:
        if watch.path == other.path and other_index < index:
            problems.append(((*here, "path"), f"same folder as {there}.path"))
        elif watch.path != other.path and watch.path.is_relative_to(other.path):
            problems.append(
                ((*here, "path"), f"{watch.path} is inside {there}.path ({other.path})")
            )
        if watch.output == other.output and other_index < index:
            problems.append(((*here, "output"), f"same folder as {there}.output"))
    if watch.output.is_relative_to(other.path):
        problems.append(
            ((*here, "output"), f"{watch.output} is inside {there}.path ({other.path})")
        )
    if watch.path.is_relative_to(other.output):
        problems.append(
            ((*here, "path"), f"{watch.path} is inside {there}.output ({other.output})")
        )
    return problems


def unknown_presets(
    watches: Sequence[tuple[int, WatchConfig]], known: Collection[str], has_presets_dir: bool
) -> list[Problem]:
    """Given watches and the preset names found, return a problem per unknown preset."""
    problems: list[Problem] = []
    for index, watch in watches:
        if watch.preset is None or watch.preset in known:
            continue
        reason = describe_known(known) if has_presets_dir else "(presets_dir is not set)"
        problems.append((("watches", index, "preset"), f"unknown preset {watch.preset!r} {reason}"))
    return problems


def absolute(base_dir: Path, path: Path) -> Path:
    """Given the config's folder and a path as written, return it absolute and resolved."""
    return (base_dir / path).resolve()
