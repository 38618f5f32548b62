"""scikit-learn autologging with real estimators on data shipped with scikit-learn: what is
logged matches what the estimator reports."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import xp
import xp.integrations.sklearn as xsk


@pytest.fixture
def autolog() -> Iterator[None]:
    xsk.autolog()
    yield
    xsk.autolog(disable=True)


def _data() -> tuple[object, object]:
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)


def _latest() -> xp.ActiveRun:
    return xp.get_run(xp.list_runs()[0].id)  # type: ignore[no-any-return]


def test_pipeline_fit_is_one_run_with_mlflow_names(repo: Path, autolog: None) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data()
    pipe = Pipeline([("s", StandardScaler()), ("r", Ridge(alpha=0.5))]).fit(X, y)
    (entry,) = xp.list_runs()  # the inner fits log nothing of their own
    run = xp.get_run(entry.id)
    assert run.status == "finished"
    assert run.name == "Pipeline"
    assert run.params["r__alpha"] == 0.5
    assert run.params["s__with_mean"] is True
    assert run.params["steps"].startswith("[('s', StandardScaler())")
    assert run.tags["estimator_class"] == "sklearn.pipeline.Pipeline"
    assert run.metrics["training_score"] == pytest.approx(pipe.score(X, y))
    assert set(run.metrics) == {
        "training_mean_squared_error",
        "training_root_mean_squared_error",
        "training_mean_absolute_error",
        "training_r2_score",
        "training_score",
    }
    model = pickle.loads(xp.read_artifact(run, "model.pkl"))
    assert (model.predict(X[:5]) == pipe.predict(X[:5])).all()


def test_classifier_metrics(repo: Path, autolog: None) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    run = _latest()
    assert run.metrics["training_accuracy_score"] == pytest.approx(
        accuracy_score(y, clf.predict(X))
    )
    assert run.metrics["training_log_loss"] == pytest.approx(log_loss(y, clf.predict_proba(X)))
    assert {"training_f1_score", "training_roc_auc", "training_precision_score"} <= set(run.metrics)


def test_search_logs_best_params_results_and_child_runs(repo: Path, autolog: None) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    X, y = _data()
    search = GridSearchCV(Ridge(), {"alpha": [0.1, 1.0, 10.0]}, cv=3).fit(X, y)
    runs = [xp.get_run(r.id) for r in xp.list_runs()]
    (parent,) = [r for r in runs if r.name == "GridSearchCV"]
    children = sorted((r for r in runs if r is not parent), key=lambda r: r.tags["xp.search.rank"])
    assert parent.params["best_alpha"] == search.best_params_["alpha"]
    assert parent.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert "estimator.alpha" not in parent.params  # a search logs its own params only
    assert {a.path for a in parent.artifacts} >= {"model.pkl", "best_estimator.pkl"}
    table_key = next(e.key for e in parent.record.media if e.key.startswith("cv_results."))
    table = xp.load_table(parent, table_key)
    assert list(table["mean_test_score"]) == pytest.approx(
        list(search.cv_results_["mean_test_score"])
    )
    assert len(children) == 3
    for child in children:
        assert child.meta["parent"] == parent.id
        rank = int(child.tags["xp.search.rank"])
        i = list(search.cv_results_["rank_test_score"]).index(rank)
        assert child.params["alpha"] == search.cv_results_["params"][i]["alpha"]
        assert child.metrics["mean_test_score"] == pytest.approx(
            search.cv_results_["mean_test_score"][i]
        )
    assert children[0].params["alpha"] == search.best_params_["alpha"]


def test_max_tuning_runs_and_no_models(repo: Path) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    xsk.autolog(max_tuning_runs=1, log_models=False, log_training_metrics=False)
    try:
        GridSearchCV(Ridge(), {"alpha": [0.1, 1.0, 10.0]}, cv=3).fit(*_data())
    finally:
        xsk.autolog(disable=True)
    runs = [xp.get_run(r.id) for r in xp.list_runs()]
    assert len(runs) == 2
    parent = next(r for r in runs if r.name == "GridSearchCV")
    assert not [k for k in parent.metrics if k.startswith("training_")]
    assert "model.pkl" not in {a.path for a in parent.artifacts}


def test_inside_a_run_and_a_second_fit_with_other_params(repo: Path, autolog: None) -> None:
    from sklearn.linear_model import Ridge

    X, y = _data()
    with xp.start_run(name="mine") as run:
        Ridge(alpha=1.0).fit(X, y)
        Ridge(alpha=1.0).fit(X, y)  # same params: same run
        Ridge(alpha=2.0).fit(X, y)  # other params: a child run, never an error
    runs = {r.id: xp.get_run(r.id) for r in xp.list_runs()}
    assert runs[run.id].status == "finished"
    assert runs[run.id].params["alpha"] == 1.0
    (child,) = [r for r in runs.values() if r.id != run.id]
    assert (child.params["alpha"], child.meta["parent"]) == (2.0, run.id)


def test_a_failing_fit_is_a_failed_run_and_the_error_passes(repo: Path, autolog: None) -> None:
    from sklearn.linear_model import Ridge

    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        Ridge().fit([[1.0], [2.0]], [1.0])
    assert _latest().status == "failed"


def test_own_estimators_are_patched_and_disable_undoes_it(repo: Path) -> None:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.linear_model import Ridge

    xsk.autolog()

    class Mean(RegressorMixin, BaseEstimator):
        def __init__(self, shift: float = 0.0) -> None:
            self.shift = shift

        def fit(self, X: object, y: object) -> Mean:
            import numpy as np

            self.mean_ = float(np.mean(y)) + self.shift
            return self

        def predict(self, X: object) -> object:
            import numpy as np

            return np.full(len(X), self.mean_)  # type: ignore[arg-type]

    Mean(shift=1.0).fit(*_data())
    assert _latest().params == {"shift": 1.0}
    xsk.autolog(disable=True)
    assert not getattr(Ridge.fit, "_xp_patched", False)
    Mean().fit(*_data())
    Ridge().fit(*_data())
    assert len(xp.list_runs()) == 1


def test_autolog_before_importing_sklearn(repo: Path) -> None:
    """``xp.autolog()`` at the top of a script, scikit-learn imported after it."""
    script = textwrap.dedent(
        """
        import sys, xp
        xp.autolog()
        assert "sklearn" not in sys.modules
        from sklearn.datasets import load_diabetes
        from sklearn.tree import DecisionTreeRegressor
        DecisionTreeRegressor(max_depth=2).fit(*load_diabetes(return_X_y=True))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    run = _latest()
    assert run.name == "DecisionTreeRegressor"
    assert run.params["max_depth"] == 2
    assert "training_r2_score" in run.metrics
