"""Node tokens: from the url, a file or a variable; never shown in str, repr or errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from odx_agent.config import AgentConfig, ConfigError, load_config

SECRET = "s3cr3t-token-value"


def config_with_node(tmp_path: Path, node_lines: str) -> Path:
    (tmp_path / "ingest").mkdir(exist_ok=True)
    path = tmp_path / "agent.yaml"
    path.write_text(
        "state_file: state.sqlite\nnodes:\n"
        f"{node_lines}"
        "watches:\n  - {name: farm-a, path: ingest, output: results}\n",
        encoding="utf-8",
    )
    return path


def assert_never_shown(config: AgentConfig) -> None:
    for text in (str(config), repr(config), str(config.nodes), repr(config.nodes[0])):
        assert SECRET not in text


def test_token_from_the_url_is_split_off(tmp_path: Path) -> None:
    path = config_with_node(
        tmp_path, f"  - {{name: gpu, url: 'https://node.example.org:3000/odx/?token={SECRET}'}}\n"
    )
    config = load_config(path, environ={})
    node = config.nodes[0]
    assert (node.name, node.base_url, node.token) == (
        "gpu",
        "https://node.example.org:3000/odx",
        SECRET,
    )
    assert_never_shown(config)


def test_token_file_expands_variables_and_strips_white_space(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "nodeodx-token").write_text(f"  {SECRET}\n", encoding="utf-8")
    path = config_with_node(
        tmp_path,
        "  - url: http://127.0.0.1:3000\n    token_file: ${CREDENTIALS_DIRECTORY}/nodeodx-token\n",
    )
    config = load_config(path, environ={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert config.nodes[0].token == SECRET
    assert_never_shown(config)


def test_relative_token_file_and_plain_variable_syntax(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text(SECRET, encoding="utf-8")
    path = config_with_node(
        tmp_path, "  - url: http://127.0.0.1:3000\n    token_file: $WHERE/token\n"
    )
    assert load_config(path, environ={"WHERE": "secrets"}).nodes[0].token == SECRET


def test_token_from_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_with_node(
        tmp_path, "  - url: http://127.0.0.1:3000\n    token_env: NODEODX_TOKEN\n"
    )
    monkeypatch.setenv("NODEODX_TOKEN", SECRET)
    config = load_config(path)  # the process environment by default
    assert config.nodes[0].token == SECRET
    assert_never_shown(config)


def test_errors_never_contain_the_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(SECRET, encoding="utf-8")
    path = config_with_node(
        tmp_path,
        f"  - {{name: a, url: 'http://127.0.0.1:3000/?token={SECRET}', token_file: token}}\n"
        f"  - {{name: b, url: 'ftp://127.0.0.1/?token={SECRET}'}}\n"
        f"  - {{name: c, url: 'http://127.0.0.1:3000/?token={SECRET}&x=1'}}\n"
        f"  - {{name: d, url: 'http://127.0.0.1:99999/?token={SECRET}'}}\n"
        f"  - {{name: e, url: 'http://127.0.0.1:3000/?token={SECRET}', max_active_tasks: x}}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert len(caught.value.lines) == 5
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


def test_a_token_file_error_names_the_path_never_the_content(tmp_path: Path) -> None:
    token_folder = tmp_path / "token-folder"
    token_folder.mkdir()
    path = config_with_node(
        tmp_path, "  - url: http://127.0.0.1:3000\n    token_file: token-folder\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.lines == [
        f"{path}: nodes[0].token_file: token file is a folder: {token_folder}"
    ]


def test_an_empty_token_variable_is_refused(tmp_path: Path) -> None:
    path = config_with_node(
        tmp_path, "  - url: http://127.0.0.1:3000\n    token_env: NODEODX_TOKEN\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"NODEODX_TOKEN": "  "})
    assert caught.value.lines == [
        f"{path}: nodes[0].token_env: environment variable NODEODX_TOKEN is empty"
    ]
