"""Adapted from examples/sklearn_autolog/grid_search_cv.py: parent run + child runs per candidate,
then search_runs(filter_string="tags.mlflow.parentRunId = '...'") into a DataFrame."""

from pprint import pprint

import pandas as pd
from sklearn import datasets, svm
from sklearn.model_selection import GridSearchCV

import mlflow
from mlflow import MlflowClient


def fetch_logged_data(run_id):
    client = MlflowClient()
    data = client.get_run(run_id).data
    tags = {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")}
    return {
        "params": data.params,
        "metrics": data.metrics,
        "tags": tags,
        "artifacts": [f.path for f in client.list_artifacts(run_id)],
    }


def main():
    mlflow.sklearn.autolog()
    iris = datasets.load_iris()
    parameters = {"kernel": ("linear", "rbf"), "C": [1, 10]}
    clf = GridSearchCV(svm.SVC(), parameters, cv=3)
    with mlflow.start_run() as run:
        clf.fit(iris.data, iris.target)
    print("========== parent run ==========")
    parent = fetch_logged_data(run.info.run_id)
    pprint(parent)
    filter_child_runs = f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    runs = mlflow.search_runs(filter_string=filter_child_runs)
    param_cols = [f"params.{p}" for p in parameters.keys()]
    metric_cols = ["metrics.mean_test_score"]
    print("\n========== child runs ==========\n")
    pd.set_option("display.max_columns", None)
    print(runs[["run_id", *param_cols, *metric_cols]])
    assert len(runs) == 4
    assert "best_C" in parent["params"] and "best_cv_score" in parent["metrics"]
    assert "cv_results.csv" in parent["artifacts"]
    assert runs["metrics.mean_test_score"].dtype == "float64"
    print("OK")


if __name__ == "__main__":
    main()
