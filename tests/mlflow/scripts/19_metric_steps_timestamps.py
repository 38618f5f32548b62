"""MLflow's metric semantics: step 0 unless given, one timestamp for every metric of a
log_metrics call, an explicit timestamp kept, NaN and infinities accepted, the latest step wins."""

import math

import mlflow
from mlflow import MlflowClient

with mlflow.start_run() as run:
    mlflow.log_metric("no_step", 1.0)
    mlflow.log_metric("no_step", 2.0)
    mlflow.log_metrics({"acc": 0.5, "lr": 0.01}, step=4)
    mlflow.log_metric("ts", 3.0, step=1, timestamp=1_700_000_000_123)
    mlflow.log_metric("late", 5.0, step=9)
    mlflow.log_metric("late", 1.0, step=2)
    mlflow.log_metric("odd", float("nan"))
    mlflow.log_metric("big", float("inf"))
rid = run.info.run_id
c = MlflowClient()
assert [(m.step, m.value) for m in c.get_metric_history(rid, "no_step")] == [(0, 1.0), (0, 2.0)]
acc, lr = c.get_metric_history(rid, "acc")[0], c.get_metric_history(rid, "lr")[0]
assert acc.step == lr.step == 4 and acc.timestamp == lr.timestamp
ts = c.get_metric_history(rid, "ts")[0]
assert (ts.step, ts.value, ts.timestamp) == (1, 3.0, 1_700_000_000_123)
metrics = c.get_run(rid).data.metrics
assert metrics["late"] == 5.0  # the largest step is the latest value
assert math.isnan(metrics["odd"])
assert (
    metrics["big"] >= 1.7976931348623157e308
)  # inf (MLflow's sqlite store keeps the largest float)
assert metrics["no_step"] == 2.0
print("OK")
