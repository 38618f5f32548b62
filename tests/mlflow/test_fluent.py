"""MLflow's fluent API, with the expectations of MLflow's own tests (``tests/tracking/fluent/
test_fluent.py`` and ``tests/tracking/test_tracking.py``, Apache-2.0), written anew and run
twice: against ``xp.mlflow`` and against real MLflow over xp's plugin (see conftest.py).

Where xp differs from MLflow the test says so in a comment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from unittest import mock

import pytest

from tests.helpers import git


def _error_code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", ""))


# -- experiments ---------------------------------------------------------------------------
def test_default_experiment_is_zero(mlflow: ModuleType) -> None:
    assert mlflow.tracking.fluent._get_experiment_id() == "0"
    assert mlflow.get_experiment("0").name == "Default"
    with mlflow.start_run(experiment_id=0) as run:
        assert run.info.experiment_id == "0"


def test_set_experiment_by_name_creates_it(mlflow: ModuleType) -> None:
    exp = mlflow.set_experiment("wine")
    assert exp.name == "wine"
    assert mlflow.tracking.fluent._get_experiment_id() == exp.experiment_id
    assert mlflow.get_experiment_by_name("wine").experiment_id == exp.experiment_id
    with mlflow.start_run() as run:
        assert run.info.experiment_id == exp.experiment_id
    other = mlflow.set_experiment("another")
    assert other.experiment_id != exp.experiment_id
    assert mlflow.set_experiment("wine").experiment_id == exp.experiment_id  # found, not made


def test_set_experiment_by_id_and_unknown_id(mlflow: ModuleType) -> None:
    exp_id = mlflow.create_experiment("by-id")
    assert mlflow.set_experiment(experiment_id=exp_id).name == "by-id"
    with pytest.raises(mlflow.exceptions.MlflowException, match="No Experiment with id=-1337") as e:
        mlflow.set_experiment(experiment_id="-1337")
    assert _error_code(e.value) == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow.tracking.fluent._get_experiment_id() == exp_id  # unchanged


@pytest.mark.parametrize("args", [(), (None,), (None, None), ("name", "id")])
def test_set_experiment_needs_exactly_one(mlflow: ModuleType, args: tuple[str | None, ...]) -> None:
    with pytest.raises(mlflow.exceptions.MlflowException, match="Must specify exactly one") as e:
        mlflow.set_experiment(*args)
    assert _error_code(e.value) == "INVALID_PARAMETER_VALUE"


def test_set_deleted_experiment_fails(mlflow: ModuleType) -> None:
    exp_id = mlflow.create_experiment("dead")
    mlflow.MlflowClient().delete_experiment(exp_id)
    for call in (
        lambda: mlflow.set_experiment("dead"),
        lambda: mlflow.set_experiment(None, exp_id),
    ):
        with pytest.raises(
            mlflow.exceptions.MlflowException, match="Cannot set a deleted experiment"
        ) as e:
            call()
        assert _error_code(e.value) == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("name", [None, ""])
def test_create_experiment_bad_names(mlflow: ModuleType, name: str | None) -> None:
    with pytest.raises(
        mlflow.exceptions.MlflowException, match=f"Invalid experiment name: '{name}'"
    ):
        mlflow.create_experiment(name)


@pytest.mark.parametrize("name", [123, 0, -1.2, [], ["A"], {1: 2}])
def test_create_experiment_bad_name_types(mlflow: ModuleType, name: object) -> None:
    with pytest.raises(mlflow.exceptions.MlflowException, match="Expects a string"):
        mlflow.create_experiment(name)


def test_create_experiment_duplicate_name_even_when_deleted(mlflow: ModuleType) -> None:
    exp_id = mlflow.create_experiment("popular_name")
    with pytest.raises(mlflow.exceptions.MlflowException, match="already exists") as e:
        mlflow.create_experiment("popular_name")
    assert _error_code(e.value) == "RESOURCE_ALREADY_EXISTS"
    mlflow.MlflowClient().delete_experiment(exp_id)
    with pytest.raises(mlflow.exceptions.MlflowException, match="already exists"):
        mlflow.create_experiment("popular_name")


def test_get_experiment_by_name_missing_is_none(mlflow: ModuleType) -> None:
    assert mlflow.get_experiment_by_name("nope") is None


def test_experiment_id_from_environment(
    mlflow: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    fluent = mlflow.tracking.fluent
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    exp_id = fluent._get_experiment_id()  # created when missing
    assert mlflow.get_experiment_by_name("from-env").experiment_id == exp_id
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "12345")
    with pytest.raises(mlflow.exceptions.MlflowException, match="does not match the experiment id"):
        fluent._get_experiment_id()
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")
    with pytest.raises(mlflow.exceptions.MlflowException, match="does not exist in the tracking"):
        fluent._get_experiment_id()
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", exp_id)
    assert fluent._get_experiment_id() == exp_id


def test_experiment_tags(mlflow: ModuleType) -> None:
    exp = mlflow.set_experiment("tagged")
    assert mlflow.get_experiment(exp.experiment_id).tags == {}
    mlflow.set_experiment_tag("a", 1)
    mlflow.set_experiment_tags({"b": "x", "c": True})
    assert mlflow.get_experiment(exp.experiment_id).tags == {"a": "1", "b": "x", "c": "True"}
    mlflow.delete_experiment_tag("a")
    assert mlflow.get_experiment(exp.experiment_id).tags == {"b": "x", "c": "True"}


def test_set_experiment_is_exported_to_subprocesses(mlflow: ModuleType, repo: Path) -> None:
    exp = mlflow.set_experiment("inherit")
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ['MLFLOW_EXPERIMENT_ID'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == exp.experiment_id


def test_set_experiment_from_two_threads_gives_one_experiment(mlflow: ModuleType) -> None:
    ids: list[str] = []

    def work() -> None:
        ids.append(mlflow.set_experiment("race").experiment_id)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1


# -- starting and ending runs ----------------------------------------------------------------
def test_run_info_fields(mlflow: ModuleType) -> None:
    mlflow.set_experiment("fields")
    with mlflow.start_run(run_name="first") as run:
        info = run.info
        assert info.status == "RUNNING"
        assert info.run_name == "first"
        assert info.end_time is None
        assert info.lifecycle_stage == "active"
        assert info.run_id == info.run_uuid if hasattr(info, "run_uuid") else True
        persisted = mlflow.MlflowClient().get_run(info.run_id)
        assert persisted.info == info
    done = mlflow.get_run(info.run_id).info
    assert done.status == "FINISHED"
    assert done.start_time <= done.end_time
    assert done.artifact_uri == info.artifact_uri


def test_context_manager_marks_failed_and_reraises(mlflow: ModuleType) -> None:
    with pytest.raises(ValueError, match="boom"), mlflow.start_run() as run:
        raise ValueError("boom")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_start_run_while_active_needs_nested(mlflow: ModuleType) -> None:
    with mlflow.start_run():
        with pytest.raises(Exception, match=r"Run with UUID .+ is already active") as e:
            mlflow.start_run()
        assert "To start a nested run" in str(e.value)


@pytest.mark.parametrize("bad", [("a", "b"), {"a", "b"}, ["a", "b"], {"a": 1}, [], (), {}])
def test_start_run_invalid_experiment_id(mlflow: ModuleType, bad: object) -> None:
    with pytest.raises(mlflow.exceptions.MlflowException, match="Invalid experiment id: "):
        mlflow.start_run(experiment_id=bad)


def test_nested_runs_carry_the_parent(mlflow: ModuleType) -> None:
    with (
        mlflow.start_run() as parent,
        mlflow.start_run(nested=True) as child,
        mlflow.start_run(nested=True) as grandchild,
    ):
        pass
    client = mlflow.MlflowClient()
    assert client.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert (
        client.get_run(grandchild.info.run_id).data.tags["mlflow.parentRunId"] == child.info.run_id
    )
    assert mlflow.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id
    assert mlflow.get_parent_run(parent.info.run_id) is None


def test_start_run_with_parent_run_id(mlflow: ModuleType) -> None:
    with mlflow.start_run() as parent:
        pass
    with mlflow.start_run(parent_run_id=parent.info.run_id) as child:
        pass
    assert mlflow.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id
    with (
        mlflow.start_run() as active,
        pytest.raises(
            mlflow.exceptions.MlflowException, match=f"Current run with UUID {active.info.run_id}"
        ),
    ):
        mlflow.start_run(nested=True, parent_run_id="hello")


def test_tags_and_description(mlflow: ModuleType) -> None:
    with mlflow.start_run(tags={"team": "ml", "n": 7}, description="baseline") as run:
        pass
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["team"] == "ml"
    assert tags["n"] == "7"
    assert tags["mlflow.note.content"] == "baseline"
    assert "mlflow.user" in tags
    assert "mlflow.source.name" in tags
    with pytest.raises(mlflow.exceptions.MlflowException, match="Description is already set"):
        mlflow.start_run(tags={"mlflow.note.content": "a"}, description="b")


def test_user_tags_override_context_tags(mlflow: ModuleType) -> None:
    with mlflow.start_run(tags={"mlflow.user": "user_override"}) as run:
        pass
    got = mlflow.get_run(run.info.run_id)
    assert got.data.tags["mlflow.user"] == "user_override"
    assert got.info.user_id == "user_override"


def test_end_run_without_run_is_a_no_op(mlflow: ModuleType) -> None:
    assert mlflow.end_run() is None


def test_end_run_with_unknown_status(mlflow: ModuleType) -> None:
    mlflow.start_run()
    with pytest.raises(Exception, match="Could not get run status corresponding to string BOGUS"):
        mlflow.end_run("BOGUS")
    # xp checks the status before ending anything, so the run can still be ended properly
    # (MLflow pops it first and leaves it RUNNING in the store).
    if mlflow.__name__ == "xp.mlflow":
        assert mlflow.active_run() is not None
        mlflow.end_run("KILLED")


def test_end_run_killed_and_failed(mlflow: ModuleType) -> None:
    for status in ("KILLED", "FAILED", "FINISHED"):
        run = mlflow.start_run()
        mlflow.end_run(status)
        assert mlflow.get_run(run.info.run_id).info.status == status


def test_end_run_inside_nested_context_managers(mlflow: ModuleType) -> None:
    with mlflow.start_run() as parent:
        with mlflow.start_run(nested=True) as child:
            mlflow.end_run("FAILED")
            assert mlflow.active_run().info.run_id == parent.info.run_id
        assert mlflow.get_run(child.info.run_id).info.status == "FAILED"
        assert mlflow.get_run(parent.info.run_id).info.status == "RUNNING"
    assert mlflow.get_run(parent.info.run_id).info.status == "FINISHED"


def test_active_run_is_per_thread(mlflow: ModuleType) -> None:
    seen: list[object] = []
    with mlflow.start_run() as run:
        assert mlflow.active_run().info.run_id == run.info.run_id
        t = threading.Thread(target=lambda: seen.append(mlflow.active_run()))
        t.start()
        t.join()
    assert seen == [None]
    assert mlflow.active_run() is None


def test_last_active_run(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run:
        assert mlflow.last_active_run().info.run_id == run.info.run_id
        mlflow.log_metric("a", 1.0)
        mlflow.log_param("b", 2)
    last = mlflow.last_active_run()
    assert last.info.run_id == run.info.run_id
    assert last.data.metrics == {"a": 1.0}
    assert last.data.params == {"b": "2"}


def test_logging_without_a_run_starts_one(mlflow: ModuleType) -> None:
    mlflow.log_param("p", 1)
    mlflow.log_metric("m", 2)
    run_id = mlflow.active_run().info.run_id
    mlflow.end_run()
    assert mlflow.active_run() is None
    got = mlflow.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"p": "1"}


# -- continuing a run (resume) -----------------------------------------------------------------
def test_start_existing_run_status_and_end_time(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 1.0, step=0)
    first = mlflow.get_run(run.info.run_id).info
    assert first.status == "FINISHED"
    time.sleep(0.01)
    with mlflow.start_run(run_id=run.info.run_id, tags={"resumed": "yes"}) as again:
        assert mlflow.get_run(run.info.run_id).info.status == "RUNNING"
        mlflow.log_metric("loss", 0.5, step=1)
    second = mlflow.get_run(run.info.run_id)
    assert again.info.run_id == run.info.run_id
    assert second.info.status == "FINISHED"
    assert second.info.end_time > first.end_time
    assert second.info.start_time == first.start_time
    assert second.data.tags["resumed"] == "yes"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5)]


def test_start_run_from_environment_run_id(
    mlflow: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mlflow.start_run() as run:
        pass
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    with mlflow.start_run() as again:
        assert again.info.run_id == run.info.run_id
        with pytest.raises(Exception, match="To start a nested run"):
            mlflow.start_run()
    assert "MLFLOW_RUN_ID" not in os.environ  # used once


def test_start_run_from_environment_in_other_experiment(
    mlflow: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mlflow.start_run() as run:
        pass
    mlflow.set_experiment("elsewhere")
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    with pytest.raises(
        mlflow.exceptions.MlflowException, match="does not match environment run ID"
    ):
        mlflow.start_run()


def test_start_deleted_run(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run:
        pass
    mlflow.MlflowClient().delete_run(run.info.run_id)
    with pytest.raises(
        mlflow.exceptions.MlflowException, match="because it is in the deleted state"
    ):
        mlflow.start_run(run_id=run.info.run_id)
    assert mlflow.active_run() is None


def test_runs_are_ended_by_run_id(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run:
        mlflow.end_run()
        mlflow.start_run(run_id=run.info.run_id)
    assert mlflow.active_run() is None
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"


def test_resume_adds_a_commit_on_top(mlflow: ModuleType, repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("a", 1)
    ref = f"refs/xp/runs/{run.info.run_id}"
    before = git(repo, "rev-parse", ref).strip()
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_param("a", 1)  # same value: fine
        mlflow.log_param("b", 2)
    after = git(repo, "rev-parse", ref).strip()
    assert git(repo, "rev-parse", f"{after}^").strip() == before  # a fast-forward
    assert mlflow.get_run(run.info.run_id).data.params == {"a": "1", "b": "2"}


# -- params, metrics, tags ------------------------------------------------------------------------
def test_log_param_returns_the_value_and_stores_text(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run:
        assert mlflow.log_param("nested/nested/name", 5) == 5
        mlflow.log_param("name_1", "a")
        mlflow.log_params({"c": 0.5, "none": None, "flag": True, "a:b": "colon"})
    assert mlflow.get_run(run.info.run_id).data.params == {
        "name_1": "a",
        "nested/nested/name": "5",
        "c": "0.5",
        "none": "None",
        "flag": "True",
        "a:b": "colon",
    }


def test_changing_a_param_fails(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("a", "1")
        mlflow.log_param("a", 1)  # the same text
        with pytest.raises(
            mlflow.exceptions.MlflowException,
            match=r"Changing param values is not allowed\. Param with key='a' was already logged",
        ) as e:
            mlflow.log_param("a", "2")
        assert _error_code(e.value) == "INVALID_PARAMETER_VALUE"
        with pytest.raises(mlflow.exceptions.MlflowException, match="Changing param values"):
            mlflow.log_params({"a": "3", "b": "4"})
    assert mlflow.get_run(run.info.run_id).data.params["a"] == "1"


def test_log_metric_step_timestamp_and_latest_value(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run, mock.patch("time.time", return_value=123):
        mlflow.log_metric("name_1", 25)
        mlflow.log_metric("name_2", -3)
        mlflow.log_metric("name_1", 30, 5)
        mlflow.log_metric("name_1", 40, -2)
        mlflow.log_metric("nested/nested/name", 40)
    finished = mlflow.get_run(run.info.run_id)
    # the latest value is the one at the highest step
    assert finished.data.metrics == {"name_1": 30, "name_2": -3, "nested/nested/name": 40}
    client = mlflow.MlflowClient()
    history = {
        (m.value, m.timestamp, m.step) for m in client.get_metric_history(run.info.run_id, "name_1")
    }
    assert history == {(25, 123000, 0), (30, 123000, 5), (40, 123000, -2)}
    history2 = {
        (m.value, m.timestamp, m.step) for m in client.get_metric_history(run.info.run_id, "name_2")
    }
    assert history2 == {(-3, 123000, 0)}


def test_metric_timestamps_lie_within_the_run(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("name_1", 25)
        mlflow.log_metric("name_1", 30)
    info = mlflow.get_run(run.info.run_id).info
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "name_1")
    assert len(history) == 2
    assert all(info.start_time <= m.timestamp <= info.end_time for m in history)


@pytest.mark.parametrize("step", [None, -10, 5])
def test_log_metrics_share_one_timestamp_and_step(mlflow: ModuleType, step: int | None) -> None:
    expected = {"name_1": 30, "name_2": -3, "nested/nested/name": 40}
    with mlflow.start_run() as run:
        mlflow.log_metrics(expected, step=step)
    finished = mlflow.get_run(run.info.run_id)
    assert finished.data.metrics == expected
    objs = finished.data._metric_objs
    assert {m.timestamp for m in objs} == {objs[0].timestamp}
    assert {m.step for m in objs} == {step or 0}


def test_log_metric_explicit_timestamp(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.5, step=3, timestamp=1700000000123)
    (point,) = mlflow.MlflowClient().get_metric_history(run.info.run_id, "m")
    assert (point.value, point.timestamp, point.step) == (1.5, 1700000000123, 3)


def test_log_metric_validation(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run:
        with pytest.raises(
            mlflow.exceptions.MlflowException,
            match="Invalid value \"apple\" for parameter 'value' supplied",
        ) as e:
            mlflow.log_metric("name_1", "apple")
        assert _error_code(e.value) == "INVALID_PARAMETER_VALUE"
        assert "Please specify value as a valid double" in str(e.value)
        with pytest.raises(mlflow.exceptions.MlflowException, match="Names may only contain"):
            mlflow.log_metric("a#b", 1)
        with pytest.raises(
            mlflow.exceptions.MlflowException, match="must not resolve to other names"
        ):
            mlflow.log_metric("../up", 1)
    assert mlflow.get_run(run.info.run_id).data.metrics == {}


def test_nan_and_numpy_metrics(mlflow: ModuleType) -> None:
    import numpy as np

    with mlflow.start_run() as run:
        mlflow.log_metric("nan", float("nan"))
        mlflow.log_metric("np", np.float32(0.5))
        mlflow.log_metric("int", np.int64(3))
    metrics = mlflow.get_run(run.info.run_id).data.metrics
    assert metrics["nan"] != metrics["nan"]
    assert metrics["np"] == 0.5
    assert metrics["int"] == 3.0


def test_set_tags_and_delete_tag(mlflow: ModuleType) -> None:
    mlflow.set_tag("auto", "started")  # starts a run, as any log call does
    run_id = mlflow.active_run().info.run_id
    mlflow.set_tags({"name_1": "c", "name_2": "b", "nested/nested/name": 5})
    mlflow.delete_tag("auto")
    with pytest.raises(mlflow.exceptions.MlflowException, match="No tag with name"):
        mlflow.delete_tag("auto")
    with pytest.raises(mlflow.exceptions.MlflowException, match="No tag with name"):
        mlflow.delete_tag("never-set")
    mlflow.end_run()
    tags = mlflow.get_run(run_id).data.tags
    assert {k: tags[k] for k in ("name_1", "name_2", "nested/nested/name")} == {
        "name_1": "c",
        "name_2": "b",
        "nested/nested/name": "5",
    }
    assert "auto" not in tags


def test_renaming_through_the_run_name_tag(mlflow: ModuleType) -> None:
    with mlflow.start_run(run_name="old") as run:
        mlflow.set_tag("mlflow.runName", "new")
    got = mlflow.get_run(run.info.run_id)
    assert got.info.run_name == "new"
    assert got.data.tags["mlflow.runName"] == "new"


def test_async_logging_returns_a_finished_operation(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0, synchronous=False).wait()
        mlflow.log_param("p", "x", synchronous=False).wait()
        mlflow.set_tag("t", "y", synchronous=False).wait()
        mlflow.flush_async_logging()
    got = mlflow.get_run(run.info.run_id).data
    assert got.metrics == {"m": 1.0}
    assert got.params == {"p": "x"}
    assert got.tags["t"] == "y"


def test_integrations_log_into_the_active_mlflow_run(xpmlflow: ModuleType) -> None:
    """After ``mlflow.autolog()``, a framework integration's session (what XGBoost, LightGBM
    and CatBoost training log through) uses the run ``mlflow.start_run()`` made, and does not
    end it; without one it makes its own."""
    from xp.integrations.common import Session

    xpmlflow.autolog(exclude_flavors=["sklearn"])
    try:
        with xpmlflow.start_run() as run:
            session = Session("xgboost", name="xgboost")
            session.log_params({"max_depth": 2})
            session.log_metrics({"train-rmse": 0.5}, 3)
            session.end()
            assert not session.owned
            assert xpmlflow.active_run() is not None
        alone = Session("xgboost", name="xgboost")
        alone.log_metrics({"train-rmse": 0.25}, 0)
        assert alone.owned
        alone.end()
    finally:
        xpmlflow.autolog(disable=True)
    got = xpmlflow.get_run(run.info.run_id)
    assert got.data.metrics == {"train-rmse": 0.5}
    assert got.data.params == {"max_depth": "2"}
    assert len(xpmlflow.search_runs(output_format="list")) == 2
