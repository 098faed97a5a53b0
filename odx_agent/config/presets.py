"""Presets: named sets of NodeODX options, one ``NAME.yaml`` per preset in presets_dir.

A preset maps option names to values at its top level. The one reserved key, ``extends``,
names another preset whose options are applied first; chains are allowed, cycles are not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import ConfigError, problem_line, show_value
from .yamlfile import read_yaml

EXTENDS = "extends"
PRESET_SUFFIX = ".yaml"


class PresetError(ValueError):
    """A preset that cannot be resolved. ``preset`` names the file the problem belongs to."""

    def __init__(self, message: str, preset: str, missing: str | None = None) -> None:
        super().__init__(message)
        self.preset = preset
        self.missing = missing


def describe_known(names: Iterable[str]) -> str:
    """Given preset names, return ``(known: a, b)`` or ``(known: none)`` for messages."""
    ordered = sorted(names)
    return f"(known: {', '.join(ordered) if ordered else 'none'})"


def resolve_preset(name: str, raw_presets: Mapping[str, Mapping[str, object]]) -> dict[str, object]:
    """Given a preset name and every preset as written, return its options, extends applied.

    The parent's options come first and each child overrides them. Raise PresetError when
    the name or a parent is unknown, or when the chain of ``extends`` loops.
    """
    chain: list[str] = []
    current: object = name
    while current is not None:
        if not isinstance(current, str):
            raise PresetError(f"extends: {show_value(current)} is not a preset name", chain[-1])
        if current in chain:
            raise _cycle_error(chain[chain.index(current) :])
        if current not in raw_presets:
            where = f"{EXTENDS}: " if chain else ""
            raise PresetError(
                f"{where}unknown preset {current!r} {describe_known(raw_presets)}",
                chain[-1] if chain else name,
                missing=current,
            )
        chain.append(current)
        current = raw_presets[current].get(EXTENDS)
    options: dict[str, object] = {}
    for member in reversed(chain):
        options.update((key, value) for key, value in raw_presets[member].items() if key != EXTENDS)
    return options


def _cycle_error(members: list[str]) -> PresetError:
    """Given the presets of one loop in order, return the error, told from its first name."""
    start = members.index(min(members))
    ordered = members[start:] + members[:start]
    return PresetError(f"{EXTENDS}: cycle {' -> '.join([*ordered, ordered[0]])}", ordered[0])


def load_presets(presets_dir: Path, shown_dir: str | None = None) -> dict[str, dict[str, object]]:
    """Given a presets folder, return every preset by name with its extends applied.

    ``shown_dir`` is how the folder is named in messages (default: the path as given).
    Files whose names start with a dot are ignored. Raise ConfigError listing every
    problem: a missing folder, malformed YAML, a file that is not a mapping, a bad value,
    an unknown parent, a cycle.
    """
    shown = shown_dir if shown_dir is not None else str(presets_dir)
    if not presets_dir.is_dir():
        raise ConfigError([f"{shown}: presets folder does not exist"])
    lines: list[str] = []
    raw: dict[str, dict[str, object]] = {}
    invalid: set[str] = set()
    for path in sorted(presets_dir.glob(f"*{PRESET_SUFFIX}")):
        if path.name.startswith("."):
            continue
        shown_file = f"{shown}/{path.name}"
        try:
            data = read_yaml(path, shown_file)
        except ConfigError as error:
            lines.extend(error.lines)
            invalid.add(path.name.removesuffix(PRESET_SUFFIX))
            continue
        problems = _check_preset(shown_file, data)
        lines.extend(problems)
        if problems:
            invalid.add(path.name.removesuffix(PRESET_SUFFIX))
        else:
            raw[path.name.removesuffix(PRESET_SUFFIX)] = dict(data or {})  # type: ignore[call-overload]
    resolved: dict[str, dict[str, object]] = {}
    for name in raw:
        try:
            resolved[name] = resolve_preset(name, raw)
        except PresetError as error:
            if error.missing in invalid:
                continue  # the parent's own problems are reported already
            line = f"{shown}/{error.preset}{PRESET_SUFFIX}: {error}"
            if line not in lines:
                lines.append(line)
    if lines:
        raise ConfigError(lines)
    return resolved


def _check_preset(shown_file: str, data: object) -> list[str]:
    """Given one parsed preset file, return its problems as report lines."""
    if data is None:
        return []
    if not isinstance(data, dict):
        return [f"{shown_file}: must map option names to values, not {show_value(data)}"]
    lines = []
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            lines.append(f"{shown_file}: {show_value(key)} is not an option name")
        elif key == EXTENDS:
            if not isinstance(value, str):
                lines.append(
                    problem_line(shown_file, [key], f"{show_value(value)} is not a preset name")
                )
        elif value is None:
            lines.append(problem_line(shown_file, [key], "null is not an option value"))
    return lines
