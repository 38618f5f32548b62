"""W1: one training run: 20 params, 5 metrics x 1,000 steps (a call per point), 5 tags, and a
50 MB model file as an artifact. The headline is the whole run, ``start_run`` to ``end_run``:
xp's log calls only append to memory and it writes at ``end_run``, while MLflow writes (and
fsyncs) on every call, so a figure without ``end_run`` would leave out xp's writing. The
logging section, the artifact and ``end_run`` are reported apart as well."""

from __future__ import annotations

import os
import time
from types import ModuleType

from benchmarks.harness import Context, Metric, Workload, random_file, settle, xp_project

MB = 1_000_000


def one_run(api: ModuleType, artifact: str, steps: int) -> dict[str, float]:
    """The same calls for xp and MLflow: their fluent APIs share these names."""
    t0 = time.perf_counter()
    api.start_run()
    for i in range(20):
        api.log_param(f"param_{i}", i * 0.5 if i % 2 else f"choice-{i}")
    for step in range(steps):
        for m in range(5):
            api.log_metric(f"metric_{m}", 1.0 / (step + m + 1), step=step)
    for i in range(5):
        api.set_tag(f"tag_{i}", f"value {i}")
    t1 = time.perf_counter()
    api.log_artifact(artifact)
    t2 = time.perf_counter()
    api.end_run()
    t3 = time.perf_counter()
    return {"logging": t1 - t0, "artifact": t2 - t1, "end_run": t3 - t2, "total": t3 - t0}


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    artifact = random_file(repo / "outputs" / "model.bin", ctx.size(50 * MB, MB))
    os.chdir(repo)
    import xp

    settle()
    return one_run(xp, str(artifact), ctx.size(1000, 100))


def mlflow_side(ctx: Context) -> dict[str, float]:
    artifact = random_file(ctx.workdir / "outputs" / "model.bin", ctx.size(50 * MB, MB))
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{ctx.workdir / 'mlflow.db'}")
    t0 = time.perf_counter()
    mlflow.MlflowClient().search_experiments()  # creates the store, as a user's first run did
    setup = time.perf_counter() - t0
    settle()
    return {**one_run(mlflow, str(artifact), ctx.size(1000, 100)), "store_setup": setup}


WORKLOAD = Workload(
    key="W1",
    title="one run: 20 params, 5 metrics x 1,000 steps, 5 tags, one 50 MB artifact",
    metrics=(
        Metric("total", "whole run: start_run .. end_run", "s", 0.3),
        Metric("logging", "  of which logging: start_run, params, points, tags", "s"),
        Metric("artifact", "  of which log_artifact (50 MB)", "s"),
        Metric("end_run", "  of which end_run (xp writes the run here)", "s"),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=3,
    peer_repeat=1,
    order=10,
    notes=(
        "MLflow runs in a fresh sqlite:///<tmp>/mlflow.db (its 3.x default store), created"
        " before timing; xp in a fresh git repo after `xp init`",
    ),
    quick_notes=("quick: 100 steps and a 1 MB artifact",),
)
