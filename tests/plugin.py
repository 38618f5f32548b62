"""The suite's pytest plugin (registered by tests/conftest.py): opt-in markers.

``slow``, ``browser`` and ``framework`` tests are skipped in a local run unless ``--run-slow`` /
``--run-browser`` / ``--run-framework`` is given, and all run when the ``CI`` environment
variable is set (CI systems set it; ``.ci/run`` exports ``CI=true``).
"""

from __future__ import annotations

import os

import pytest

OPT_IN = {
    "slow": "takes more than a few seconds",
    "browser": "drives a headless browser",
    "framework": "needs an ML framework (PyTorch, Lightning, ...)",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xp", "xp's test suite")
    for marker, what in OPT_IN.items():
        group.addoption(
            f"--run-{marker}",
            action="store_true",
            help=f"also run tests marked {marker} ({what}); implied when CI is set",
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if in_ci():
        return
    skipped = [m for m in OPT_IN if not config.getoption(f"run_{m}")]
    for item in items:
        for marker in skipped:
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=f"{marker}: run with --run-{marker}"))
