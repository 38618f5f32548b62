"""search_runs the way notebooks use it: a DataFrame with MLflow's columns and types, MLflow's
filter grammar (upper-case statuses, tags.mlflow.runName, back-ticked keys), order_by, the
best run, and child runs of a parent as a list."""

import mlflow

mlflow.set_experiment("sweep")
with mlflow.start_run(run_name="parent") as parent:
    for alpha in (0.1, 0.5, 1.0):
        with mlflow.start_run(run_name=f"alpha={alpha}", nested=True):
            mlflow.log_param("alpha", alpha)
            mlflow.log_metric("rmse", round(1.0 - alpha / 2, 3))
            mlflow.log_metric("val-loss", alpha)
pid = parent.info.run_id
df = mlflow.search_runs(
    experiment_names=["sweep"], filter_string="metrics.rmse < 1", order_by=["metrics.rmse ASC"]
)
assert list(df["metrics.rmse"]) == [0.5, 0.75, 0.95], df
assert list(df["params.alpha"]) == ["1.0", "0.5", "0.1"]
assert df.iloc[0]["tags.mlflow.runName"] == "alpha=1.0"
for col in (
    "run_id",
    "experiment_id",
    "status",
    "artifact_uri",
    "start_time",
    "end_time",
    "tags.mlflow.parentRunId",
):
    assert col in df.columns, col
assert set(df["status"]) == {"FINISHED"}
assert str(df["start_time"].dtype).startswith("datetime64")
assert len(mlflow.search_runs(experiment_names=["sweep"])) == 4
got = mlflow.search_runs(
    experiment_names=["sweep"],
    filter_string="params.alpha = '0.5' and attributes.status = 'FINISHED'",
)
assert len(got) == 1 and got.iloc[0]["metrics.rmse"] == 0.75
named = mlflow.search_runs(
    experiment_names=["sweep"], filter_string="tags.mlflow.runName = 'parent'"
)
assert list(named["run_id"]) == [pid]
like = mlflow.search_runs(experiment_names=["sweep"], filter_string="run_name LIKE 'alpha=%'")
assert len(like) == 3
ticked = mlflow.search_runs(
    experiment_names=["sweep"],
    filter_string="metrics.`val-loss` > 0.2",
    order_by=["metrics.`val-loss` DESC"],
)
assert list(ticked["params.alpha"]) == ["1.0", "0.5"]
children = mlflow.search_runs(
    experiment_names=["sweep"],
    filter_string=f"tags.mlflow.parentRunId = '{pid}'",
    output_format="list",
)
assert sorted(r.data.metrics["rmse"] for r in children) == [0.5, 0.75, 0.95]
assert all(r.data.tags["mlflow.parentRunId"] == pid for r in children)
best = mlflow.search_runs(experiment_names=["sweep"], order_by=["metrics.rmse"], max_results=1)
assert best.iloc[0]["params.alpha"] == "1.0"
print("OK")
