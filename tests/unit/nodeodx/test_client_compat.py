"""Drop-in compatibility with the seed library: every public method of its Node and Task
exists here with the same positional parameters and defaults (keyword-only additions
allowed), and the exception hierarchy matches."""

from __future__ import annotations

import inspect

import pytest

import odx_agent.nodeodx as ours

seed_api = pytest.importorskip("pyodx.api")
seed_exceptions = pytest.importorskip("pyodx.exceptions")

PUBLIC_SEED_METHODS = {
    "Node": [
        "__init__",
        "from_url",
        "compare_version",
        "url",
        "info",
        "options",
        "version_greater_or_equal_than",
        "create_task",
        "get_task",
    ],
    "Task": [
        "__init__",
        "info",
        "output",
        "cancel",
        "remove",
        "restart",
        "download_zip",
        "download_assets",
        "wait_for_completion",
    ],
}


def positional(function: object) -> list[tuple[str, object]]:
    parameters = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    return [
        (parameter.name, parameter.default)
        for parameter in parameters
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY
    ]


@pytest.mark.parametrize(
    ("class_name", "method"),
    [(name, method) for name, methods in PUBLIC_SEED_METHODS.items() for method in methods],
)
def test_seed_methods_have_the_same_parameters(class_name: str, method: str) -> None:
    seed = getattr(getattr(seed_api, class_name), method)
    mine = getattr(getattr(ours, class_name), method)
    assert positional(mine) == positional(seed)


def test_exception_hierarchy_matches_the_seed() -> None:
    for name in [
        "GenericError",
        "NodeServerError",
        "NodeConnectionError",
        "NodeResponseError",
        "TaskFailedError",
        "RangeNotAvailableError",
    ]:
        seed_bases = [base.__name__ for base in getattr(seed_exceptions, name).__mro__]
        our_bases = [base.__name__ for base in getattr(ours, name).__mro__]
        assert our_bases == seed_bases


def test_task_status_values_match_the_seed() -> None:
    seed_types = pytest.importorskip("pyodx.types")
    assert {status.name: status.value for status in ours.TaskStatus} == {
        status.name: status.value for status in seed_types.TaskStatus
    }
