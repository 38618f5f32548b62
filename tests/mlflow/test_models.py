"""Models: ``mlflow.sklearn`` log/load, ``mlflow.pyfunc``, ``autolog``, through ``xp.mlflow``
and through MLflow over the plugin; and models moving between the two (real scikit-learn,
so ``framework``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.framework


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    return x, y


def test_log_and_load_sklearn_model(mlflow: ModuleType, iris: tuple[Any, Any]) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    model = LogisticRegression(max_iter=300).fit(x, y)
    signature = mlflow.models.infer_signature(x, model.predict(x))
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model, name="model", signature=signature, input_example=x[:3]
        )
    assert info.model_uri.startswith("models:/")
    assert info.run_id == run.info.run_id
    expected = model.predict(x[:10])
    assert list(mlflow.pyfunc.load_model(info.model_uri).predict(x[:10])) == list(expected)
    loaded = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert list(loaded.predict(x[:10])) == list(expected)
    files = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "model")}
    assert {"model/MLmodel", "model/requirements.txt", "model/input_example.json"} <= files
    assert mlflow.last_logged_model().model_id == info.model_id
    logged = mlflow.MlflowClient().get_logged_model(info.model_id)
    assert logged.source_run_id == run.info.run_id
    assert logged.name == "model"


def test_positional_artifact_path(mlflow: ModuleType, iris: tuple[Any, Any]) -> None:
    from sklearn.tree import DecisionTreeClassifier

    x, y = iris
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            DecisionTreeClassifier().fit(x, y), "tree", serialization_format="cloudpickle"
        )
    assert mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/tree").predict(x[:1]).shape == (1,)


def test_sklearn_autolog(mlflow: ModuleType, iris: tuple[Any, Any]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = iris
    mlflow.sklearn.autolog()
    try:
        with mlflow.start_run() as run:
            Pipeline([("scaler", StandardScaler()), ("lr", LogisticRegression(max_iter=300))]).fit(
                x, y
            )
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = mlflow.get_run(run.info.run_id)
    assert got.data.params["lr__max_iter"] == "300"
    assert got.data.params["scaler__with_mean"] == "True"
    assert got.data.tags["estimator_name"] == "Pipeline"
    assert got.data.tags["estimator_class"] == "sklearn.pipeline.Pipeline"
    assert 0.9 < got.data.metrics["training_score"] <= 1.0
    assert "training_f1_score" in got.data.metrics
    paths = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert "estimator.html" in paths
    model = mlflow.last_logged_model()
    assert model.source_run_id == run.info.run_id
    assert list(mlflow.pyfunc.load_model(model.model_uri).predict(x[:2])) == [0, 0]


def test_autolog_without_a_run_and_grid_search(mlflow: ModuleType, iris: tuple[Any, Any]) -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    x, y = iris
    mlflow.autolog()
    try:
        GridSearchCV(SVC(), {"C": [0.1, 1.0]}, cv=2).fit(x, y)
    finally:
        mlflow.autolog(disable=True)
    assert mlflow.active_run() is None  # the run autolog started has ended
    runs = mlflow.search_runs(output_format="list")
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.data.tags["mlflow.autologging"] == "sklearn"
    assert parent.data.params["best_C"] in ("0.1", "1.0")
    assert "best_cv_score" in parent.data.metrics
    assert sorted(r.data.params["C"] for r in children) == ["0.1", "1.0"]
    assert all("mean_test_score" in r.data.metrics for r in children)
    files = {f.path for f in mlflow.MlflowClient().list_artifacts(parent.info.run_id)}
    assert "cv_results.csv" in files


def test_python_model(xpmlflow: ModuleType, tmp_path: Path) -> None:
    mlflow = xpmlflow

    class AddN(mlflow.pyfunc.PythonModel):
        def __init__(self, n: int) -> None:
            self.n = n

        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return [v + self.n for v in model_input]

    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="adder", python_model=AddN(2))
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert loaded.predict([1, 2]) == [3, 4]
    assert isinstance(loaded.unwrap_python_model(), AddN)


def test_models_move_between_xp_and_mlflow(
    xpmlflow: ModuleType, iris: tuple[Any, Any], tmp_path: Path
) -> None:
    """A model xp.mlflow wrote loads in real MLflow, and one MLflow wrote loads in xp."""
    import mlflow as real
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    model = LogisticRegression(max_iter=300).fit(x, y)
    with xpmlflow.start_run() as run:
        xpmlflow.sklearn.log_model(model, name="model")
    local = xpmlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="model", dst_path=str(tmp_path / "xp")
    )
    assert list(real.pyfunc.load_model(local).predict(x[:5])) == list(model.predict(x[:5]))
    real.sklearn.save_model(
        model, str(tmp_path / "mlflow-model"), serialization_format="cloudpickle"
    )
    mlmodel = (tmp_path / "mlflow-model" / "MLmodel").read_text()
    assert "cloudpickle" in mlmodel
    again = xpmlflow.pyfunc.load_model(str(tmp_path / "mlflow-model"))
    assert list(again.predict(x[:5])) == list(model.predict(x[:5]))


def test_models_of_fetched_runs_need_trust(
    xpmlflow: ModuleType, iris: tuple[Any, Any], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading a model runs its pickled code: one that came with someone else's run is
    refused until MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true says it is trusted."""
    from sklearn.linear_model import LogisticRegression

    from tests.helpers import git

    x, y = iris
    with xpmlflow.start_run() as run:
        xpmlflow.sklearn.log_model(LogisticRegression(max_iter=300).fit(x, y), name="model")
    run_id = run.info.run_id
    sha = git(repo, "rev-parse", f"refs/xp/runs/{run_id}").strip()
    git(repo, "update-ref", f"refs/xp/remotes/origin/runs/{run_id}", sha)
    git(repo, "update-ref", "-d", f"refs/xp/runs/{run_id}")
    with pytest.raises(xpmlflow.exceptions.MlflowException, match="fetched from someone else"):
        xpmlflow.sklearn.load_model(f"runs:/{run_id}/model")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    assert xpmlflow.sklearn.load_model(f"runs:/{run_id}/model").predict(x[:1]).shape == (1,)


