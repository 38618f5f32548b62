"""Adapted from examples/sklearn_autolog/pipeline.py (+ utils.fetch_logged_data)."""

from pprint import pprint

import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import mlflow
from mlflow import MlflowClient


def yield_artifacts(run_id, path=None):
    client = MlflowClient()
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            yield from yield_artifacts(run_id, item.path)
        else:
            yield item.path


def fetch_logged_data(run_id):
    client = MlflowClient()
    data = client.get_run(run_id).data
    tags = {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")}
    artifacts = list(yield_artifacts(run_id))
    return {"params": data.params, "metrics": data.metrics, "tags": tags, "artifacts": artifacts}


def main():
    mlflow.sklearn.autolog()
    X = np.array([[1, 1], [1, 2], [2, 2], [2, 3]])
    y = np.dot(X, np.array([1, 2])) + 3
    pipe = Pipeline([("scaler", StandardScaler()), ("lr", LinearRegression())])
    with mlflow.start_run() as run:
        pipe.fit(X, y)
    logged = fetch_logged_data(run.info.run_id)
    for key, data in logged.items():
        print("-" * 10, key, "-" * 10)
        pprint(data)
    assert logged["tags"] == {
        "estimator_name": "Pipeline",
        "estimator_class": "sklearn.pipeline.Pipeline",
    }
    assert {"steps", "scaler", "lr", "lr__fit_intercept", "scaler__with_mean"} <= set(
        logged["params"]
    )
    assert {"training_score", "training_r2_score", "training_mean_squared_error"} <= set(
        logged["metrics"]
    )
    print("OK")


if __name__ == "__main__":
    main()
