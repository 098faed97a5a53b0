"""Read one YAML file into plain Python values, refusing what would pass silently.

PyYAML keeps the last of two equal keys without a word; a duplicated key in a config is
almost always a mistake, so it is an error here. Job tickets come from field teams, not
from the administrator, so they may also be refused anchors and aliases (a few lines of
aliases can expand into an enormous document) and a size above a small limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, show_value


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                duplicate = False  # an unhashable key; the base class reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {show_value(key)}", key_node.start_mark
                )
            if not isinstance(key, list | dict):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _NoAliasLoader(_StrictLoader):
    """A strict loader that also refuses anchors and aliases."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases are not allowed here", event.start_mark
            )
        return super().compose_node(parent, index)


def read_yaml(
    path: Path, shown_as: str, *, allow_aliases: bool = True, max_bytes: int | None = None
) -> object:
    """Given a path and the name to show for it, return the parsed YAML document.

    An empty document gives None. Raise ConfigError with one line naming the file (and the
    line and column when the YAML is malformed) when it cannot be read or parsed.
    """
    try:
        with path.open("rb") as stream:
            raw = stream.read(max_bytes + 1 if max_bytes is not None else -1)
    except FileNotFoundError:
        raise ConfigError([f"{shown_as}: file does not exist"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{shown_as}: is a folder, not a file"]) from None
    except OSError as error:
        raise ConfigError([f"{shown_as}: cannot read: {error.strerror}"]) from None
    if max_bytes is not None and len(raw) > max_bytes:
        raise ConfigError([f"{shown_as}: file is larger than {max_bytes} bytes"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{shown_as}: file is not UTF-8 text"]) from None
    loader_class = _StrictLoader if allow_aliases else _NoAliasLoader
    loader = loader_class(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        raise ConfigError([_yaml_error_line(shown_as, error)]) from None
    except yaml.YAMLError as error:
        raise ConfigError([f"{shown_as}: malformed YAML: {error}"]) from None
    finally:
        loader.dispose()


def _yaml_error_line(shown_as: str, error: yaml.MarkedYAMLError) -> str:
    """Given a parser error, return ``FILE: line L, column C: problem`` (1-based)."""
    mark = error.problem_mark or error.context_mark
    problem = error.problem or error.context or "malformed YAML"
    if mark is None:
        return f"{shown_as}: malformed YAML: {problem}"
    return f"{shown_as}: line {mark.line + 1}, column {mark.column + 1}: {problem}"
