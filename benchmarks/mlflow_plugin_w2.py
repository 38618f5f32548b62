"""P2: W2 written with MLflow's own fluent API, once to ``xp:`` (the plugin: each run becomes
a git commit) and once to MLflow's default sqlite store, side by side."""

from __future__ import annotations

import os

from benchmarks.harness import Context, Metric, Workload, settle, xp_project
from benchmarks.mlflow_plugin_w1 import open_store
from benchmarks.w2_many_runs import many_runs


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    os.chdir(repo)
    mlflow = open_store(f"xp:{repo}")
    settle()
    return many_runs(mlflow, ctx.size(1000, 50))


def sqlite_side(ctx: Context) -> dict[str, float]:
    mlflow = open_store(f"sqlite:///{ctx.workdir / 'mlflow.db'}")
    settle()
    return many_runs(mlflow, ctx.size(1000, 50))


WORKLOAD = Workload(
    key="P2",
    title="W2 through MLflow's API: MLFLOW_TRACKING_URI=xp: vs sqlite",
    metrics=(
        Metric("per_run", "per run (MLflow API -> xp:)", "ms", peer_label="-> sqlite"),
        Metric("total", "total", "s"),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=sqlite_side,
    repeat=1,
    peer_repeat=1,
    order=42,
    notes=("both sides run MLflow's client code; only the store differs",),
    quick_notes=("quick: 50 runs",),
)
