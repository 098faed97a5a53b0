"""The sections of the configuration file that the running agent uses as they are.

These models are both the file's schema (every field described, unknown keys refused) and
the values the agent reads after loading; the loader only makes their paths absolute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)

from .fields import AtLeastOne, HostPort, Name, NonNegativeSeconds, PositiveSeconds, WebUrl

SETTLE_WITH_MARKER = 5.0
SETTLE_WITHOUT_MARKER = 300.0

NotifyEvent = Literal["completed", "failed", "canceled"]


class Section(BaseModel):
    """The common settings of every section: frozen, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ReadyConfig(Section):
    """When a drop counts as complete and may be submitted."""

    marker: StrictStr | None = Field(
        default=".ready",
        description="File name whose presence in the drop marks it ready; null to rely on"
        " settle_seconds alone.",
        examples=[".ready", None],
    )
    settle_seconds: NonNegativeSeconds = Field(
        default=SETTLE_WITH_MARKER,
        description="Nothing in the drop may have changed for this long. Defaults to 5 with"
        " a marker and 300 without one.",
        examples=[5],
    )
    min_images: AtLeastOne = Field(
        default=2, description="A drop with fewer images is not submitted.", examples=[2]
    )

    @model_validator(mode="before")
    @classmethod
    def _settle_follows_marker(cls, data: Any) -> Any:
        """Without a marker, a drop is only judged by quiet time, so wait much longer."""
        if isinstance(data, dict) and "settle_seconds" not in data:
            has_marker = data.get("marker", ".ready") is not None
            settle = SETTLE_WITH_MARKER if has_marker else SETTLE_WITHOUT_MARKER
            return {**data, "settle_seconds": settle}
        return data

    @field_validator("marker")
    @classmethod
    def _marker_is_a_file_name(cls, marker: str | None) -> str | None:
        if marker is not None and (not marker or "/" in marker or marker in (".", "..")):
            raise ValueError(f"{marker!r} must be a plain file name, not a path")
        return marker


class NotifyConfig(Section):
    """Where to announce that a drop finished."""

    webhook: WebUrl | None = Field(
        default=None,
        description="URL that receives a JSON POST per event; null for none.",
        examples=["https://hooks.example.org/odx"],
    )
    command: tuple[StrictStr, ...] | None = Field(
        default=None,
        min_length=1,
        description="Program and arguments run per event (no shell); null for none.",
        examples=[["/usr/local/bin/odx-done", "--quiet"]],
    )
    timeout_seconds: PositiveSeconds = Field(
        default=10.0, description="Longest wait for the webhook or the command.", examples=[10]
    )
    events: tuple[NotifyEvent, ...] = Field(
        default=("completed", "failed", "canceled"),
        description="Which drop outcomes are announced.",
        examples=[["completed", "failed"]],
    )


class MetricsConfig(Section):
    """The Prometheus endpoint."""

    listen: HostPort = Field(
        default="127.0.0.1:9477",
        description="HOST:PORT serving /metrics and /healthz.",
        examples=["127.0.0.1:9477"],
    )
    enabled: StrictBool = Field(default=True, description="Serve the endpoint at all.")


class LogConfig(Section):
    """How the agent logs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level written."
    )
    format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="auto: console on a terminal, plain lines for the journal otherwise.",
    )


class WatchConfig(Section):
    """One watched folder: every sub-folder of ``path`` is a drop."""

    name: Name = Field(description="Short name used in status, reports and metric labels.")
    path: Path = Field(description="Folder whose sub-folders are drops; must exist.")
    output: Path = Field(
        description="Results land in <output>/<drop name>/; created when needed, and must"
        " not be inside any watched folder."
    )
    preset: StrictStr | None = Field(
        default=None,
        description="Name of a preset in presets_dir; null sends no options.",
        examples=["ortho-fast"],
    )
    mode: Literal["auto", "poll"] = Field(
        default="auto",
        description="auto: file events plus periodic rescans; poll: rescans only (network"
        " mounts, where file events are not delivered).",
    )
    ready: ReadyConfig = Field(
        default_factory=ReadyConfig, description="When a drop counts as complete."
    )
    on_success: Literal["keep", "move", "delete"] = Field(
        default="keep",
        description="What happens to a drop once its results are safe: keep it, move it to"
        " <path>/.done/, or delete it.",
    )
    on_failure: Literal["keep", "move"] = Field(
        default="keep",
        description="What happens to a failed drop: keep it, or move it to <path>/.failed/.",
    )
    remove_after_download: StrictBool = Field(
        default=False, description="Remove the task from the node once results are safe."
    )
    keep_archive: StrictBool = Field(
        default=False, description="Keep all.zip beside the extracted results."
    )
    notify: NotifyConfig | None = Field(
        default=None,
        description="Replaces the top-level notify for this watch. After loading it holds"
        " the settings that apply (the top-level ones when the watch has none).",
    )
