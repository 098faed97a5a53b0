"""Processing nodes: the ``nodes:`` entries as written, and the loaded form with its token.

The token may come from ``?token=`` in the url, from ``token_file`` or from ``token_env``.
Whatever its source, it is kept apart from the base URL and never shown: not in a repr,
not in a str, not in an error message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import Field, StrictStr, field_validator, model_validator

from .fields import AtLeastOne, Name
from .sections import Section

DEFAULT_NODE_NAME = "main"
_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NodeEntry(Section):
    """One processing node, as written in the configuration file."""

    name: Name | None = Field(
        default=None,
        description="Short name used in status, reports and metric labels. Defaults to"
        " 'main'; required when there is more than one node.",
        examples=["main"],
    )
    url: StrictStr = Field(
        repr=False,
        description="Base URL of the node, optionally with ?token=TOKEN.",
        examples=["http://127.0.0.1:3000"],
    )
    token_file: StrictStr | None = Field(
        default=None,
        description="File holding the token (surrounding white space ignored); $VAR and"
        " ${VAR} are expanded, e.g. ${CREDENTIALS_DIRECTORY}/nodeodx-token.",
    )
    token_env: StrictStr | None = Field(
        default=None, description="Name of the environment variable holding the token."
    )
    max_active_tasks: AtLeastOne = Field(
        default=4, description="Tasks this agent keeps on the node at once.", examples=[4]
    )

    @field_validator("url")
    @classmethod
    def _url_is_a_node_address(cls, value: str) -> str:
        split_token_url(value)
        return value

    @field_validator("token_env")
    @classmethod
    def _token_env_is_a_variable_name(cls, value: str | None) -> str | None:
        if value is not None and not _VARIABLE_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _one_token_source(self) -> NodeEntry:
        sources = [
            label
            for label, present in (
                ("?token= in url", bool(split_token_url(self.url)[1])),
                ("token_file", self.token_file is not None),
                ("token_env", self.token_env is not None),
            )
            if present
        ]
        if len(sources) > 1:
            raise ValueError(f"give the token one way only, not {' and '.join(sources)}")
        return self


class NodeConfig(Section):
    """One processing node, loaded: its address and its token held apart."""

    name: Name = Field(description="Short name used in status, reports and metric labels.")
    base_url: StrictStr = Field(description="Base URL of the node, without any token.")
    token: StrictStr = Field(
        default="", repr=False, description="The node token; empty when the node has none."
    )
    max_active_tasks: AtLeastOne = Field(
        default=4, description="Tasks this agent keeps on the node at once."
    )


def split_token_url(url: str) -> tuple[str, str]:
    """Given a node URL, return (base URL without query, token or "").

    Raise ValueError, without the token in the message, when the URL is not http(s), has
    no host, or carries query parameters other than one non-empty ``token``.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("is not a valid http:// or https:// URL") from None
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{base!r} is not an http:// or https:// URL")
    if port == 0:
        raise ValueError(f"{base!r} has port 0")
    if parts.fragment:
        raise ValueError(f"{base!r} must not have a #fragment")
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [name for name, _value in query]
    if any(name != "token" for name in names) or len(names) > 1:
        raise ValueError(f"{base!r}: the only query parameter allowed is ?token=")
    token = query[0][1] if query else ""
    if query and not token.strip():
        raise ValueError(f"{base!r}: ?token= is empty")
    return base, token


def read_token(
    entry: NodeEntry, base_dir: Path, environ: Mapping[str, str]
) -> tuple[str, list[tuple[str, str]]]:
    """Given a node entry, return (token, problems as (key, message) pairs).

    A relative token_file is taken from ``base_dir``. Messages name paths and variables,
    never the token.
    """
    if entry.token_env is not None:
        value = environ.get(entry.token_env)
        if value is None:
            return "", [("token_env", f"environment variable {entry.token_env} is not set")]
        if not value.strip():
            return "", [("token_env", f"environment variable {entry.token_env} is empty")]
        return value.strip(), []
    if entry.token_file is not None:
        return _read_token_file(entry.token_file, base_dir, environ)
    return split_token_url(entry.url)[1], []


def _read_token_file(
    written: str, base_dir: Path, environ: Mapping[str, str]
) -> tuple[str, list[tuple[str, str]]]:
    """Expand, resolve and read one token file; see read_token."""
    missing = sorted(
        {
            match["braced"] or match["plain"]
            for match in _VARIABLE.finditer(written)
            if (match["braced"] or match["plain"]) not in environ
        }
    )
    if missing:
        return "", [("token_file", f"environment variable {', '.join(missing)} is not set")]
    expanded = _VARIABLE.sub(lambda match: environ[match["braced"] or match["plain"]], written)
    path = base_dir / Path(expanded).expanduser()
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return "", [("token_file", f"token file does not exist: {path}")]
    except IsADirectoryError:
        return "", [("token_file", f"token file is a folder: {path}")]
    except OSError as error:
        return "", [("token_file", f"cannot read token file {path}: {error.strerror}")]
    try:
        token = content.decode("utf-8").strip()
    except UnicodeDecodeError:
        return "", [("token_file", f"token file is not UTF-8 text: {path}")]
    if not token:
        return "", [("token_file", f"token file is empty: {path}")]
    return token, []


def node_from_entry(entry: NodeEntry, token: str) -> NodeConfig:
    """Given a validated entry and its token, return the loaded node."""
    return NodeConfig(
        name=entry.name or DEFAULT_NODE_NAME,
        base_url=split_token_url(entry.url)[0],
        token=token,
        max_active_tasks=entry.max_active_tasks,
    )
