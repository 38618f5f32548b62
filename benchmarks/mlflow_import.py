"""import: ``xp import mlflow`` of 1,000 runs x 1,000 metric points (plus 10 params and 5
tags each), from MLflow's sqlite store and from its ./mlruns file store; target <= 10 s.

The stores are made untimed: the sqlite one gets MLflow's own schema (MLflow creates the
database) and then rows inserted in bulk, the file store its files written directly, both in
MLflow's layout, so the figure is the import alone.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # standalone: make `benchmarks` importable
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Context, Metric, Workload, settle, standalone, xp_project

T0 = 1_700_000_000_000


def _runs(n: int) -> list[str]:
    return [uuid.UUID(int=i + 1).hex for i in range(n)]


def sqlite_store(path: Path, runs: int, points: int) -> str:
    """MLflow's schema, made by MLflow, then ``runs`` runs inserted as its store writes them."""
    import mlflow

    uri = f"sqlite:///{path}"
    mlflow.MlflowClient(uri).search_experiments()  # creates the tables
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO experiments(experiment_id, name, artifact_location, lifecycle_stage,"
            " creation_time, last_update_time) VALUES (1, 'bench', ?, 'active', ?, ?)",
            (str(path.parent / "mlruns" / "1"), T0, T0),
        )
        for r, run_id in enumerate(_runs(runs)):
            start = T0 + r * 10_000
            conn.execute(
                "INSERT INTO runs(run_uuid, name, source_type, source_name, entry_point_name,"
                " user_id, status, start_time, end_time, source_version, lifecycle_stage,"
                " artifact_uri, experiment_id) VALUES (?, ?, 'LOCAL', '', '', 'bench',"
                " 'FINISHED', ?, ?, '', 'active', ?, 1)",
                (run_id, f"run-{r}", start, start + 5000, str(path.parent / "none")),
            )
            conn.executemany(
                "INSERT INTO params(key, value, run_uuid) VALUES (?, ?, ?)",
                [(f"p{i}", str(i * 0.5), run_id) for i in range(10)],
            )
            conn.executemany(
                "INSERT INTO tags(key, value, run_uuid) VALUES (?, ?, ?)",
                [(f"t{i}", f"v{i}", run_id) for i in range(5)]
                + [("mlflow.runName", f"run-{r}", run_id)],
            )
            conn.executemany(
                "INSERT INTO metrics(key, value, timestamp, run_uuid, step, is_nan)"
                " VALUES ('loss', ?, ?, ?, ?, 0)",
                [(1.0 / (s + 1), start + s, run_id, s) for s in range(points)],
            )
            conn.execute(
                "INSERT INTO latest_metrics(key, value, timestamp, step, is_nan, run_uuid)"
                " VALUES ('loss', ?, ?, ?, 0, ?)",
                (1.0 / points, start + points - 1, points - 1, run_id),
            )
    conn.close()
    return uri


def file_store(root: Path, runs: int, points: int) -> str:
    """The ./mlruns layout (MLflow 3's file store), written directly."""
    (root / "0").mkdir(parents=True)
    (root / "0" / "meta.yaml").write_text(
        "experiment_id: '0'\nname: Default\nlifecycle_stage: active\n"
    )
    exp = root / "1"
    exp.mkdir()
    (exp / "meta.yaml").write_text("experiment_id: '1'\nname: bench\nlifecycle_stage: active\n")
    for r, run_id in enumerate(_runs(runs)):
        start = T0 + r * 10_000
        run = exp / run_id
        for sub in ("params", "tags", "metrics", "artifacts"):
            (run / sub).mkdir(parents=True)
        (run / "meta.yaml").write_text(
            f"run_id: {run_id}\nexperiment_id: '1'\nrun_name: run-{r}\nstatus: 3\n"
            f"start_time: {start}\nend_time: {start + 5000}\nuser_id: bench\n"
            f"lifecycle_stage: active\nartifact_uri: {run / 'artifacts'}\n"
        )
        for i in range(10):
            (run / "params" / f"p{i}").write_text(str(i * 0.5))
        for i in range(5):
            (run / "tags" / f"t{i}").write_text(f"v{i}")
        lines = "".join(f"{start + s} {1.0 / (s + 1)!r} {s}\n" for s in range(points))
        (run / "metrics" / "loss").write_text(lines)
    return str(root)


def _time_import(repo: Path, uri: str) -> float:
    from xp.gitstore.repo import find_repo
    from xp.interop.mlflow_import import import_mlflow

    settle()
    t0 = time.perf_counter()
    result = import_mlflow(find_repo(repo), uri=uri)
    elapsed = time.perf_counter() - t0
    if result.imported != result.runs or result.problems:
        raise RuntimeError(f"import went wrong: {result}")
    return elapsed


def xp_side(ctx: Context) -> dict[str, float]:
    runs, points = ctx.size(1000, 20), ctx.size(1000, 50)
    sq_repo = xp_project(ctx.workdir / "a")
    fs_repo = xp_project(ctx.workdir / "b")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    sq = sqlite_store(ctx.workdir / "mlflow.db", runs, points)
    fs = file_store(ctx.workdir / "mlruns", runs, points)
    os.chdir(sq_repo)
    sqlite_seconds = _time_import(sq_repo, sq)
    os.chdir(fs_repo)
    files_seconds = _time_import(fs_repo, fs)
    again = time.perf_counter()
    from xp.gitstore.repo import find_repo
    from xp.interop.mlflow_import import import_mlflow

    import_mlflow(find_repo(fs_repo), uri=fs)  # nothing to do: every run unchanged
    return {
        "sqlite": sqlite_seconds,
        "mlruns": files_seconds,
        "again": time.perf_counter() - again,
        "per_run": sqlite_seconds / runs,
    }


WORKLOAD = Workload(
    key="import",
    title="xp import mlflow: 1,000 runs x 1,000 points (10 params, 5 tags each)",
    metrics=(
        Metric("sqlite", "from sqlite:///mlflow.db", "s", 10.0),
        Metric("mlruns", "from ./mlruns", "s", 10.0),
        Metric("again", "again from ./mlruns (nothing changed)", "s"),
    ),
    xp=xp_side,
    repeat=1,
    order=70,
    notes=("the stores are made untimed, in MLflow's layouts (the sqlite schema by MLflow)",),
    quick_notes=("quick: 20 runs x 50 points",),
)

if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side})
