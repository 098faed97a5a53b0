"""load_config: the sample config, defaults, relative paths, collected problems, frozen."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from odx_agent.config import AgentConfig, ConfigError, NotifyConfig, ReadyConfig, load_config

REPOSITORY = Path(__file__).resolve().parents[3]
SAMPLE = REPOSITORY / "config" / "agent.yaml"
SAMPLE_PRESETS = REPOSITORY / "config" / "presets"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def minimal(tmp_path: Path, extra: str = "", watch_extra: str = "") -> Path:
    (tmp_path / "ingest").mkdir(exist_ok=True)
    return write(
        tmp_path / "agent.yaml",
        "state_file: state.sqlite\n"
        "nodes:\n  - url: http://127.0.0.1:3000\n"
        f"{extra}"
        "watches:\n  - name: farm-a\n    path: ingest\n    output: results\n"
        f"{watch_extra}",
    )


def test_sample_config_loads_once_its_paths_exist(tmp_path: Path) -> None:
    (tmp_path / "ingest" / "farm-a").mkdir(parents=True)
    text = (
        SAMPLE.read_text(encoding="utf-8")
        .replace("/srv/ingest/farm-a", str(tmp_path / "ingest" / "farm-a"))
        .replace("/srv/results/farm-a", str(tmp_path / "results" / "farm-a"))
        .replace("/etc/odx-agent/presets", str(SAMPLE_PRESETS))
        .replace("/var/lib/odx-agent", str(tmp_path / "state"))
    )
    config = load_config(write(tmp_path / "agent.yaml", text))
    assert config.state_file == tmp_path / "state" / "state.sqlite"
    assert [node.name for node in config.nodes] == ["main"]
    assert config.nodes[0].base_url == "http://127.0.0.1:3000"
    (watch,) = config.watches
    assert watch.path == tmp_path / "ingest" / "farm-a"
    assert watch.preset == "ortho-fast"
    assert set(config.presets) == {"dsm", "high-quality", "ortho-fast"}
    assert config.metrics.listen == "127.0.0.1:9477"
    assert not (tmp_path / "results").exists()  # outputs are the daemon's to create


def test_every_optional_key_has_its_default(tmp_path: Path) -> None:
    config = load_config(minimal(tmp_path))
    assert (config.poll_interval_seconds, config.rescan_seconds) == (5.0, 60.0)
    assert (config.max_parallel_uploads, config.uploads_per_drop) == (2, 4)
    assert config.give_up_after_hours == 24.0
    assert (config.metrics.listen, config.metrics.enabled) == ("127.0.0.1:9477", True)
    assert (config.log.level, config.log.format) == ("INFO", "auto")
    assert config.notify is None
    assert (config.callback_url, config.callback_listen, config.presets_dir) == (None, None, None)
    assert config.presets == {}
    node = config.nodes[0]
    assert (node.name, node.token, node.max_active_tasks) == ("main", "", 4)
    watch = config.watches[0]
    assert (watch.preset, watch.mode, watch.notify) == (None, "auto", None)
    assert watch.ready == ReadyConfig(marker=".ready", settle_seconds=5, min_images=2)
    assert (watch.on_success, watch.on_failure) == ("keep", "keep")
    assert (watch.remove_after_download, watch.keep_archive) == (False, False)
    assert config.config_path == tmp_path / "agent.yaml"


def test_settle_time_defaults_to_300_seconds_without_a_marker(tmp_path: Path) -> None:
    config = load_config(minimal(tmp_path, watch_extra="    ready: {marker: null}\n"))
    assert config.watches[0].ready == ReadyConfig(marker=None, settle_seconds=300, min_images=2)
    assert ReadyConfig(marker=None, settle_seconds=7).settle_seconds == 7


def test_relative_paths_are_taken_from_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    write(config_dir / "presets" / "fast.yaml", "fast-orthophoto: true\n")
    minimal(config_dir, extra="presets_dir: presets\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("../etc/agent.yaml"))
    assert config.state_file == config_dir / "state.sqlite"
    assert config.presets_dir == config_dir / "presets"
    assert config.watches[0].path == config_dir / "ingest"
    assert config.watches[0].output == config_dir / "results"
    assert config.presets == {"fast": {"fast-orthophoto": True}}


def test_a_watch_without_notify_takes_the_top_level_one(tmp_path: Path) -> None:
    (tmp_path / "ingest-b").mkdir()
    path = minimal(
        tmp_path,
        extra="notify: {webhook: 'https://hooks.example.org/x', events: [failed]}\n",
    )
    with path.open("a") as stream:
        stream.write(
            "  - name: farm-b\n    path: ingest-b\n    output: results-b\n"
            "    notify: {command: [/bin/true, done]}\n"
        )
    config = load_config(path)
    first, second = config.watches
    assert first.notify == NotifyConfig(webhook="https://hooks.example.org/x", events=("failed",))
    assert second.notify == NotifyConfig(command=("/bin/true", "done"))
    assert config.watch("farm-b") is second
    assert config.node("main") is config.nodes[0]


def test_the_loaded_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(minimal(tmp_path))
    with pytest.raises(pydantic.ValidationError):
        config.rescan_seconds = 1  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        config.watches[0].preset = "x"  # type: ignore[misc]
    assert isinstance(config, AgentConfig)


def test_problems_in_several_places_are_all_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path / "presets" / "loop.yaml", "extends: loop\n")
    (tmp_path / "ingest" / "x").mkdir(parents=True)
    path = write(
        tmp_path / "agent.yaml",
        "state_file: state.sqlite\npresets_dir: presets\nrescan_seconds: -1\n"
        "nodes:\n  - url: http://127.0.0.1:3000\n    token_env: ODX_NOT_SET\n"
        "watches:\n"
        "  - {name: a, path: ingest, output: out, preset: nope}\n"
        "  - {name: b, path: missing, output: out-b, mode: sometimes}\n"
        "  - {name: c, path: ingest/x, output: out-c}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.lines == [
        f"{path}: rescan_seconds: must be greater than 0, not -1",
        f"{path}: watches[1].mode: 'sometimes' is not one of auto, poll",
        f"{path}: nodes[0].token_env: environment variable ODX_NOT_SET is not set",
        f"{path}: watches[2].path: {tmp_path}/ingest/x is inside watches[0].path"
        f" ({tmp_path}/ingest)",
        f"{path}: watches[0].preset: unknown preset 'nope' (known: loop)",
        f"{tmp_path}/presets/loop.yaml: extends: cycle loop -> loop",
    ]


def test_a_missing_config_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nowhere.yaml")
    assert caught.value.lines == [f"{tmp_path / 'nowhere.yaml'}: file does not exist"]


def test_a_missing_presets_dir_is_reported(tmp_path: Path) -> None:
    path = minimal(tmp_path, extra="presets_dir: presets\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.lines == [f"{path}: presets_dir: folder does not exist: {tmp_path}/presets"]


def test_a_preset_without_presets_dir_says_so(tmp_path: Path) -> None:
    path = minimal(tmp_path, watch_extra="    preset: fast\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.lines == [
        f"{path}: watches[0].preset: unknown preset 'fast' (presets_dir is not set)"
    ]


def test_listen_addresses_accept_ipv6_and_hostnames(tmp_path: Path) -> None:
    config = load_config(
        minimal(
            tmp_path,
            extra="metrics: {listen: '[::1]:9477'}\n"
            "callback_url: http://agent.example.org:9478\ncallback_listen: 0.0.0.0:9478\n",
        )
    )
    assert config.metrics.listen == "[::1]:9477"
    assert config.callback_listen == "0.0.0.0:9478"
