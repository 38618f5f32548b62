"""Log into a run after it ended: start_run(run_id=) continues it (evaluation after training),
and log_metric(run_id=) writes to it without making it active."""

import mlflow

with mlflow.start_run(run_name="train") as run:
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
rid = run.info.run_id
assert mlflow.get_run(rid).info.status == "FINISHED"
with mlflow.start_run(run_id=rid) as again:
    assert again.info.run_id == rid
    assert mlflow.get_run(rid).info.status == "RUNNING"
    mlflow.log_metric("test_acc", 0.9)
    mlflow.log_metric("loss", 0.2, step=3)
mlflow.log_metric("extra", 1.0, run_id=rid)
assert mlflow.active_run() is None
r = mlflow.get_run(rid)
assert r.info.status == "FINISHED" and r.info.run_name == "train"
assert r.data.metrics == {"loss": 0.2, "test_acc": 0.9, "extra": 1.0}, r.data.metrics
history = mlflow.MlflowClient().get_metric_history(rid, "loss")
assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, 1 / 3), (3, 0.2)]
print("OK")
