"""Experiment by name, run name, description and tags, then the run fields reports read
(the docs' "Organizing runs in experiments" pattern)."""

import time

import mlflow

exp_id = mlflow.set_experiment("wine-quality").experiment_id
with mlflow.start_run(run_name="en-0.5", tags={"team": "ml"}, description="baseline") as run:
    mlflow.set_tag("stage", "dev")
    mlflow.log_param("alpha", 0.5)
    mlflow.log_metric("rmse", 0.78)
    assert mlflow.active_run().info.run_id == run.info.run_id
    assert run.info.status == "RUNNING" and run.info.end_time is None
assert mlflow.active_run() is None
r = mlflow.get_run(run.info.run_id)
assert r.info.run_name == "en-0.5" and r.info.experiment_id == exp_id
assert r.info.status == "FINISHED"
assert r.info.start_time <= r.info.end_time <= int(time.time() * 1000)
assert isinstance(r.info.artifact_uri, str) and r.info.artifact_uri
assert r.data.params == {"alpha": "0.5"} and r.data.metrics == {"rmse": 0.78}
assert r.data.tags["team"] == "ml" and r.data.tags["stage"] == "dev"
assert r.data.tags["mlflow.runName"] == "en-0.5"
assert r.data.tags["mlflow.note.content"] == "baseline"
exp = mlflow.get_experiment_by_name("wine-quality")
assert exp.experiment_id == exp_id and exp.name == "wine-quality"
assert exp.lifecycle_stage == "active"
assert mlflow.get_experiment_by_name("no-such-experiment") is None
assert "wine-quality" in [e.name for e in mlflow.MlflowClient().search_experiments()]
assert mlflow.get_experiment(exp_id).name == "wine-quality"
print("OK", r.info.run_id)
