"""Experiments by id, runs placed in them, tags set and deleted, the last active run, and a
run started while another is active needs nested=True."""

import mlflow
from mlflow.entities import Run

exp_id = mlflow.create_experiment("by-id", tags={"owner": "me"})
assert mlflow.get_experiment(exp_id).tags["owner"] == "me"
with mlflow.start_run(experiment_id=exp_id) as run:
    mlflow.set_tags({"a": "1", "b": 2})
    mlflow.set_tag("c", "3")
    mlflow.delete_tag("a")
    try:
        mlflow.start_run()
    except Exception as e:  # MLflow raises a plain Exception here
        assert "nested=True" in str(e)
    else:
        raise AssertionError("a second active run needs nested=True")
last = mlflow.last_active_run()
assert isinstance(last, Run) and last.info.run_id == run.info.run_id
assert last.info.experiment_id == exp_id
tags = last.data.tags
assert "a" not in tags and tags["b"] == "2" and tags["c"] == "3"
mlflow.set_experiment(experiment_id=exp_id)
with mlflow.start_run() as second:
    pass
assert second.info.experiment_id == exp_id
ids = [r.info.run_id for r in mlflow.search_runs([exp_id], output_format="list")]
assert sorted(ids) == sorted([run.info.run_id, second.info.run_id])
print("OK")
