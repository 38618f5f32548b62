"""``xp export mlflow``: xp runs into real MLflow stores, value by value; exporting again adds
nothing, and a run continued since is brought up to date in place."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import invoke, user_error


def _read(uri: str) -> dict[str, dict[str, Any]]:
    """The store as real MLflow reports it, by xp run id."""
    code = textwrap.dedent(
        """
        import json, sys
        from mlflow import MlflowClient
        from mlflow.entities import ViewType
        c = MlflowClient(sys.argv[1])
        exps = {e.experiment_id: e.name for e in c.search_experiments(view_type=ViewType.ALL)}
        out = {}
        for run in c.search_runs(list(exps), max_results=1000):
            i, d = run.info, run.data
            out[d.tags["xp.run-id"]] = {
                "mlflow_id": i.run_id, "name": i.run_name, "status": i.status,
                "start": i.start_time, "end": i.end_time, "experiment": exps[i.experiment_id],
                "params": d.params, "tags": d.tags,
                "history": {
                    k: [[m.step, m.value, m.timestamp] for m in c.get_metric_history(i.run_id, k)]
                    for k in d.metrics
                },
                "artifacts": [f.path for f in c.list_artifacts(i.run_id)],
                "datasets": [x.dataset.name for x in run.inputs.dataset_inputs],
            }
        print(json.dumps(out))
        """
    )
    env = {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_ALLOW_FILE_STORE": "true",
    }
    import os

    out = subprocess.run(
        [sys.executable, "-c", code, uri], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.framework
@pytest.mark.parametrize("kind", ["sqlite", "mlruns"])
def test_export_and_again(repo: Path, tmp_path: Path, kind: str) -> None:
    import pandas as pd

    import xp
    import xp.mlflow as mlflow

    mlflow.set_experiment("wine")
    with mlflow.start_run(run_name="parent", description="note") as parent:
        mlflow.log_params({"lr": 0.01, "opt": "adam"})
        for i in range(3):
            mlflow.log_metric("loss", 1 / (i + 1), step=i)
        mlflow.log_text("hello", "notes/hello.txt")
        mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame({"a": [1]}), source="d.csv"), "train")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("m", 2.0)
    with xp.start_run(name="native", params={"depth": 3}) as native:
        xp.log_metric("acc", 0.5)
        xp.log_metric("acc", 0.75)
    uri = f"sqlite:///{tmp_path / 'out.db'}" if kind == "sqlite" else str(tmp_path / "mlruns")

    result = invoke("export", "mlflow", uri)
    assert result.exit_code == 0, result.output
    assert "3 runs: 3 exported, 0 updated, 0 unchanged" in result.stdout
    got = _read(uri)
    p = got[parent.info.run_id]
    assert (p["name"], p["status"], p["experiment"]) == ("parent", "FINISHED", "wine")
    assert p["params"] == {"lr": "0.01", "opt": "adam"}
    assert p["tags"]["mlflow.note.content"] == "note"
    assert [(s, v) for s, v, _t in p["history"]["loss"]] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    source = mlflow.MlflowClient().get_metric_history(parent.info.run_id, "loss")
    assert [t for _s, _v, t in p["history"]["loss"]] == [m.timestamp for m in source]
    assert p["start"] == parent.info.start_time
    assert p["end"] == mlflow.get_run(parent.info.run_id).info.end_time
    assert p["artifacts"] == ["notes"]
    assert p["datasets"] == ["dataset"]
    c = got[child.info.run_id]
    assert c["tags"]["mlflow.parentRunId"] == p["mlflow_id"]  # the exported parent's id
    n = got[native.id]
    assert n["experiment"] == "Default"
    assert n["params"] == {"depth": "3"}
    assert [(s, v) for s, v, _t in n["history"]["acc"]] == [(0, 0.5), (1, 0.75)]

    again = invoke("export", "mlflow", uri)
    assert "0 exported, 0 updated, 3 unchanged" in again.stdout, again.output

    with xp.start_run(resume=native.id):
        xp.log_metric("acc", 0.875)
    third = invoke("export", "mlflow", uri)
    assert "0 exported, 1 updated, 2 unchanged" in third.stdout, third.output
    updated = _read(uri)[native.id]
    assert updated["mlflow_id"] == n["mlflow_id"]  # in place
    assert [(s, v) for s, v, _t in updated["history"]["acc"]] == [(0, 0.5), (1, 0.75), (2, 0.875)]


@pytest.mark.framework
def test_round_trip_mlflow_xp_mlflow(repo: Path, tmp_path: Path) -> None:
    """MLflow -> xp import -> xp export -> MLflow: the same values come out."""
    from tests.interop.test_mlflow_import import _make

    first = f"sqlite:///{tmp_path / 'first.db'}"
    second = f"sqlite:///{tmp_path / 'second.db'}"
    _make(repo, first)
    assert invoke("import", "mlflow", first).exit_code == 0
    assert invoke("export", "mlflow", second).exit_code == 0
    from tests.interop.test_mlflow_import import _source_runs

    before = {r["run_id"]: r for r in _source_runs(first) if r["stage"] == "active"}
    after = _read(second)
    from xp import format as fmt

    for mlflow_id, r in before.items():
        copy = after[fmt.derived_run_id(r["start"], mlflow_id)]
        assert (copy["name"], copy["start"], copy["params"]) == (r["name"], r["start"], r["params"])
        for key, points in r["history"].items():
            assert [[s, repr(v), t] for s, v, t in copy["history"][key]] == points
        for key, value in r["tags"].items():
            if key not in ("mlflow.parentRunId", "mlflow.log-model.history"):
                assert copy["tags"][key] == value


def test_export_to_xp_is_refused(repo: Path) -> None:
    assert "is xp itself" in user_error(invoke("export", "mlflow", "xp:"))


def test_export_without_mlflow_names_the_extra(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    line = user_error(invoke("export", "mlflow", f"sqlite:///{tmp_path / 'x.db'}"))
    assert 'pip install "git-xp[mlflow]"' in line
