"""Adapted from examples/remote_store/remote_server.py: module-level fluent calls without an explicit
start_run (a run is started implicitly), repeated metric values, artifacts, get_artifact_uri."""

import os
import random
import shutil
import sys
import tempfile

import mlflow
from mlflow import (
    active_run,
    get_artifact_uri,
    get_tracking_uri,
    log_artifact,
    log_artifacts,
    log_metric,
    log_param,
)

if __name__ == "__main__":
    print(f"Running {sys.argv[0]} with tracking URI {get_tracking_uri()}")
    log_param("param1", 5)
    log_metric("foo", 5)
    log_metric("foo", 6)
    log_metric("foo", 7)
    log_metric("random_int", random.randint(0, 100))
    run_id = active_run().info.run_id
    run = mlflow.MlflowClient().get_run(run_id)
    print(f"Metadata & data for run with UUID {run_id}: {run}")
    local_dir = tempfile.mkdtemp()
    message = (
        f"test artifact written during run {run_id} within artifact URI {get_artifact_uri()}\n"
    )
    try:
        file_path = os.path.join(local_dir, "some_output_file.txt")
        with open(file_path, "w") as handle:
            handle.write(message)
        log_artifacts(local_dir, "some_subdir")
        log_artifact(file_path, "another_dir")
    finally:
        shutil.rmtree(local_dir)
    mlflow.end_run()
    client = mlflow.MlflowClient()
    assert [m.value for m in client.get_metric_history(run_id, "foo")] == [5, 6, 7]
    assert client.get_run(run_id).data.metrics["foo"] == 7
    assert sorted(f.path for f in client.list_artifacts(run_id)) == ["another_dir", "some_subdir"]
    assert client.get_run(run_id).info.status == "FINISHED"
    print("OK")
