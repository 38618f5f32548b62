"""``MlflowClient`` and artifacts, with MLflow's expectations, through ``xp.mlflow`` and through
MLflow over the plugin (see conftest.py)."""

from __future__ import annotations

import filecmp
import json
import os
import time
from pathlib import Path
from types import ModuleType

import pytest


def test_client_lifecycle(mlflow: ModuleType) -> None:
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("manual", tags={"owner": "me"})
    assert client.get_experiment(exp_id).tags == {"owner": "me"}
    run = client.create_run(exp_id, run_name="by-hand", tags={"k": "v"})
    run_id = run.info.run_id
    assert run.info.status == "RUNNING"
    assert run.info.run_name == "by-hand"
    assert run.info.end_time is None
    client.log_metric(run_id, "m", 1.0, timestamp=1700000000000, step=3)
    assert client.log_param(run_id, "p", "x") == "x"
    client.set_tag(run_id, "t", "y")
    client.set_terminated(run_id, "KILLED")
    got = client.get_run(run_id)
    assert got.info.status == "KILLED"
    assert got.info.end_time is not None
    assert got.info.experiment_id == exp_id
    assert got.data.params == {"p": "x"}
    assert {k: got.data.tags[k] for k in ("k", "t")} == {"k": "v", "t": "y"}
    (point,) = client.get_metric_history(run_id, "m")
    assert (point.key, point.value, point.timestamp, point.step) == ("m", 1.0, 1700000000000, 3)
    assert client.get_metric_history(run_id, "nope") == []


def test_client_logs_to_an_ended_run(mlflow: ModuleType, repo: Path) -> None:
    """MLflow allows logging to a FINISHED run; xp continues it (a commit on top)."""
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        pass
    client.log_metric(run.info.run_id, "late", 2.0)
    got = client.get_run(run.info.run_id)
    assert got.data.metrics == {"late": 2.0}
    assert got.info.status == "FINISHED"


def test_unknown_status_is_one_line(mlflow: ModuleType) -> None:
    client = mlflow.MlflowClient()
    run = client.create_run("0")
    with pytest.raises(
        Exception, match="Could not get run status corresponding to string DONE"
    ) as e:
        client.set_terminated(run.info.run_id, "DONE")
    assert "\n" not in str(e.value)
    client.set_terminated(run.info.run_id, "FINISHED")
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_update_run_and_rename(mlflow: ModuleType) -> None:
    client = mlflow.MlflowClient()
    run = client.create_run("0")
    client.update_run(run.info.run_id, name="renamed")
    assert client.get_run(run.info.run_id).info.run_name == "renamed"
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_log_batch(mlflow: ModuleType) -> None:
    entities = mlflow.entities
    t = int(time.time() * 1000)
    metrics = [entities.Metric("metric-key0", 1.0, t, 0), entities.Metric("metric-key1", 4.0, t, 1)]
    params = [
        entities.Param("param-key0", "param-val0"),
        entities.Param("param-key1", "param-val1"),
    ]
    tags = [entities.RunTag("tag-key0", "tag-val0"), entities.RunTag("tag-key1", "tag-val1")]
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
    got = client.get_run(run.info.run_id)
    assert got.data.metrics == {"metric-key0": 1.0, "metric-key1": 4.0}
    assert got.data.params == {"param-key0": "param-val0", "param-key1": "param-val1"}
    history = client.get_metric_history(run.info.run_id, "metric-key1")
    assert {(m.value, m.timestamp, m.step) for m in history} == {(4.0, t, 1)}
    before = len(got.data.tags)
    client.log_batch(
        run.info.run_id,
        tags=[entities.RunTag(k, v) for k, v in {"1": "2", "3": "4", "5": "6"}.items()],
    )
    assert len(client.get_run(run.info.run_id).data.tags) == before + 3


def test_log_batch_with_many_elements(mlflow: ModuleType) -> None:
    entities = mlflow.entities
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        client.log_batch(
            run.info.run_id,
            metrics=[entities.Metric(f"m{i}", float(i), 0, 0) for i in range(2000)],
            params=[entities.Param(f"p{i}", str(i)) for i in range(200)],
            tags=[entities.RunTag(f"t{i}", str(i)) for i in range(200)],
        )
    got = client.get_run(run.info.run_id).data
    assert len(got.metrics) == 2000
    assert len(got.params) == 200
    assert all(f"t{i}" in got.tags for i in range(200))


