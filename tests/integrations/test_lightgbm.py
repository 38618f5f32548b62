"""LightGBM: the callback (numpy.float64 values, EvalResult tuples) and autolog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import xp

pytestmark = pytest.mark.framework
lgb = pytest.importorskip("lightgbm")

PARAMS = {"objective": "regression", "num_leaves": 7, "learning_rate": 0.9, "verbose": -1,
          "num_threads": 1}  # fmt: skip


def _data() -> tuple[Any, Any]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return lgb.Dataset(X[:350], y[:350]), lgb.Dataset(X[350:], y[350:])


def _run() -> Any:
    return xp.get_run(xp.list_runs()[0].id)


def test_callback_logs_lightgbms_own_values(repo: Path) -> None:
    from xp.integrations.lightgbm import XPCallback

    train, valid = _data()
    history: dict[str, Any] = {}
    cb = XPCallback()
    bst = lgb.train(
        {**PARAMS, "metric": ["l2", "l1"]}, train, 4, valid_sets=[train, valid],
        valid_names=["train", "valid"], callbacks=[cb, lgb.record_evaluation(history)],
    )  # fmt: skip
    cb.finish(bst)
    run = _run()
    assert run.status == "finished"
    for data in ("train", "valid"):
        for metric in ("l2", "l1"):
            assert [v for _s, v, _t in run.record.series[f"{data}-{metric}"]] == history[data][
                metric
            ]
    assert run.params["num_leaves"] == 7
    assert json.loads(xp.read_artifact(run, "feature_importance_gain.json")) == pytest.approx(
        dict(zip(bst.feature_name(), bst.feature_importance("gain").tolist(), strict=True))
    )
    (repo / "m.txt").write_bytes(xp.read_artifact(run, "model.txt"))
    assert lgb.Booster(model_file=str(repo / "m.txt")).num_trees() == bst.num_trees()


def test_autolog_early_stopping_as_mlflow(repo: Path) -> None:
    import xp.integrations.lightgbm as xl

    train, valid = _data()
    xl.autolog()
    try:
        bst = lgb.train(
            PARAMS, train, 50, valid_sets=[train, valid], valid_names=["train", "valid"],
            callbacks=[lgb.early_stopping(3, verbose=False)],
        )  # fmt: skip
    finally:
        xl.autolog(disable=True)
    run = _run()
    assert run.params["num_boost_round"] == 50
    ran = len(run.record.series["valid-l2"]) - 1
    assert run.metrics["stopped_iteration"] == ran  # MLflow's count of iterations run
    assert run.metrics["best_iteration"] == bst.best_iteration  # 1-based, LightGBM's
    assert run.metrics["valid-l2"] == pytest.approx(bst.best_score["valid"]["l2"])


def test_cv_and_the_sklearn_api(repo: Path) -> None:
    from sklearn.datasets import load_diabetes

    import xp.integrations.lightgbm as xl
    from xp.integrations.lightgbm import XPCallback

    train, _ = _data()
    cb = XPCallback()
    result = lgb.cv(PARAMS, train, 3, nfold=2, stratified=False, callbacks=[cb])
    cb.finish()
    cv_run = _run()
    assert [v for _s, v, _t in cv_run.record.series["valid-l2-mean"]] == result["valid l2-mean"]
    assert "valid-l2-stdv" in cv_run.metrics
    X, y = load_diabetes(return_X_y=True)
    xl.autolog()
    try:
        lgb.LGBMRegressor(n_estimators=3, num_leaves=5, verbose=-1, n_jobs=1).fit(
            X[:350], y[:350], eval_X=(X[350:],), eval_y=(y[350:],), eval_names=["valid"]
        )
    finally:
        xl.autolog(disable=True)
    run = _run()
    assert run.name == "LGBMRegressor"
    assert run.params["num_leaves"] == 5
    assert len(run.record.series["valid-l2"]) == 3


def test_held_back_iterations_reach_the_run_when_training_fails_and_read_live(
    repo: Path,
) -> None:
    """The callback keeps each iteration's results and logs them in bulk at the run's
    flushes: a training that raises mid-way still has every iteration before the error in
    the run, each at its own step and in the order of its time; a live read sees them."""
    from xp.integrations.lightgbm import XPCallback

    train, valid = _data()

    def stop_at(env: Any) -> None:
        if env.iteration == 5:
            raise KeyboardInterrupt  # the user's Ctrl-C, between iterations

    with xp.start_run() as active:
        run = active.run
        cb = XPCallback(log_model=False)
        with pytest.raises(KeyboardInterrupt):
            lgb.train(PARAMS, train, 20, valid_sets=[valid], valid_names=["valid"],
                      callbacks=[cb, stop_at])  # fmt: skip
        live = run.history("valid-l2")  # a live read drains what the callback held
        assert [s for s, _v, _t in live] == [0, 1, 2, 3, 4, 5]
    points = _run().record.series["valid-l2"]
    assert [s for s, _v, _t in points] == [0, 1, 2, 3, 4, 5]
    times = [t for _s, _v, t in points]
    assert times == sorted(times)


def test_the_run_ending_first_logs_what_the_callback_held(repo: Path) -> None:
    from xp.integrations.lightgbm import XPCallback

    train, valid = _data()
    with xp.start_run():
        cb = XPCallback(log_model=False)
        lgb.train(PARAMS, train, 3, valid_sets=[valid], valid_names=["valid"], callbacks=[cb])
    # no cb.finish(): the run's end drained the held iterations
    assert [s for s, _v, _t in _run().record.series["valid-l2"]] == [0, 1, 2]


def test_a_finished_callback_is_drained_by_the_next_flush_then_forgotten(repo: Path) -> None:
    """``finish`` leaves what is held to the run's next flush (off the training's path);
    once drained, the run lets go of the callback (a run training many models holds none)."""
    from xp.integrations.lightgbm import XPCallback

    train, valid = _data()
    with xp.start_run() as active:
        run = active.run
        for _ in range(2):  # the same callback, two trainings
            cb = XPCallback(log_model=False)
            bst = lgb.train(PARAMS, train, 3, valid_sets=[valid], valid_names=["valid"],
                            callbacks=[cb])  # fmt: skip
            cb.finish(bst)
            run.flush()
            assert run._deferred == []
        assert [s for s, _v, _t in run.history("valid-l2")] == [0, 1, 2, 0, 1, 2]