def test_mlmodel_says_what_it_is(
    xpmlflow: ModuleType, iris: tuple[Any, Any], tmp_path: Path
) -> None:
    import yaml
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    path = tmp_path / "m"
    xpmlflow.sklearn.save_model(LogisticRegression(max_iter=300).fit(x, y), str(path))
    meta = yaml.safe_load((path / "MLmodel").read_text())
    assert meta["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert meta["flavors"]["sklearn"]["serialization_format"] == "cloudpickle"
    assert (path / "python_env.yaml").is_file()
    assert (path / "conda.yaml").is_file()
    with pytest.raises(xpmlflow.exceptions.MlflowException, match="already exists"):
        xpmlflow.sklearn.save_model(LogisticRegression(), str(path))
    json.loads(json.dumps(meta["flavors"]))


def test_autolog_logs_xgboost_into_the_active_mlflow_run(xpmlflow: ModuleType) -> None:
    """``mlflow.autolog()`` turns on xp's XGBoost integration, which logs into the run
    ``mlflow.start_run()`` made (MLflow's names), and leaves ending it to the script."""
    xgb = pytest.importorskip("xgboost")
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = x[:, 0] * 2 + rng.normal(scale=0.1, size=64)
    xpmlflow.autolog(exclude_flavors=["sklearn"])
    try:
        with xpmlflow.start_run() as run:
            data = xgb.DMatrix(x, label=y)
            xgb.train({"max_depth": 2}, data, num_boost_round=3, evals=[(data, "train")])
            assert xpmlflow.active_run().info.run_id == run.info.run_id
    finally:
        xpmlflow.autolog(disable=True)
    got = xpmlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert "train-rmse" in got.data.metrics
    assert got.data.params["max_depth"] == "2"
    history = xpmlflow.MlflowClient().get_metric_history(run.info.run_id, "train-rmse")
    assert [m.step for m in history] == [0, 1, 2]
    assert len(xpmlflow.search_runs(output_format="list")) == 1  # no run of its own
