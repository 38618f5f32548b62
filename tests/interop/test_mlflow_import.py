"""``xp import mlflow``: stores built by real MLflow (``./mlruns``, sqlite, a tracking server)
imported and compared value by value; imported twice, nothing doubles; a run that changed in
MLflow is brought up to date; damaged stores give one line each."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import git, invoke, spawned, user_error, wait_for

MAKE_STORE = textwrap.dedent(
    """
    import sys, time
    import numpy as np, pandas as pd
    import mlflow
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("wine")
    client = MlflowClient()
    with mlflow.start_run(run_name="parent", description="the note") as parent:
        mlflow.log_params({"lr": 0.01, "opt": "adam", "none": None})
        for i in range(5):
            mlflow.log_metric("loss", 1 / (i + 1), step=i, timestamp=1700000000000 + i)
        mlflow.log_metric("single", 3.5)
        mlflow.log_metric("weird", float("nan"))
        mlflow.log_metric("big", float("inf"))
        mlflow.set_tags({"team": "ml", "nested/key": "v"})
        mlflow.log_dict({"a": 1}, "cfg/conf.json")
        mlflow.log_text("hello", "notes/hello.txt")
        with mlflow.start_run(run_name="child", nested=True):
            mlflow.log_metric("m", 1.0, step=3)
        data = mlflow.data.from_pandas(pd.DataFrame({"a": [1, 2]}), source="d.csv")
        mlflow.log_input(data, context="train")
        model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
        mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
    with mlflow.start_run(run_name="killed"):
        mlflow.log_metric("x", 1)
        mlflow.end_run("KILLED")
    wine = mlflow.get_experiment_by_name("wine").experiment_id
    open_run = client.create_run(wine, run_name="open")
    client.log_metric(open_run.info.run_id, "progress", 1.0, step=0)
    deleted = client.create_run("0", run_name="gone")
    client.set_terminated(deleted.info.run_id)
    client.delete_run(deleted.info.run_id)
    print(open_run.info.run_id)
    """
)

FINISH_OPEN = textwrap.dedent(
    """
    import sys
    from mlflow import MlflowClient
    client = MlflowClient(sys.argv[1])
    client.log_metric(sys.argv[2], "progress", 2.0, step=1)
    client.set_terminated(sys.argv[2], "FINISHED")
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", MLFLOW_ALLOW_FILE_STORE="true")
    return env


