"""What only ``xp.mlflow`` does: refusing what it cannot do in one line, staying cheap to
import, and recording ordinary xp runs (git commits) that the rest of xp sees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import git, invoke


@pytest.mark.parametrize(
    ("call", "alternative"),
    [
        (lambda m: m.pytorch.log_model, "save the model with pytorch's own API"),
        (lambda m: m.tensorflow, "log the file with log_artifact"),
        (lambda m: m.trace, "tracing is not supported; log inputs and outputs"),
        (lambda m: m.start_span("x"), "tracing is not supported"),
        (lambda m: m.deployments.get_deploy_client("x"), "deployments are not supported"),
        (lambda m: m.evaluate(None), "compute the metrics yourself"),
        (lambda m: m.register_model("runs:/x/model", "name"), "xp model register"),
        (lambda m: m.MlflowClient().create_registered_model("name"), "xp model register"),
        (lambda m: m.MlflowClient().search_traces(["0"]), "tracing is not supported"),
        (lambda m: m.models.serve, "model serving is not supported"),
        (lambda m: m.pyfunc.spark_udf(None, "x"), "load the model with"),
        (lambda m: m.projects.run("."), "xp run"),
        (lambda m: m.set_tracking_uri("http://tracking.example:5000"), "MLFLOW_TRACKING_URI=xp:"),
        (lambda m: m.pyfunc.load_model("models:/wine/3"), "registered model name"),
    ],
)
def test_what_xp_cannot_do_is_one_line(
    xpmlflow: ModuleType, call: object, alternative: str
) -> None:
    with pytest.raises(xpmlflow.exceptions.MlflowException) as e:
        call(xpmlflow)  # type: ignore[operator]
    message = str(e.value)
    assert "\n" not in message
    assert alternative in message
    assert e.value.error_code in ("NOT_IMPLEMENTED", "INVALID_PARAMETER_VALUE")


def test_unknown_names_are_attribute_errors(xpmlflow: ModuleType) -> None:
    assert not hasattr(xpmlflow, "no_such_function")
    assert hasattr(xpmlflow, "sklearn")


def test_local_tracking_uris_are_accepted(xpmlflow: ModuleType, repo: Path) -> None:
    for uri in ("file:./mlruns", "sqlite:///mlflow.db", "./mlruns", f"xp:{repo}"):
        xpmlflow.set_tracking_uri(uri)
        assert xpmlflow.get_tracking_uri() == uri
    with xpmlflow.start_run() as run:
        xpmlflow.log_metric("m", 1)
    assert git(repo, "rev-parse", "--verify", "-q", f"refs/xp/runs/{run.info.run_id}")
    assert not (repo / "mlruns").exists()
    assert not (repo / "mlflow.db").exists()


def test_import_is_cheap() -> None:
    code = (
        "import sys, xp.mlflow as m; m.entities.Run; m.tracking.MlflowClient;"
        " print(sorted(x for x in ('pandas', 'numpy', 'mlflow', 'dulwich', 'yaml', 'fsspec',"
        " 'sklearn') if x in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_runs_are_xp_runs(xpmlflow: ModuleType, repo: Path) -> None:
    mlflow = xpmlflow
    mlflow.set_experiment("wine")
    with mlflow.start_run(run_name="en-0.5", description="baseline") as run:
        mlflow.log_params({"alpha": 0.5, "solver": "adam", "n": 3})
        mlflow.log_metric("rmse", 0.78)
        mlflow.set_tag("stage", "dev")
    run_id = run.info.run_id
    ref = f"refs/xp/runs/{run_id}"
    params = git(repo, "show", f"{ref}:.xp/run/params.yaml")
    assert params == "alpha: 0.5\nn: 3\nsolver: adam\n"  # typed, as xp keeps params
    assert git(repo, "show", f"{ref}:.xp/run/tags.yaml") == "stage: dev\n"  # no system tags
    assert git(repo, "show", f"{ref}:.xp/run/series/rmse.tsv").startswith(
        "step\tvalue\ttimestamp\n0\t0.78\t"
    )
    meta = git(repo, "show", f"{ref}:.xp/run/meta.yaml")
    assert "experiment: wine\n" in meta
    assert "name: en-0.5\n" in meta
    assert "message: baseline\n" in meta
    result = invoke("show", "--format", "json", "--experiment", "wine")
    assert result.exit_code == 0, result.output
    assert run_id in result.stdout
    assert "en-0.5" in result.stdout


def test_xp_runs_are_mlflow_runs(xpmlflow: ModuleType, repo: Path) -> None:
    import xp

    with (
        xp.start_run(name="native", experiment="wine", params={"lr": 0.1}) as parent,
        xp.start_run(nested=True, experiment="wine"),
    ):
        xp.log_metric("loss", 0.5)
    exp = xpmlflow.get_experiment_by_name("wine")
    runs = xpmlflow.search_runs([exp.experiment_id], output_format="list")
    assert {r.info.run_id for r in runs} >= {parent.id}
    child = next(r for r in runs if r.info.run_id != parent.id)
    assert child.data.tags["mlflow.parentRunId"] == parent.id
    assert xpmlflow.get_run(parent.id).data.params == {"lr": "0.1"}


def test_crashed_runs_show_as_failed(xpmlflow: ModuleType, repo: Path) -> None:
    script = repo / "die.py"
    script.write_text(
        "import os, time, xp.mlflow as mlflow\n"
        "run = mlflow.start_run()\n"
        "mlflow.log_metric('m', 1)\n"
        "print(run.info.run_id, flush=True)\n"
        "time.sleep(1.5)  # the journal is flushed twice a second\n"
        "os._exit(9)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=repo)
    run_id = out.stdout.strip()
    got = xpmlflow.get_run(run_id)  # recovers the dead run's journal first
    assert got.info.status == "FAILED"


def test_experiment_rename_keeps_its_runs(xpmlflow: ModuleType, repo: Path) -> None:
    exp = xpmlflow.set_experiment("old-name")
    with xpmlflow.start_run():
        pass
    client = xpmlflow.MlflowClient()
    client.rename_experiment(exp.experiment_id, "new-name")
    assert client.get_experiment(exp.experiment_id).name == "new-name"
    assert xpmlflow.get_experiment_by_name("old-name") is None
    xpmlflow.set_experiment("new-name")
    with xpmlflow.start_run():
        pass
    assert len(client.search_runs([exp.experiment_id])) == 2
    assert (
        git(repo, "log", "--format=%s", "refs/xp/experiments")
        .splitlines()[0]
        .startswith("xp: rename")
    )


def test_experiment_ids_agree_across_clones(
    xpmlflow: ModuleType, repo: Path, tmp_path: Path
) -> None:
    """Ids come from names, so two clones that never talked give "wine" the same id."""
    mine = xpmlflow.set_experiment("wine").experiment_id
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    (other / "a.txt").write_text("a\n")
    git(other, "add", ".")
    git(other, "commit", "-qm", "init")
    code = "import xp.mlflow as m; print(m.set_experiment('wine').experiment_id)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=other, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == mine
