"""CI-style configuration from the environment: MLFLOW_EXPERIMENT_NAME picks the experiment,
a local tracking URI is set, get_tracking_uri and get_artifact_uri answer strings."""

import os

import mlflow

os.environ["MLFLOW_EXPERIMENT_NAME"] = "ci-nightly"
mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or "file:./mlruns")
print(mlflow.get_tracking_uri())
assert isinstance(mlflow.get_tracking_uri(), str)
with mlflow.start_run() as run:
    mlflow.log_metric("m", 1)
    uri = mlflow.get_artifact_uri("model")
    assert isinstance(uri, str) and uri.endswith("model"), uri
    assert mlflow.get_artifact_uri().rstrip("/") == run.info.artifact_uri.rstrip("/")
exp = mlflow.get_experiment_by_name("ci-nightly")
assert exp is not None and mlflow.get_run(run.info.run_id).info.experiment_id == exp.experiment_id
print("OK")