def test_log_batch_duplicate_params(mlflow: ModuleType) -> None:
    entities = mlflow.entities
    with (
        mlflow.start_run() as run,
        pytest.raises(
            mlflow.exceptions.MlflowException, match="Duplicate parameter keys have been submitted"
        ),
    ):
        mlflow.MlflowClient().log_batch(
            run.info.run_id, params=[entities.Param("a", "1"), entities.Param("a", "2")]
        )


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("metric-name", "Invalid value \"../bad/metric/name\" for parameter 'metrics[0].name'"),
        ("metric-value", "for parameter 'metrics[0].value' supplied"),
        ("metric-timestamp", "for parameter 'metrics[0].timestamp' supplied"),
        ("metric-none", "Metric name cannot be None. A key name must be provided."),
        ("param-key", "for parameter 'params[0].key' supplied"),
        ("tag-key", "for parameter 'tags[0].key' supplied"),
    ],
)
def test_log_batch_validates_names_and_values(mlflow: ModuleType, kind: str, message: str) -> None:
    entities = mlflow.entities
    batch: dict[str, list[object]] = {
        "metric-name": [entities.Metric("../bad/metric/name", 1.0, 0, 0)],
        "metric-value": [entities.Metric("ok", "apple", 0, 0)],
        "metric-timestamp": [entities.Metric("ok", 1.0, "bad", 0)],
        "metric-none": [entities.Metric(None, 1.0, 0, 0)],
        "param-key": [entities.Param("../bad", "v")],
        "tag-key": [entities.RunTag("../bad", "v")],
    }
    what = {"metric": "metrics", "param": "params", "tag": "tags"}[kind.split("-")[0]]
    with mlflow.start_run() as run, pytest.raises(mlflow.exceptions.MlflowException) as e:
        mlflow.MlflowClient().log_batch(run.info.run_id, **{what: batch[kind]})
    assert message in str(e.value)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_get_run_of_unknown_id(mlflow: ModuleType) -> None:
    with pytest.raises(mlflow.exceptions.MlflowException, match="not found") as e:
        mlflow.MlflowClient().get_run("0123456789abcdefghjkmnpqrs")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_delete_and_restore_run(mlflow: ModuleType) -> None:
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        pass
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(mlflow.exceptions.MlflowException, match="must be in the 'active' state"):
        client.log_param(run.info.run_id, "a", "1")
    client.restore_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"


# -- artifacts --------------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """Files outside the repository, as MLflow scripts usually log them."""
    src = tmp_path / "outside"
    (src / "dir" / "sub").mkdir(parents=True)
    (src / "dir" / "f.txt").write_text("f\n")
    (src / "dir" / "sub" / "g.txt").write_text("g\n")
    (src / "report.txt").write_text("report\n")
    return src


@pytest.mark.parametrize("parent", [None, "some_parent", "parent/and_child"])
def test_log_artifact_files_and_folders(
    mlflow: ModuleType, files: Path, tmp_path: Path, parent: str | None
) -> None:
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(files / "report.txt"), parent)
        mlflow.log_artifact(str(files / "dir"), parent)  # a folder keeps its name
    out = Path(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "dl"))
    )
    base = f"{parent}/" if parent else ""
    assert _tree(out) == {
        f"{base}report.txt": "report\n",
        f"{base}dir/f.txt": "f\n",
        f"{base}dir/sub/g.txt": "g\n",
    }


@pytest.mark.parametrize("parent", [None, "out"])
def test_log_artifacts_copies_the_contents(
    mlflow: ModuleType, files: Path, tmp_path: Path, parent: str | None
) -> None:
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(files / "dir"), parent)
    client = mlflow.MlflowClient()
    dl = Path(client.download_artifacts(run.info.run_id, parent or "", str(tmp_path / "dl")))
    assert not filecmp.dircmp(str(files / "dir"), str(dl)).diff_files
    assert _tree(dl) == _tree(files / "dir")


def test_list_artifacts(mlflow: ModuleType, files: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(files / "report.txt"))
        mlflow.log_artifacts(str(files / "dir"), "model")
    client = mlflow.MlflowClient()
    top = client.list_artifacts(run.info.run_id)
    assert [(f.path, f.is_dir) for f in top] == [("model", True), ("report.txt", False)]
    assert top[1].file_size == len("report\n")
    inner = client.list_artifacts(run.info.run_id, "model")
    assert [(f.path, f.is_dir) for f in inner] == [("model/f.txt", False), ("model/sub", True)]


