"""`--slow` runs the long variants (tests marked slow); without it they are skipped."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the long variants")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="a long variant: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
