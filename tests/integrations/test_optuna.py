"""Optuna: a study run with a child run per trial; pruned and failed trials keep their state."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import xp

pytestmark = pytest.mark.framework
optuna = pytest.importorskip("optuna")


def _objective(trial: Any) -> float:
    x = trial.suggest_float("x", -10, 10)
    mode = trial.suggest_categorical("mode", ["ok", "fail", "prune"])
    trial.set_user_attr("note", f"mode={mode}")
    for step in range(3):
        trial.report(x * x + step, step)
    if mode == "fail":
        raise ValueError("objective failed")
    if mode == "prune":
        raise optuna.TrialPruned()
    return float(x * x)


def _runs() -> list[Any]:
    return [xp.get_run(r.id) for r in xp.list_runs()]


def test_a_child_run_per_trial_with_its_state(repo: Path) -> None:
    from xp.integrations.optuna import XPCallback

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="s", sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(_objective, n_trials=12, callbacks=[XPCallback()], catch=(ValueError,))
    xp.end_run()
    runs = _runs()
    (parent,) = [r for r in runs if r.name == "s"]
    trials = {int(r.tags["optuna.trial"]): r for r in runs if r is not parent}
    assert len(trials) == 12
    for frozen in study.trials:
        run = trials[frozen.number]
        assert run.meta["parent"] == parent.id
        assert run.params == frozen.params
        assert run.tags["optuna.state"] == frozen.state.name
        assert run.tags["optuna.user_attr.note"] == frozen.user_attrs["note"]
        assert (
            run.status
            == {"COMPLETE": "finished", "PRUNED": "killed", "FAIL": "failed"}[frozen.state.name]
        )
        if frozen.state.name == "COMPLETE":
            assert run.metrics["value"] == frozen.value
            assert [(s, v) for s, v, _t in run.record.series["intermediate/value"]] == sorted(
                frozen.intermediate_values.items()
            )
    assert {t.state.name for t in study.trials} == {"COMPLETE", "FAIL", "PRUNED"}
    assert parent.metrics["best_value"] == study.best_value
    assert parent.tags["optuna.best_trial"] == str(study.best_trial.number)
    assert parent.tags["best.x"] == str(study.best_params["x"])
    assert parent.params["optuna.sampler"] == "RandomSampler"
    assert parent.tags["optuna.direction"] == "minimize"


def test_track_logs_the_objectives_own_metrics_into_its_trial(repo: Path) -> None:
    from xp.integrations.optuna import XPCallback

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    cb = XPCallback(metric_name="loss")

    @cb.track()
    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        xp.log_metric("inner", x)
        if x > 0.9:
            raise RuntimeError("uncaught")
        return x

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    with xp.start_run(name="study") as outer:
        study.optimize(objective, n_trials=3, callbacks=[cb])
        study.enqueue_trial({"x": 0.95})
        with pytest.raises(RuntimeError):  # an uncaught error still leaves a failed child
            study.optimize(objective, n_trials=1, callbacks=[cb])
    children = [r for r in _runs() if r.id != outer.id]
    assert len(children) == 4
    assert all(c.meta["parent"] == outer.id for c in children)
    failed = [c for c in children if c.status == "failed"]
    assert len(failed) == 1
    assert failed[0].tags["optuna.error"] == "RuntimeError: uncaught"
    for c in children:
        assert c.metrics["inner"] == c.params["x"]
        if c.status == "finished":
            assert c.metrics["loss"] == c.params["x"]


def test_under_xp_run_trials_are_children_of_its_run(repo: Path) -> None:
    (repo / "tune.py").write_text(
        textwrap.dedent(
            """
            import optuna
            from xp.integrations.optuna import XPCallback
            optuna.logging.set_verbosity(optuna.logging.ERROR)
            study = optuna.create_study()
            study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3,
                           callbacks=[XPCallback()])
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "run", "--", sys.executable, "tune.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    runs = _runs()
    (owner,) = [r for r in runs if "parent" not in r.meta]
    assert owner.meta["command"][-1] == "tune.py"
    assert owner.tags["optuna.study"].startswith("no-name")
    assert len([r for r in runs if r.meta.get("parent") == owner.id]) == 3


def test_parallel_trials(repo: Path) -> None:
    from xp.integrations.optuna import XPCallback

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="par")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=6, n_jobs=2,
                   callbacks=[XPCallback()])  # fmt: skip
    xp.end_run()
    runs = _runs()
    assert len(runs) == 7
    assert sorted(int(r.tags["optuna.trial"]) for r in runs if r.name != "par") == list(range(6))
