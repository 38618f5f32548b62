"""Settings every framework test needs before the framework is imported (SPEC of issue 13):
Keras on PyTorch, Hugging Face offline and quiet, no telemetry, no auto-logging by Comet.

In CI a framework that does not import fails its tests instead of skipping them: `.ci/run`
installs requirements/integrations.txt, so a skip there would be an integration left untested
without anyone seeing it."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

from tests.plugin import in_ci

for _key, _value in {
    "KERAS_BACKEND": "torch",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "COMET_DISABLE_AUTO_LOGGING": "1",
}.items():
    os.environ.setdefault(_key, _value)


def _missing_framework(report: Any) -> str | None:
    """The skip reason when ``report`` is a skip by ``pytest.importorskip``, else None."""
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return None
    reason = str(report.longrepr[2])
    return reason if "could not import" in reason else None


def _fail_in_ci(report: Any) -> None:
    reason = _missing_framework(report)
    if reason is not None and in_ci():
        report.outcome = "failed"
        report.longrepr = (
            f"{reason}: in CI every framework must import "
            "(pip install torch==2.13.0 && pip install -r requirements/integrations.txt)"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    _fail_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    _fail_in_ci(outcome.get_result())
