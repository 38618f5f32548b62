"""Datasets as inputs (the docs' "Tracking datasets" pattern): from a DataFrame with a source
and targets, logged with a context, read back from run.inputs."""

import pandas as pd

import mlflow

df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
ds = mlflow.data.from_pandas(df, source="data/train.csv", name="train", targets="y")
assert ds.name == "train" and ds.targets == "y"
with mlflow.start_run() as run:
    mlflow.log_input(ds, context="training")
    mlflow.log_param("rows", len(df))
inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
assert len(inputs) == 1
d = inputs[0].dataset
assert d.name == "train" and d.source_type == "local" and d.digest == ds.digest
assert "data/train.csv" in d.source
assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"
print("OK")
