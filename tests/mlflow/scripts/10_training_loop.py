"""Epoch-style training loop (PyTorch/Keras tutorials' pattern, here with SGDRegressor.partial_fit):
log_metrics(step=...), a failing run marked FAILED by the context manager, resuming a run by id,
mlflow.autolog(), and last_active_run()."""

import numpy as np
from sklearn.datasets import make_regression
from sklearn.linear_model import SGDRegressor

import mlflow

mlflow.set_experiment("training-loop")
X, y = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=0)
model = SGDRegressor(random_state=0)
with mlflow.start_run(
    run_name="sgd", tags={"framework": "sklearn"}, description="epoch loop"
) as run:
    mlflow.log_params({"epochs": 5, "lr": "optimal"})
    for epoch in range(5):
        model.partial_fit(X, y)
        mse = float(np.mean((model.predict(X) - y) ** 2))
        mlflow.log_metrics({"train_mse": mse, "epoch_time": 0.01 * epoch}, step=epoch)
hist = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train_mse")
assert [m.step for m in hist] == list(range(5))

try:
    with mlflow.start_run(run_name="crash") as bad:
        mlflow.log_metric("x", 1)
        raise RuntimeError("diverged")
except RuntimeError:
    pass
assert mlflow.get_run(bad.info.run_id).info.status == "FAILED"

with mlflow.start_run(run_id=run.info.run_id):
    mlflow.log_metric("post_hoc_eval", 0.5)
r = mlflow.get_run(run.info.run_id)
assert r.data.tags["mlflow.note.content"] == "epoch loop" and "post_hoc_eval" in r.data.metrics

mlflow.autolog()
with mlflow.start_run(run_name="autolog"):
    SGDRegressor(random_state=0).fit(X, y)
last = mlflow.last_active_run()
assert last.info.run_name == "autolog" and "training_score" in last.data.metrics
print("OK", last.data.tags.get("estimator_name"))
