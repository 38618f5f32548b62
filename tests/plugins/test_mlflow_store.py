"""The MLflow plugins with real MLflow: registered through entry points, scripts under
``MLFLOW_TRACKING_URI=xp:`` recording xp runs, and ``mlflow ui --backend-store-uri xp:``
serving them over HTTP. (The fluent and client expectations run through the plugin in
tests/mlflow/, as the ``plugin`` variant of every test there.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import git, invoke, spawned, wait_for

pytestmark = pytest.mark.framework


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", **extra)
    return env


def test_entry_points_give_the_xp_store_and_repository(repo: Path) -> None:
    code = textwrap.dedent(
        f"""
        import warnings
        warnings.simplefilter("error")
        import mlflow
        from mlflow.tracking._tracking_service.utils import _get_store
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
        store = _get_store("xp:{repo}")
        repo = get_artifact_repository("xp-artifacts:{repo}/.xp/runs/1m8m00000000a0/artifacts")
        print(type(store).__name__, type(repo).__name__)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=repo
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["XpTrackingStore", "XpArtifactRepository"]
    assert "Failure attempting to register" not in out.stderr


def test_scripts_under_the_xp_uri_record_xp_runs(repo: Path) -> None:
    script = repo / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import mlflow
            from sklearn.datasets import load_iris
            from sklearn.linear_model import LogisticRegression

            mlflow.set_experiment("iris")
            mlflow.sklearn.autolog()
            X, y = load_iris(return_X_y=True)
            with mlflow.start_run(run_name="sweep") as parent:
                for c in (0.1, 1.0):
                    with mlflow.start_run(run_name=f"C={c}", nested=True):
                        LogisticRegression(C=c, max_iter=300).fit(X, y)
            print(parent.info.run_id)
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=_env(MLFLOW_TRACKING_URI="xp:"),
        cwd=repo,
    )
    assert out.returncode == 0, out.stderr
    parent = out.stdout.strip().splitlines()[-1]
    result = invoke("show", "--format", "json", "--experiment", "iris", "--limit", "10")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    names = sorted(r["name"] for r in runs)
    assert names == ["C=0.1", "C=1.0", "sweep"]
    children = [r for r in runs if r["name"].startswith("C=")]
    assert all(r["params"]["C"] in ("0.1", "1.0") for r in children)
    assert all("training_score" in r["metrics"] for r in children)
    for child in children:
        meta = git(repo, "show", f"{child['ref']}:.xp/run/meta.yaml")
        assert f"parent: {parent}" in meta
        listed = git(repo, "ls-tree", "-r", "--name-only", child["ref"], ".xp/run")
        assert ".xp/run/models.yaml" in listed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(base: str, path: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        f"{base}/ajax-api/2.0/mlflow/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())  # type: ignore[no-any-return]


def _get(base: str, path: str) -> bytes:
    with urllib.request.urlopen(f"{base}/{path}", timeout=30) as response:
        assert response.status == 200
        return response.read()  # type: ignore[no-any-return]


def test_mlflow_ui_serves_xp_runs(repo: Path, tmp_path: Path) -> None:
    import xp.mlflow as mlflow

    mlflow.set_experiment("ui")
    with mlflow.start_run(run_name="shown") as run:
        mlflow.log_param("lr", 0.1)
        for i in range(3):
            mlflow.log_metric("loss", 1 / (i + 1), step=i)
        mlflow.log_text("hello", "notes/hello.txt")
    exp_id = run.info.experiment_id
    port = _free_port()
    mlflow_cli = str(Path(sys.executable).parent / "mlflow")
    command = [
        mlflow_cli,
        "ui",
        "--backend-store-uri",
        f"xp:{repo}",
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
            try:
                return _get(base, "health") == b"OK"
            except OSError:
                return False

        wait_for(up, "mlflow ui to answer", timeout=120)
        assert b"<html" in _get(base, "").lower()
        experiments = _post(base, "experiments/search", {"max_results": 100})
        assert "ui" in {e["name"] for e in experiments["experiments"]}  # type: ignore[union-attr]
        found = _post(base, "runs/search", {"experiment_ids": [exp_id], "max_results": 100})
        (shown,) = found["runs"]  # type: ignore[misc]
        assert shown["info"]["run_id"] == run.info.run_id
        assert shown["info"]["status"] == "FINISHED"
        assert {"key": "lr", "value": "0.1"} in shown["data"]["params"]
        history = json.loads(
            _get(
                base,
                f"ajax-api/2.0/mlflow/metrics/get-history?run_id={run.info.run_id}&metric_key=loss",
            )
        )
        assert [m["step"] for m in history["metrics"]] == [0, 1, 2]
        listed = json.loads(
            _get(base, f"ajax-api/2.0/mlflow/artifacts/list?run_id={run.info.run_id}&path=notes")
        )
        assert [f["path"] for f in listed["files"]] == ["notes/hello.txt"]
        text = _get(base, f"get-artifact?path=notes/hello.txt&run_uuid={run.info.run_id}")
        assert text == b"hello"
        _post(base, "logged-models/search", {"experiment_ids": [exp_id]})


def test_what_mlflow_s_server_asks_the_store(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The calls MLflow's UI server and model logging make besides the client's: datasets per
    experiment, active experiment ids, traces (none), model outputs of a run."""
    import mlflow
    import pandas as pd
    from mlflow.entities import LoggedModelOutput
    from mlflow.tracking._tracking_service.utils import _get_store

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = f"xp:{repo}"
    mlflow.set_tracking_uri(uri)
    try:
        exp_id = mlflow.create_experiment("data")
        gone = mlflow.create_experiment("gone")
        mlflow.delete_experiment(gone)
        df = pd.DataFrame({"x": [1, 2], "y": [0, 1]})
        dataset = mlflow.data.from_pandas(df, source="data/train.csv", name="train")
        with mlflow.start_run(experiment_id=exp_id) as run:
            mlflow.log_input(dataset, context="training")
            model = mlflow.initialize_logged_model(name="m", experiment_id=exp_id)
        with mlflow.start_run(experiment_id=exp_id):
            mlflow.log_input(dataset, context="training")  # the same dataset: one summary
        store = _get_store(uri)
        (summary,) = store._search_datasets([exp_id])
        assert (summary.name, summary.digest, summary.context) == (
            "train",
            dataset.digest,
            "training",
        )
        assert store.filter_active_experiment_ids([exp_id, gone, "424242"]) == [exp_id]
        assert store.search_traces(experiment_ids=[exp_id]) == ([], None)
        assert store.link_traces_to_run(["tr-1"], run.info.run_id) is None
        store.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, 7)])
        assert store.get_logged_model(model.model_id).model_id == model.model_id
        client = mlflow.MlflowClient()
        client.set_logged_model_tags(model.model_id, {"a": "1", "b": "2"})
        client.delete_logged_model_tag(model.model_id, "a")
        tags = client.get_logged_model(model.model_id).tags
        assert tags["b"] == "2"
        assert "a" not in tags
        client.delete_logged_model(model.model_id)
        assert list(client.search_logged_models(experiment_ids=[exp_id])) == []
    finally:
        mlflow.set_tracking_uri(None)
