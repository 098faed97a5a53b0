"""Field types shared by the schema: safe names, listen addresses, web addresses.

Each is an ``Annotated`` type whose validator raises ValueError with the sentence the
report shows, so the checks live next to the field and every section reuses them.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StrictFloat, StrictInt

from .errors import show_value

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HOST_PORT_PATTERN = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


def check_name(value: str) -> str:
    """Given a watch or node name, return it. Raise ValueError unless it is a safe name.

    Names become metric labels and parts of paths, hence the narrow alphabet.
    """
    if not _NAME_PATTERN.match(value):
        raise ValueError(
            f"{show_value(value)} is not a valid name (1 to 64 letters, digits, '_', '.' or"
            " '-', starting with a letter or digit)"
        )
    return value


def check_host_port(value: str) -> str:
    """Given ``host:port`` (``[::1]:9477`` for IPv6), return it. Raise ValueError if not."""
    match = _HOST_PORT_PATTERN.match(value)
    if not match or int(match["port"]) > 65535:
        raise ValueError(f"{show_value(value)} is not HOST:PORT (for example 127.0.0.1:9477)")
    return value


def check_web_url(value: str) -> str:
    """Given an http(s) URL without credentials, return it. Raise ValueError if not."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{show_value(value)} is not an http:// or https:// URL")
    return value


Name = Annotated[str, AfterValidator(check_name)]
HostPort = Annotated[str, AfterValidator(check_host_port)]
WebUrl = Annotated[str, AfterValidator(check_web_url)]
PositiveSeconds = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]
NonNegativeSeconds = Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)]
AtLeastOne = Annotated[StrictInt, Field(ge=1)]
