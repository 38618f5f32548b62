"""XGBoost: the callback and autolog on a real booster; what is logged is what XGBoost reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import xp

pytestmark = pytest.mark.framework
xgb = pytest.importorskip("xgboost")


def _data() -> tuple[Any, Any]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return xgb.DMatrix(X[:350], label=y[:350]), xgb.DMatrix(X[350:], label=y[350:])


PARAMS = {"objective": "reg:squarederror", "max_depth": 3, "eta": 0.9, "nthread": 1}


def _run() -> Any:
    return xp.get_run(xp.list_runs()[0].id)


def test_callback_logs_every_round_as_xgboost_reports_it(repo: Path) -> None:
    from xp.integrations.xgboost import XPCallback

    dtrain, dvalid = _data()
    history: dict[str, Any] = {}
    params = {**PARAMS, "eval_metric": ["rmse", "mae"]}
    bst = xgb.train(
        params, dtrain, 6, evals=[(dtrain, "train"), (dvalid, "valid")],
        evals_result=history, callbacks=[XPCallback()], verbose_eval=False,
    )  # fmt: skip
    run = _run()
    assert run.status == "finished"
    for data in ("train", "valid"):
        for metric in ("rmse", "mae"):
            points = run.record.series[f"{data}-{metric}"]
            assert [s for s, _v, _t in points] == list(range(6))
            assert [v for _s, v, _t in points] == history[data][metric]
    assert run.params["max_depth"] == 3  # the booster's settings, from its config
    assert json.loads(xp.read_artifact(run, "feature_importance_weight.json")) == bst.get_score(
        importance_type="weight"
    )
    (repo / "m.ubj").write_bytes(xp.read_artifact(run, "model.ubj"))
    back = xgb.Booster(model_file=str(repo / "m.ubj"))
    assert (back.predict(dvalid) == bst.predict(dvalid)).all()


def test_autolog_with_early_stopping_matches_mlflow(repo: Path) -> None:
    import xp.integrations.xgboost as xx

    xx.autolog()
    try:
        dtrain, dvalid = _data()
        bst = xgb.train(
            PARAMS, dtrain, 50, evals=[(dtrain, "train"), (dvalid, "valid")],
            early_stopping_rounds=3, verbose_eval=False,
        )  # fmt: skip
    finally:
        xx.autolog(disable=True)
    run = _run()
    assert run.params["num_boost_round"] == 50
    assert run.params["early_stopping_rounds"] == 3
    assert run.params["eta"] == 0.9
    rounds = bst.num_boosted_rounds()
    assert run.metrics["best_iteration"] == bst.best_iteration
    assert run.metrics["stopped_iteration"] == rounds - 1
    valid = run.record.series["valid-rmse"]
    assert len(valid) == rounds + 1  # every round, then the best one again one step later
    assert valid[-1][0] == rounds
    assert valid[-1][1] == valid[bst.best_iteration][1] == pytest.approx(bst.best_score)


def test_sklearn_api_logs_get_params(repo: Path) -> None:
    from sklearn.datasets import load_diabetes

    import xp.integrations.xgboost as xx

    X, y = load_diabetes(return_X_y=True)
    xx.autolog()
    try:
        reg = xgb.XGBRegressor(n_estimators=4, max_depth=2, n_jobs=1)
        reg.fit(X[:350], y[:350], eval_set=[(X[350:], y[350:])], verbose=False)
    finally:
        xx.autolog(disable=True)
    (entry,) = xp.list_runs()
    run = xp.get_run(entry.id)
    assert run.name == "XGBRegressor"
    assert (run.params["n_estimators"], run.params["max_depth"]) == (4, 2)
    assert [v for _s, v, _t in run.record.series["validation_0-rmse"]] == reg.evals_result()[
        "validation_0"
    ]["rmse"]


def test_cv_logs_mean_and_std(repo: Path) -> None:
    from xp.integrations.xgboost import XPCallback

    dtrain, _ = _data()
    frame = xgb.cv(PARAMS, dtrain, 3, nfold=2, callbacks=[XPCallback()], seed=0)
    run = _run()
    assert [v for _s, v, _t in run.record.series["test-rmse-mean"]] == list(frame["test-rmse-mean"])
    assert "model.ubj" not in {a.path for a in run.artifacts}


def test_a_broken_run_never_stops_training(repo: Path) -> None:
    from xp.integrations.xgboost import XPCallback

    dtrain, dvalid = _data()
    run = xp.start_run().run
    xp.end_run()  # the callback's run has ended: its logging fails, training goes on
    bst = xgb.train(PARAMS, dtrain, 3, evals=[(dvalid, "v")], callbacks=[XPCallback(run)])
    assert bst.num_boosted_rounds() == 3