def _make(repo: Path, uri: str) -> str:
    script = repo / "make_store.py"
    script.write_text(MAKE_STORE)
    out = subprocess.run(
        [sys.executable, str(script), uri], capture_output=True, text=True, env=_env(), cwd=repo
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def _source_runs(uri: str) -> list[dict[str, Any]]:
    """Every run of the store as real MLflow reports it (metric histories included)."""
    code = textwrap.dedent(
        """
        import json, sys
        from mlflow import MlflowClient
        from mlflow.entities import ViewType
        c = MlflowClient(sys.argv[1])
        exps = {e.experiment_id: e.name for e in c.search_experiments(view_type=ViewType.ALL)}
        out = []
        for run in c.search_runs(list(exps), run_view_type=ViewType.ALL, max_results=1000):
            i, d = run.info, run.data
            out.append({
                "run_id": i.run_id, "name": i.run_name, "status": i.status, "user": i.user_id,
                "start": i.start_time, "end": i.end_time, "stage": i.lifecycle_stage,
                "experiment": exps[i.experiment_id], "params": d.params, "tags": d.tags,
                "metrics": {k: repr(v) for k, v in d.metrics.items()},
                "history": {
                    k: [[m.step, repr(m.value), m.timestamp]
                        for m in c.get_metric_history(i.run_id, k)]
                    for k in d.metrics
                },
                "datasets": [
                    [x.dataset.name, x.dataset.digest, x.dataset.source]
                    for x in run.inputs.dataset_inputs
                ],
                "artifacts": sorted(f.path for f in _walk(c, i.run_id, None)),
            })
        print(json.dumps(out))
        """
    ).replace(
        "import json, sys",
        "import json, sys\n"
        "def _walk(c, run_id, path):\n"
        "    for f in c.list_artifacts(run_id, path):\n"
        "        if f.is_dir:\n"
        "            yield from _walk(c, run_id, f.path)\n"
        "        else:\n"
        "            yield f\n",
    )
    out = subprocess.run(
        [sys.executable, "-c", code, uri], capture_output=True, text=True, env=_env()
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def _compare(source: list[dict[str, Any]]) -> None:
    """Each MLflow run, as xp.mlflow shows its imported copy, has every value it had."""
    import xp.mlflow as mlflow
    from xp import format as fmt

    by_mlflow = {r["run_id"]: fmt.derived_run_id(r["start"], r["run_id"]) for r in source}
    client = mlflow.MlflowClient()
    for r in source:
        got = client.get_run(by_mlflow[r["run_id"]])
        info, data = got.info, got.data
        status = r["status"] if r["status"] != "RUNNING" else "FAILED"  # never ended: crashed
        assert (info.run_name, info.status, info.start_time) == (r["name"], status, r["start"])
        if r["end"] is not None:
            assert info.end_time == r["end"]
        assert info.user_id == r["user"]
        assert info.lifecycle_stage == r["stage"]
        assert mlflow.get_experiment(info.experiment_id).name == r["experiment"]
        assert data.params == r["params"]
        for key, value in r["tags"].items():
            if key == "mlflow.parentRunId":
                assert data.tags[key] == by_mlflow[value]
            elif key != "mlflow.log-model.history":
                assert data.tags[key] == value, key
        for key, points in r["history"].items():
            mine = [
                [m.step, repr(m.value), m.timestamp]
                for m in client.get_metric_history(info.run_id, key)
            ]
            assert sorted(mine) == sorted(points), key
        assert {k: repr(v) for k, v in data.metrics.items()} == r["metrics"]
        mine_datasets = [
            [d.dataset.name, d.dataset.digest, d.dataset.source] for d in got.inputs.dataset_inputs
        ]
        assert mine_datasets == r["datasets"]
        files = set(_walk(client, info.run_id, None))
        assert set(r["artifacts"]) <= files


def _walk(client: Any, run_id: str, path: str | None) -> Iterator[str]:
    for f in client.list_artifacts(run_id, path):
        if f.is_dir:
            yield from _walk(client, run_id, f.path)
        else:
            yield f.path


def _run_refs(repo: Path) -> list[str]:
    return sorted(
        git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/xp/").splitlines()
    )


@pytest.mark.framework
@pytest.mark.parametrize("kind", ["mlruns", "sqlite"])
def test_import_a_real_store_and_again(
    repo: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = str(repo / "mlruns") if kind == "mlruns" else f"sqlite:///{repo / 'mlflow.db'}"
    open_id = _make(repo, uri)
    source = _source_runs(uri)
    assert len(source) == 5
    result = invoke("import", "mlflow", uri)
    assert result.exit_code == 0, result.output
    assert "5 runs in 2 experiments: 5 imported" in result.stdout
    _compare(source)
    import xp.mlflow as mlflow

    imported = mlflow.search_runs(experiment_names=["wine"], output_format="list")
    parent = next(r for r in imported if r.info.run_name == "parent").info.run_id
    files = {f.path for f in mlflow.MlflowClient().list_artifacts(parent)}
    assert {"cfg", "notes", "model"} <= files
    loaded = mlflow.pyfunc.load_model(f"runs:/{parent}/model")
    assert list(loaded.predict([[0.0], [1.0]])) == [0, 1]

    before = _run_refs(repo)
    again = invoke("import", "mlflow", uri)
    assert again.exit_code == 0, again.output
    assert "0 imported, 0 updated, 5 unchanged" in again.stdout
    assert _run_refs(repo) == before  # nothing doubles, nothing moves

    # the open run ends in MLflow: importing again continues its xp run (a fast-forward)
    finish = repo / "finish.py"
    finish.write_text(FINISH_OPEN)
    done = subprocess.run(
        [sys.executable, str(finish), uri, open_id],
        env=_env(),
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    third = invoke("import", "mlflow", uri)
    assert "0 imported, 1 updated, 4 unchanged" in third.stdout, third.output
    _compare(_source_runs(uri))


@pytest.mark.framework
@pytest.mark.slow
def test_import_from_a_tracking_server(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "server.db"
    _make(tmp_path, f"sqlite:///{db}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow_cli = str(Path(sys.executable).parent / "mlflow")
    command = [
        mlflow_cli,
        "server",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with spawned(
        command, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ):
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            import urllib.request

            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(up, "the MLflow server", timeout=120)
        result = invoke("import", "mlflow", base)
        assert result.exit_code == 0, result.output
        assert "5 imported" in result.stdout
        _compare(_source_runs(base))
        assert "0 imported, 0 updated, 5 unchanged" in invoke("import", "mlflow", base).stdout


def test_import_a_handmade_file_store(repo: Path) -> None:
    """The file store format, written by hand (no MLflow needed), with a 5-field metric line
    and a nested param key; every value lands."""
    root = repo / "mlruns"
    exp = root / "1"
    run = exp / "0123456789abcdef0123456789abcdef"
    for folder in (
        exp / "tags",
        run / "params" / "model",
        run / "tags",
        run / "metrics",
        run / "artifacts" / "d",
    ):
        folder.mkdir(parents=True)
    (root / "0").mkdir()
    (root / "0" / "meta.yaml").write_text(
        "experiment_id: '0'\nname: Default\nlifecycle_stage: active\n"
    )
    (exp / "meta.yaml").write_text("experiment_id: '1'\nname: demo\nlifecycle_stage: active\n")
    (exp / "tags" / "owner").write_text("me")
    (run / "meta.yaml").write_text(
        "run_id: 0123456789abcdef0123456789abcdef\nexperiment_id: '1'\nrun_name: hand\n"
        "status: 3\nstart_time: 1700000000000\nend_time: 1700000005000\nuser_id: alice\n"
        "lifecycle_stage: active\nartifact_uri: ''\n"
    )
    (run / "params" / "model" / "depth").write_text("3")
    (run / "tags" / "mlflow.runName").write_text("hand")
    (run / "metrics" / "loss").write_text(
        "1700000001000 0.5 0\n1700000002000 0.25 1\n1700000003000 0.125 2 ds 1a2b3c4d\n"
    )
    (run / "metrics" / "legacy").write_text("1700000001000 7.0\n")
    (run / "artifacts" / "d" / "f.txt").write_text("file\n")
    result = invoke("import", "mlflow", "./mlruns")
    assert result.exit_code == 0, result.output
    assert "1 runs in 2 experiments: 1 imported" in result.stdout
    import xp.mlflow as mlflow
    from xp import format as fmt

    run_id = fmt.derived_run_id(1700000000000, "0123456789abcdef0123456789abcdef")
    got = mlflow.get_run(run_id)
    assert (got.info.run_name, got.info.status, got.info.user_id) == ("hand", "FINISHED", "alice")
    assert (got.info.start_time, got.info.end_time) == (1700000000000, 1700000005000)
    assert got.data.params == {"model/depth": "3"}
    history = mlflow.MlflowClient().get_metric_history(run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (0, 0.5, 1700000001000),
        (1, 0.25, 1700000002000),
        (2, 0.125, 1700000003000),
    ]
    assert [
        (m.step, m.value) for m in mlflow.MlflowClient().get_metric_history(run_id, "legacy")
    ] == [(0, 7.0)]
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/d/f.txt") == "file\n"
    assert mlflow.get_experiment_by_name("demo").tags == {"owner": "me"}
    meta = git(repo, "show", f"refs/xp/runs/{run_id}:.xp/run/meta.yaml")
    assert "imported:\n  digest: " in meta
    assert "run_id: 0123456789abcdef0123456789abcdef" in meta
    assert (
        git(repo, "log", "--format=%P", "-1", f"refs/xp/runs/{run_id}").strip() == ""
    )  # no code known


def test_damaged_stores_give_one_line(repo: Path) -> None:
    (repo / "not-a-db.db").write_text("hello")
    assert "is not a readable SQLite database" in user_error(
        invoke("import", "mlflow", "sqlite:///not-a-db.db")
    )
    assert "does not exist" in user_error(invoke("import", "mlflow", "sqlite:///missing.db"))
    assert "no MLflow store here" in user_error(invoke("import", "mlflow"))
    (repo / "empty").mkdir()
    assert "holds no MLflow experiment" in user_error(invoke("import", "mlflow", "./empty"))
    assert "cannot reach the MLflow server" in user_error(
        invoke("import", "mlflow", "http://127.0.0.1:9")
    )
    assert "cannot read MLflow store" in user_error(invoke("import", "mlflow", "postgresql://db/x"))
    bad = repo / "mlruns" / "1"
    bad.mkdir(parents=True)
    (bad / "meta.yaml").write_text("experiment_id: '1'\nname: demo\n")
    broken = bad / "ffffffffffffffffffffffffffffffff"
    (broken / "metrics").mkdir(parents=True)
    (broken / "meta.yaml").write_text("run_id: ffffffffffffffffffffffffffffffff\n: [unclosed\n")
    result = invoke("import", "mlflow", "./mlruns")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert "ffffffffffffffffffffffffffffffff" in lines[0]
    assert lines[1] == "xp: error: 1 runs could not be imported (see above)"
    assert "Traceback" not in result.output
    assert "no experiment 'nope'" in user_error(
        invoke("import", "mlflow", "./mlruns", "-e", "nope")
    )
