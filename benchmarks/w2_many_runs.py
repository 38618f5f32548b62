"""W2: a sweep: 1,000 runs in one process, each start_run, 10 params, 3 metrics, end_run.
What matters is the cost per run, paid by every hyper-parameter search."""

from __future__ import annotations

import os
import time
from types import ModuleType

from benchmarks.harness import Context, Metric, Workload, settle, xp_project


def many_runs(api: ModuleType, n: int) -> dict[str, float]:
    """The same calls for xp and MLflow."""
    first = 0.0
    t0 = time.perf_counter()
    for r in range(n):
        api.start_run()
        api.log_params({f"param_{i}": r * 10 + i for i in range(10)})
        api.log_metrics({"loss": 1.0 / (r + 1), "accuracy": r / n, "f1": 0.5})
        api.end_run()
        if r == 0:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return {"per_run": total / n, "first_run": first, "total": total}


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    os.chdir(repo)
    import xp

    settle()
    return many_runs(xp, ctx.size(1000, 50))


def mlflow_side(ctx: Context) -> dict[str, float]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{ctx.workdir / 'mlflow.db'}")
    mlflow.MlflowClient().search_experiments()  # creates the store before timing
    settle()
    return many_runs(mlflow, ctx.size(1000, 50))


WORKLOAD = Workload(
    key="W2",
    title="1,000 runs of 10 params + 3 metrics, start_run .. end_run each",
    metrics=(
        Metric("per_run", "per run: start_run .. end_run", "ms", 0.003),
        Metric("total", "total", "s"),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=3,
    peer_repeat=1,
    order=20,
    notes=(
        "params and metrics go in as one log_params / log_metrics call per run (MLflow's"
        " batch path)",
    ),
    quick_notes=("quick: 50 runs",),
)
