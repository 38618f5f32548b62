"""P1: W1 written with MLflow's own fluent API, once to ``xp:`` (the plugin: the run becomes a
git commit) and once to MLflow's default sqlite store, side by side."""

from __future__ import annotations

import os
from typing import Any

from benchmarks.harness import Context, Metric, Workload, random_file, settle, xp_project
from benchmarks.w1_one_run import MB, one_run


def open_store(uri: str) -> Any:
    """MLflow with ``uri``, its store opened (created) before timing."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.MlflowClient().search_experiments()
    return mlflow


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    artifact = random_file(repo / "outputs" / "model.bin", ctx.size(50 * MB, MB))
    os.chdir(repo)
    mlflow = open_store(f"xp:{repo}")
    settle()
    return one_run(mlflow, str(artifact), ctx.size(1000, 100))


def sqlite_side(ctx: Context) -> dict[str, float]:
    artifact = random_file(ctx.workdir / "outputs" / "model.bin", ctx.size(50 * MB, MB))
    mlflow = open_store(f"sqlite:///{ctx.workdir / 'mlflow.db'}")
    settle()
    return one_run(mlflow, str(artifact), ctx.size(1000, 100))


WORKLOAD = Workload(
    key="P1",
    title="W1 through MLflow's API: MLFLOW_TRACKING_URI=xp: vs sqlite",
    metrics=(
        Metric("logging", "logging section (MLflow API -> xp:)", "s", peer_label="-> sqlite"),
        Metric("artifact", "log_artifact (50 MB)", "s"),
        Metric("end_run", "end_run", "s"),
        Metric("total", "total", "s"),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=sqlite_side,
    repeat=1,
    peer_repeat=1,
    order=41,
    notes=("both sides run MLflow's client code; only the store differs",),
    quick_notes=("quick: 100 steps and a 1 MB artifact",),
)
