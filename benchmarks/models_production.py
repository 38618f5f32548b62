"""models: a deployed model's production side (issue 17).

- ``xp.log_production`` per call: two metrics of the version in production, one durable
  commit each (MLflow: ``mlflow.log_metrics`` of the same two values into a run, its sqlite
  store, also durable per call).
- ``xp model perf`` over 10 versions x 10,000 monitoring points: the command, start-up
  included, best of 3 (MLflow: ``get_metric_history`` of 10 runs x 10,000 points).
- ``xp model serve``: what a one-row prediction over HTTP (keep-alive) costs on top of calling
  the model directly in the same process; a scikit-learn linear model on the diabetes data
  scikit-learn ships (MLflow: ``mlflow models serve`` of the same model, --env-manager local).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pickle
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    Context,
    Metric,
    Workload,
    child_env,
    settle,
    standalone,
    xp_command,
    xp_project,
)

VERSIONS = 10
POINTS_PER_VERSION = 10_000


def _model() -> tuple[Any, Any]:
    """A fitted linear model on scikit-learn's bundled diabetes data, and one input row."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    data = load_diabetes(as_frame=True)
    model = LinearRegression().fit(data.data, data.target)
    return model, data.data.iloc[:1]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], path: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not answer")


@contextlib.contextmanager
def _server(cmd: list[str], cwd: Path, port: int, health: str) -> Iterator[None]:
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait(port, proc, health)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 2)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def _overhead(port: int, path: str, body: bytes, model: Any, row: Any, n: int) -> dict[str, float]:
    """Median seconds of one HTTP prediction, of one direct ``predict``, and the difference."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    for _ in range(20):  # warm-up: connection, first predictions
        conn.request("POST", path, body, headers)
        conn.getresponse().read()
    http_times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        response.read()
        http_times.append(time.perf_counter() - t0)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    conn.close()
    direct = []
    for _ in range(n):
        t0 = time.perf_counter()
        model.predict(row)
        direct.append(time.perf_counter() - t0)
    http_median, direct_median = statistics.median(http_times), statistics.median(direct)
    return {
        "serve_overhead": http_median - direct_median,
        "serve_http": http_median,
        "predict_direct": direct_median,
    }


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    os.chdir(repo)
    import xp
    from xp.gitstore.repo import find_repo
    from xp.production import points

    model, row = _model()
    (repo / "outputs").mkdir(exist_ok=True)
    for i in range(VERSIONS):
        (repo / "outputs" / "model.pkl").write_bytes(pickle.dumps(model) + bytes([i]))
        with xp.start_run() as run:
            xp.log_metric("accuracy", 0.9 + i / 1000)
            xp.log_metric("val_accuracy", 0.88 + i / 1000)
            xp.log_artifact(repo / "outputs" / "model.pkl")
        xp.register_model(str(run.id), "diabetes")
    (repo / "outputs" / "model.pkl").write_bytes(pickle.dumps(model))
    with xp.start_run() as run:
        xp.log_artifact(repo / "outputs" / "model.pkl")
    served = xp.register_model(str(run.id), "diabetes").version
    xp.assign_stage("diabetes", served, "production")
    out: dict[str, float] = {}

    n = ctx.size(500, 50)
    xp.log_production("diabetes", "production", {"accuracy": 0.9})  # the chain exists
    settle()
    t0 = time.perf_counter()
    for i in range(n):
        xp.log_production(
            "diabetes", "production", {"accuracy": 0.9 - i / 1e5, "latency_ms_p95": 38.0}
        )
    out["log_production"] = (time.perf_counter() - t0) / n

    per_version = ctx.size(POINTS_PER_VERSION, 1_000)
    repo_ = find_repo(repo)
    start = int(time.time() * 1000) - per_version * 60_000
    for v in range(1, VERSIONS + 1):
        for batch in range(0, per_version, 1000):  # as ten imports of 1,000 rows each
            chunk = [
                points.Point(
                    "diabetes",
                    f"v0.0.{v}",
                    "production",
                    start + 60_000 * k,
                    "accuracy",
                    0.9 - k / 1e6,
                )
                for k in range(batch, min(per_version, batch + 1000))
            ]
            points.append(repo_, chunk, summary="bench")
    settle()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(
            [*xp_command(), "model", "perf", "diabetes"], cwd=repo, env=child_env(),
            check=True, capture_output=True,
        )  # fmt: skip
        times.append(time.perf_counter() - t0)
    out["perf"] = min(times)
    t0 = time.perf_counter()
    result = xp.model_performance("diabetes")
    out["perf_in_process"] = time.perf_counter() - t0
    out["perf_points"] = float(sum(r.production.n for r in result.rows if r.production))

    port = _port()
    cmd = [*xp_command(), "model", "serve", "diabetes@production", "--port", str(port)]
    body = json.dumps({"instances": row.values.tolist()}).encode()
    with _server([*cmd, "--window", "3600"], repo, port, "/health"):
        out.update(_overhead(port, "/predict", body, model, row, ctx.size(2000, 200)))
    return out


def mlflow_side(ctx: Context) -> dict[str, float]:
    import mlflow
    from mlflow.entities import Metric as MlMetric
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{ctx.workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    client.search_experiments()
    model, row = _model()
    out: dict[str, float] = {}

    n = ctx.size(500, 50)
    with mlflow.start_run():
        mlflow.log_metrics({"accuracy": 0.9})
        settle()
        t0 = time.perf_counter()
        for i in range(n):
            mlflow.log_metrics({"accuracy": 0.9 - i / 1e5, "latency_ms_p95": 38.0})
        out["log_production"] = (time.perf_counter() - t0) / n

    per_version = ctx.size(POINTS_PER_VERSION, 1_000)
    runs = []
    now = int(time.time() * 1000)
    for _v in range(VERSIONS):
        with mlflow.start_run() as run:
            runs.append(run.info.run_id)
        for batch in range(0, per_version, 1000):
            metrics = [
                MlMetric("accuracy", 0.9 - k / 1e6, now + 60_000 * k, k)
                for k in range(batch, min(per_version, batch + 1000))
            ]
            client.log_batch(run.info.run_id, metrics=metrics)
    settle()
    t0 = time.perf_counter()
    total = sum(len(client.get_metric_history(r, "accuracy")) for r in runs)
    out["perf"] = time.perf_counter() - t0
    out["perf_points"] = float(total)

    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, "model")
    port = _port()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"runs:/{run.info.run_id}/model",
    ]
    cmd += ["--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"]
    env_cwd = ctx.workdir
    os.environ["MLFLOW_TRACKING_URI"] = uri
    body = json.dumps({"dataframe_split": row.to_dict(orient="split")}).encode()
    proc_env = {**child_env(), "MLFLOW_TRACKING_URI": uri}
    with contextlib.ExitStack() as stack:
        old = os.environ.copy()
        os.environ.update(proc_env)
        try:
            stack.enter_context(_server(cmd, env_cwd, port, "/ping"))
        finally:
            os.environ.clear()
            os.environ.update(old)
        out.update(_overhead(port, "/invocations", body, model, row, ctx.size(2000, 200)))
    return out


WORKLOAD = Workload(
    key="models",
    title="deployed models: log_production, model perf at 10 x 10k points, serve overhead",
    metrics=(
        Metric("log_production", "xp.log_production, per call", "ms", 0.005, "mlflow.log_metrics"),
        Metric("perf", "xp model perf, 10 versions x 10k points", "s", 1.0, "get_metric_history"),
        Metric(
            "serve_overhead", "serve: HTTP on top of predict", "ms", 0.002, "mlflow models serve"
        ),
        Metric("predict_direct", "predict() called directly", "ms"),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=3,
    peer_repeat=1,
    order=80,
    notes=(
        "log_production: 500 calls, 2 metrics each, one commit per call (acknowledged = in git)",
        "perf: the CLI command with its start-up, best of 3; MLflow reads the same points",
        "serve: median of 2,000 one-row POSTs over one keep-alive connection minus the median"
        " direct predict() on the same row",
    ),
    quick_notes=("quick: 50 calls, 10 x 1,000 points, 200 requests",),
)

if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side, "mlflow": mlflow_side})
