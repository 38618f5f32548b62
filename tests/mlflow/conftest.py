"""The ``mlflow`` fixture: the module under test, in two forms, so MLflow's expectations are
checked twice with the same test code.

- ``xp``: ``import xp.mlflow as mlflow`` (no MLflow involved);
- ``plugin``: real MLflow with ``MLFLOW_TRACKING_URI=xp:<repo>``, i.e. MLflow's own client
  code over xp's tracking-store and artifact-repository plugins (marked ``framework``: it
  imports MLflow, ~2 s, and runs in CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("MLFLOW_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")


def end_live_xp_runs() -> None:
    """Runs a failed test left live: dropped, so nothing writes into a deleted repo later."""
    from xp.interop import mlflow_runs

    with mlflow_runs._live_lock:
        runs = list(mlflow_runs._live.values())
        mlflow_runs._live.clear()
    for run in runs:
        run.abort()


@pytest.fixture(params=["xp", pytest.param("plugin", marks=pytest.mark.framework)])
def mlflow(
    request: pytest.FixtureRequest, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    _clean_env(monkeypatch)
    if request.param == "xp":
        import xp.mlflow as module
        from xp.mlflow.tracking import _uri, fluent

        fluent._reset()
        _uri.reset()
        try:
            yield module
        finally:
            fluent._reset()
            _uri.reset()
            end_live_xp_runs()
        return
    import mlflow as real
    import mlflow.tracking.fluent as real_fluent

    real.set_tracking_uri(f"xp:{repo}")
    real_fluent._active_experiment_id = None
    try:
        yield real
    finally:
        while real.active_run() is not None:
            real.end_run()
        real_fluent._active_experiment_id = None
        real_fluent._last_active_run_id.set(None)
        # A flavor's own autolog call (mlflow.sklearn.autolog) makes later mlflow.autolog()
        # calls leave that flavor alone, in this process: forget it (no config = disabled).
        from mlflow.utils.autologging_utils import AUTOLOGGING_INTEGRATIONS

        AUTOLOGGING_INTEGRATIONS.clear()
        end_live_xp_runs()


@pytest.fixture
def xpmlflow(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``xp.mlflow`` alone, for what only xp does (refusals, git, resume)."""
    _clean_env(monkeypatch)
    import xp.mlflow as module
    from xp.mlflow.tracking import _uri, fluent

    fluent._reset()
    _uri.reset()
    try:
        yield module
    finally:
        fluent._reset()
        _uri.reset()
        end_live_xp_runs()
