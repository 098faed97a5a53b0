"""Load the agent's configuration file: the one loader behind ``run`` and ``check-config``.

Loading reads the YAML, validates it against the schema, resolves relative paths against
the config file's folder, reads node tokens, loads the presets and checks what needs
several fields at once. Every problem found on the way is reported, not only the first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .checks import Problem, absolute, duplicate_names, unknown_presets, watch_layout
from .errors import ConfigError, problem_line, show_value
from .nodes import NodeConfig, NodeEntry, node_from_entry, read_token
from .presets import PRESET_SUFFIX, load_presets
from .schema import AgentConfig, ConfigFile, known_keys
from .sections import WatchConfig
from .translate import pydantic_lines
from .yamlfile import read_yaml

_Model = TypeVar("_Model", bound=BaseModel)


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Given the path of the configuration file, return the loaded AgentConfig.

    ``environ`` (default: the process environment) supplies ``token_env`` and the
    variables in ``token_file``. Raise ConfigError with one ``FILE: key.path: problem``
    line for every problem found.
    """
    shown = str(path)
    data = read_yaml(path, shown)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{shown}: must be a mapping of keys to values, not {show_value(data)}"])
    return _Loading(path, shown, data, os.environ if environ is None else environ).run()


class _Loading:
    """One pass over one configuration file, gathering problems as it goes."""

    def __init__(
        self, path: Path, shown: str, data: dict[str, Any], environ: Mapping[str, str]
    ) -> None:
        self.path = path
        self.shown = shown
        self.data = data
        self.environ = environ
        self.base_dir = path.absolute().parent
        self.lines: list[str] = []

    def add(self, problems: list[Problem]) -> None:
        for location, message in problems:
            self.lines.append(problem_line(self.shown, location, message))

    def run(self) -> AgentConfig:
        file: ConfigFile | None = None
        try:
            file = ConfigFile.model_validate(self.data)
        except ValidationError as error:
            self.lines.extend(pydantic_lines(self.shown, error, known_keys=known_keys()))
        entries = list(enumerate(file.nodes)) if file else self._valid_items("nodes", NodeEntry)
        watches = (
            list(enumerate(file.watches)) if file else self._valid_items("watches", WatchConfig)
        )
        self._callback_pair()
        nodes = self._nodes(entries)
        watches = [(index, self._absolute_watch(watch, file)) for index, watch in watches]
        self.add(duplicate_names("watches", [(index, watch.name) for index, watch in watches]))
        self.add(watch_layout(watches))
        presets_dir = self._presets_dir(file)
        known = _preset_names(presets_dir) if presets_dir and presets_dir.is_dir() else set()
        self.add(unknown_presets(watches, known, presets_dir is not None))
        presets = self._presets(presets_dir)
        if self.lines or file is None:
            raise ConfigError(self.lines)
        settings = {name: getattr(file, name) for name in ConfigFile.model_fields}
        settings.update(
            state_file=absolute(self.base_dir, file.state_file),
            presets_dir=presets_dir,
            nodes=tuple(nodes),
            watches=tuple(watch for _index, watch in watches),
            config_path=self.path.absolute(),
            presets=presets,
        )
        return AgentConfig(**settings)

    def _valid_items(self, key: str, model: type[_Model]) -> list[tuple[int, _Model]]:
        """Return the list items under ``key`` that validate on their own.

        Used when the file as a whole failed, so later checks still see the good entries.
        """
        items = self.data.get(key)
        if not isinstance(items, list):
            return []
        valid = []
        for index, item in enumerate(items):
            try:
                valid.append((index, model.model_validate(item)))
            except ValidationError:
                continue  # already reported by the validation of the whole file
        return valid

    def _callback_pair(self) -> None:
        """The node must be told where to call and the agent where to listen: both or none."""
        url, listen = self.data.get("callback_url"), self.data.get("callback_listen")
        if url is not None and listen is None:
            self.add([(("callback_listen",), "required when callback_url is set")])
        if listen is not None and url is None:
            self.add([(("callback_url",), "required when callback_listen is set")])

    def _nodes(self, entries: list[tuple[int, NodeEntry]]) -> list[NodeConfig]:
        """Read each node's token; return the loaded nodes, recording problems."""
        written = self.data.get("nodes")
        count = len(written) if isinstance(written, list) else 0
        if isinstance(written, list) and not written:
            self.add([(("nodes",), "at least one node is required")])
        nodes = []
        for index, entry in entries:
            if entry.name is None and count > 1:
                self.add([(("nodes", index, "name"), "required when there is more than one node")])
            token, problems = read_token(entry, self.base_dir, self.environ)
            self.add([(("nodes", index, key), message) for key, message in problems])
            nodes.append((index, node_from_entry(entry, token)))
        named = [(index, entry.name) for index, entry in entries if entry.name is not None]
        self.add(duplicate_names("nodes", named))
        return [node for _index, node in nodes]

    def _absolute_watch(self, watch: WatchConfig, file: ConfigFile | None) -> WatchConfig:
        """Return the watch with absolute paths and the notify settings that apply to it."""
        notify = watch.notify if watch.notify is not None else (file.notify if file else None)
        return watch.model_copy(
            update={
                "path": absolute(self.base_dir, watch.path),
                "output": absolute(self.base_dir, watch.output),
                "notify": notify,
            }
        )

    def _presets_dir(self, file: ConfigFile | None) -> Path | None:
        """Return the absolute presets folder, or None when unset or itself invalid."""
        written = file.presets_dir if file else self.data.get("presets_dir")
        if not isinstance(written, str | Path):
            return None
        return absolute(self.base_dir, Path(written))

    def _presets(self, presets_dir: Path | None) -> dict[str, dict[str, object]]:
        """Load every preset, recording problems; return them resolved."""
        if presets_dir is None:
            return {}
        if not presets_dir.is_dir():
            self.add([(("presets_dir",), f"folder does not exist: {presets_dir}")])
            return {}
        written = Path(self.data["presets_dir"])
        shown_dir = str(written if written.is_absolute() else Path(self.shown).parent / written)
        try:
            return load_presets(presets_dir, shown_dir)
        except ConfigError as error:
            self.lines.extend(error.lines)
            return {}


def _preset_names(presets_dir: Path) -> set[str]:
    """Return the names of the preset files in a folder, whether or not they are valid."""
    return {
        path.name.removesuffix(PRESET_SUFFIX)
        for path in presets_dir.glob(f"*{PRESET_SUFFIX}")
        if not path.name.startswith(".")
    }
