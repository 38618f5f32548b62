"""CatBoost: the callback (1-based iterations made 0-based) and autolog."""

from __future__ import annotations

from pathlib import Path

import pytest

import xp

pytestmark = pytest.mark.framework
catboost = pytest.importorskip("catboost")


def test_autolog_logs_iterations_params_and_the_best(repo: Path) -> None:
    from sklearn.datasets import load_diabetes

    import xp.integrations.catboost as xc

    X, y = load_diabetes(return_X_y=True)
    xc.autolog()
    try:
        model = catboost.CatBoostRegressor(
            iterations=30, learning_rate=0.9, depth=3, thread_count=1, verbose=False,
            allow_writing_files=False, early_stopping_rounds=3,
        )  # fmt: skip
        model.fit(X[:350], y[:350], eval_set=(X[350:], y[350:]))
    finally:
        xc.autolog(disable=True)
    run = xp.get_run(xp.list_runs()[0].id)
    history = model.get_evals_result()
    valid = run.record.series["validation-RMSE"]
    assert [v for _s, v, _t in valid[:-1]] == pytest.approx(history["validation"]["RMSE"])
    assert valid[0][0] == 0
    assert run.metrics["best_iteration"] == model.best_iteration_
    assert run.metrics["validation-RMSE"] == pytest.approx(model.best_score_["validation"]["RMSE"])
    assert run.params["depth"] == 3
    assert run.params["iterations"] == 30
    (repo / "m.cbm").write_bytes(xp.read_artifact(run, "model.cbm"))
    back = catboost.CatBoostRegressor().load_model(str(repo / "m.cbm"))
    assert (back.predict(X[:3]) == model.predict(X[:3])).all()


def test_callback_alone(repo: Path) -> None:
    from sklearn.datasets import load_diabetes

    from xp.integrations.catboost import XPCallback

    X, y = load_diabetes(return_X_y=True)
    cb = XPCallback()
    model = catboost.CatBoostRegressor(
        iterations=3, thread_count=1, verbose=False, allow_writing_files=False
    ).fit(X, y, callbacks=[cb])
    cb.finish(model)
    run = xp.get_run(xp.list_runs()[0].id)
    assert [s for s, _v, _t in run.record.series["learn-RMSE"]] == [0, 1, 2]
