"""Hyper-parameter sweep with nested runs (the pattern of examples/hyperparam and the docs'
"nested runs" guide): a parent run, one child per config, best child found with search_runs."""

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

import mlflow

X, y = load_diabetes(return_X_y=True)
X_tr, X_va, y_tr, y_va = train_test_split(X, y, random_state=0)
exp = mlflow.set_experiment("hyperparam-sweep")

with mlflow.start_run(run_name="sweep") as parent:
    mlflow.log_param("search_space", "alpha in [0.01, 0.1, 1, 10]")
    best = (None, np.inf)
    for alpha in [0.01, 0.1, 1.0, 10.0]:
        with mlflow.start_run(run_name=f"alpha={alpha}", nested=True) as child:
            model = Ridge(alpha=alpha).fit(X_tr, y_tr)
            rmse = float(np.sqrt(mean_squared_error(y_va, model.predict(X_va))))
            mlflow.log_param("alpha", alpha)
            mlflow.log_metric("val_rmse", rmse)
            if rmse < best[1]:
                best = (child.info.run_id, rmse)
    mlflow.log_metric("best_val_rmse", best[1])
    mlflow.set_tag("best_run_id", best[0])

children = mlflow.search_runs(
    experiment_ids=[exp.experiment_id],
    filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}' and attributes.status = 'FINISHED'",
    order_by=["metrics.val_rmse ASC"],
)
print(children[["run_id", "tags.mlflow.runName", "params.alpha", "metrics.val_rmse"]])
assert children.iloc[0]["run_id"] == best[0]
assert (
    list(children["metrics.val_rmse"]) == sorted(children["metrics.val_rmse"])
    and len(children) == 4
)
top = mlflow.search_runs(
    experiment_ids=[exp.experiment_id],
    filter_string="metrics.val_rmse < 1000",
    order_by=["metrics.val_rmse"],
    max_results=1,
    output_format="list",
)[0]
assert (
    top.info.run_id == best[0]
    and mlflow.get_parent_run(top.info.run_id).info.run_id == parent.info.run_id
)
print("OK best", best)