@pytest.mark.parametrize("subdir", [None, ".", "dir", "dir1/dir2", "dir/.."])
def test_log_text_paths(mlflow: ModuleType, subdir: str | None) -> None:
    filename = "file.txt"
    path = filename if subdir is None else os.path.join(subdir, filename)
    with mlflow.start_run() as run:
        mlflow.log_text("a", path)
    folder = os.path.normpath(subdir) if subdir else None
    folder = None if folder == "." else folder
    listed = mlflow.MlflowClient().list_artifacts(run.info.run_id, folder)
    expected = os.path.normpath(path)
    assert [f.path for f in listed] == [expected]
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/{expected}") == "a"


@pytest.mark.parametrize("name", ["d.json", "d.yml", "d.yaml", "d.txt", "d"])
def test_log_dict(mlflow: ModuleType, name: str, tmp_path: Path) -> None:
    import yaml

    data = {"k": ["a", "b", "c"], "n": {"x": 1}}
    with mlflow.start_run() as run:
        mlflow.log_dict(data, name)
    path = mlflow.MlflowClient().download_artifacts(run.info.run_id, name, str(tmp_path))
    text = Path(path).read_text()
    loaded = yaml.safe_load(text) if name.endswith((".yml", ".yaml")) else json.loads(text)
    assert loaded == data


def test_get_artifact_uri(mlflow: ModuleType) -> None:
    with mlflow.start_run() as run:
        assert mlflow.get_artifact_uri() == run.info.artifact_uri
        assert mlflow.get_artifact_uri("model") == run.info.artifact_uri + "/model"
        assert mlflow.get_artifact_uri("/model") == run.info.artifact_uri + "/model"
        mlflow.log_text("hello", "notes/hello.txt")
    listed = mlflow.artifacts.list_artifacts(
        artifact_uri=mlflow.get_run(run.info.run_id).info.artifact_uri + "/notes"
    )
    assert [f.path for f in listed] == ["notes/hello.txt"] or [f.path for f in listed] == [
        "hello.txt"
    ]


def test_log_table_appends_and_load_table(mlflow: ModuleType) -> None:
    import pandas as pd

    with mlflow.start_run() as run:
        with pytest.raises(
            mlflow.exceptions.MlflowException,
            match=r"data must be a pandas\.DataFrame or a dictionary",
        ):
            mlflow.log_table([1, 2], "t.json")
        mlflow.log_table({"q": ["a"], "score": [1.0]}, "tables/t.json")
        mlflow.log_table(pd.DataFrame({"q": ["b"], "score": [2.0]}), "tables/t.json")
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert json.loads(tags["mlflow.loggedArtifacts"]) == [
        {"path": "tables/t.json", "type": "table"}
    ]
    table = mlflow.load_table("tables/t.json", run_ids=[run.info.run_id], extra_columns=["run_id"])
    assert table["q"].tolist() == ["a", "b"]
    assert table["run_id"].tolist() == [run.info.run_id] * 2
    with pytest.raises(KeyError):
        mlflow.load_table("tables/t.json", run_ids=[run.info.run_id], extra_columns=["nope"])


def test_log_figure_and_image(mlflow: ModuleType) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    with mlflow.start_run() as run:
        mlflow.log_figure(fig, "plots/line.png")
        mlflow.log_image(np.zeros((4, 5, 3), dtype=np.uint8), "img/black.png")
        mlflow.log_image(np.ones((4, 5)), key="masks", step=2)
    plt.close(fig)
    client = mlflow.MlflowClient()
    assert [f.path for f in client.list_artifacts(run.info.run_id, "plots")] == ["plots/line.png"]
    image = mlflow.artifacts.load_image(f"runs:/{run.info.run_id}/img/black.png")
    assert image.size == (5, 4)
    series = [f.path for f in client.list_artifacts(run.info.run_id, "images")]
    assert any(
        p.startswith("images/masks+step+2+timestamp+") and p.endswith(".png") for p in series
    )


def test_log_input_dataset(mlflow: ModuleType, tmp_path: Path) -> None:
    import pandas as pd

    df = pd.DataFrame([[1, 2, 3], [1, 2, 3]], columns=["a", "b", "c"])
    path = str(tmp_path / "temp.csv")
    dataset = mlflow.data.from_pandas(df, source=path)
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, "train", tags={"foo": "baz"})
    (logged,) = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert logged.dataset.name == "dataset"
    assert logged.dataset.digest == "f0f3e026"
    assert logged.dataset.source_type == "local"
    assert json.loads(logged.dataset.source) == {"uri": path}
    assert json.loads(logged.dataset.schema) == {
        "mlflow_colspec": [
            {"name": "a", "type": "long", "required": True},
            {"name": "b", "type": "long", "required": True},
            {"name": "c", "type": "long", "required": True},
        ]
    }
    assert json.loads(logged.dataset.profile) == {"num_rows": 2, "num_elements": 6}
    assert {t.key: t.value for t in logged.tags} == {"foo": "baz", "mlflow.data.context": "train"}
    found = mlflow.search_runs(filter_string="datasets.context = 'train'", output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_experiment_rename_delete_restore(mlflow: ModuleType) -> None:
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("before")
    client.rename_experiment(exp_id, "after")
    assert client.get_experiment(exp_id).name == "after"
    assert client.get_experiment_by_name("before") is None
    assert client.get_experiment_by_name("after").experiment_id == exp_id
    with pytest.raises(mlflow.exceptions.MlflowException) as e:
        client.rename_experiment(exp_id, "Default")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    client.set_experiment_tag(exp_id, "owner", "me")
    client.delete_experiment_tag(exp_id, "owner")
    assert client.get_experiment(exp_id).tags == {}
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    active = {e.name for e in client.search_experiments()}
    deleted = {
        e.name for e in client.search_experiments(view_type=mlflow.entities.ViewType.DELETED_ONLY)
    }
    assert "after" not in active
    assert "after" in deleted
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.create_run(exp_id)  # MLflow: no runs in a deleted experiment
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    run = client.create_run(exp_id)
    assert run.info.experiment_id == exp_id


def test_logged_model_lifecycle(mlflow: ModuleType) -> None:
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("models")
    run = client.create_run(exp_id)
    model = client.create_logged_model(
        exp_id,
        name="clf",
        source_run_id=run.info.run_id,
        tags={"stage": "dev"},
        params={"depth": "3"},
        model_type="sklearn",
    )
    assert model.model_id.startswith("m-")
    assert (model.name, model.source_run_id, model.tags, model.params) == (
        "clf",
        run.info.run_id,
        {"stage": "dev"},
        {"depth": "3"},
    )
    client.set_logged_model_tags(model.model_id, {"owner": "me", "stage": "prod"})
    client.delete_logged_model_tag(model.model_id, "owner")
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.delete_logged_model_tag(model.model_id, "owner")
    client.finalize_logged_model(model.model_id, "READY")
    got = client.get_logged_model(model.model_id)
    assert got.status != model.status  # PENDING, then READY
    assert got.tags == {"stage": "prod"}
    found = client.search_logged_models([exp_id])
    assert [m.model_id for m in found] == [model.model_id]
    client.delete_logged_model(model.model_id)
    assert list(client.search_logged_models([exp_id])) == []


def test_image_values(mlflow: ModuleType, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image as PILImage

    from_list = mlflow.Image([[[0, 0, 0], [255, 255, 255]]])  # 1 x 2 RGB
    assert from_list.size == (2, 1)
    assert from_list.to_array().tolist() == [[[0, 0, 0], [255, 255, 255]]]
    from_array = mlflow.Image(np.full((3, 4, 3), 7, dtype=np.uint8))
    assert from_array.size == (4, 3)
    assert isinstance(from_array.to_pil(), PILImage.Image)
    bigger = from_array.resize((8, 6))
    assert bigger.size == (8, 6)
    assert int(bigger.to_array()[0, 0, 0]) == 7
    from_pil = mlflow.Image(PILImage.new("RGB", (5, 2), (1, 2, 3)))
    from_pil.save(str(tmp_path / "x.png"))
    with PILImage.open(tmp_path / "x.png") as saved:
        assert saved.size == (5, 2)
    with mlflow.start_run() as run:
        mlflow.log_image(from_pil, "img/pil.png")
        mlflow.log_table({"img": [from_array, from_list], "n": [1, 2]}, "tables/imgs.json")
    client = mlflow.MlflowClient()
    loaded = mlflow.artifacts.load_image(f"runs:/{run.info.run_id}/img/pil.png")
    assert loaded.size == (5, 2)
    assert loaded.getpixel((0, 0)) == (1, 2, 3)
    table = mlflow.load_table("tables/imgs.json", run_ids=[run.info.run_id])
    cells = table["img"].tolist()
    assert [c["type"] for c in cells] == ["image", "image"]
    stored = {f.path for f in client.list_artifacts(run.info.run_id, "table_images/tables/imgs")}
    assert {f"{c['filepath']}" for c in cells} <= stored
    with pytest.raises(ValueError, match="mix of images and non-images"), mlflow.start_run():
        mlflow.log_table({"img": [from_array, 3]}, "tables/mixed.json")
