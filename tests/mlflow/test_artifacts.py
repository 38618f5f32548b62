"""``mlflow.artifacts``: reading artifacts by URI (``runs:/``, ``models:/``, the run's
``artifact_uri``, a local path), and MLflow's refusals in MLflow's words."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"artifact_uri": "runs:/abc/x", "run_id": "abc"},
        {"artifact_uri": "runs:/abc", "artifact_path": "x"},
    ],
)
@pytest.mark.parametrize("function", ["download_artifacts", "list_artifacts"])
def test_arguments_are_checked_as_mlflow_does(
    mlflow: ModuleType, function: str, kwargs: dict[str, str]
) -> None:
    with pytest.raises(mlflow.exceptions.MlflowException) as e:
        getattr(mlflow.artifacts, function)(**kwargs)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    if "artifact_path" in kwargs:
        assert e.value.message == (
            "`artifact_path` cannot be specified if `artifact_uri` is specified"
        )
    else:
        assert e.value.message == "Exactly one of `run_id` or `artifact_uri` must be specified"


def test_load_text_and_dict_by_uri(mlflow: ModuleType, tmp_path: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "notes/hello.txt")
        mlflow.log_dict({"lr": 0.1, "layers": [1, 2]}, "cfg/config.json")
        mlflow.log_text("not: [valid", "cfg/broken.json")
        bad = tmp_path / "latin1.txt"
        bad.write_bytes("café".encode("latin-1"))
        mlflow.log_artifact(str(bad), "notes")
    uri = mlflow.get_run(run.info.run_id).info.artifact_uri
    assert mlflow.artifacts.load_text(f"{uri}/notes/hello.txt") == "hello"
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/hello.txt") == "hello"
    assert mlflow.artifacts.load_dict(f"{uri}/cfg/config.json") == {"lr": 0.1, "layers": [1, 2]}
    with pytest.raises(mlflow.exceptions.MlflowException) as e:
        mlflow.artifacts.load_dict(f"{uri}/cfg/broken.json")
    assert e.value.message == "Unable to form a JSON object from file content"
    assert e.value.error_code == "BAD_REQUEST"
    with pytest.raises(mlflow.exceptions.MlflowException, match="is not valid UTF-8") as e:
        mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/latin1.txt")
    assert e.value.error_code == "BAD_REQUEST"
    listed = mlflow.artifacts.list_artifacts(run_id=run.info.run_id, artifact_path="cfg")
    assert [(f.path, f.is_dir) for f in listed] == [
        ("cfg/broken.json", False),
        ("cfg/config.json", False),
    ]
    got = mlflow.artifacts.download_artifacts(
        artifact_uri=f"runs:/{run.info.run_id}/notes/hello.txt", dst_path=str(tmp_path / "dl")
    )
    assert Path(got).read_text() == "hello"
    assert Path(got).parent == tmp_path / "dl"


def test_yaml_written_by_log_dict_loads_back(xpmlflow: ModuleType) -> None:
    with xpmlflow.start_run() as run:
        xpmlflow.log_dict({"k": ["a", "b"]}, "cfg/params.yaml")
    loaded = xpmlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/cfg/params.yaml")
    assert loaded == {"k": ["a", "b"]}


def test_local_paths_are_read_in_place_or_copied(xpmlflow: ModuleType, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.json").write_text('{"a": 1}')
    (src / "sub" / "b.txt").write_text("b")
    arts = xpmlflow.artifacts
    # no dst_path: the local path itself, as MLflow's local repository does
    assert arts.download_artifacts(artifact_uri=str(src / "a.json")) == str(src / "a.json")
    assert arts.download_artifacts(artifact_uri=f"file://{src}") == str(src)
    dst = tmp_path / "dst" / "deeper"
    copied = Path(arts.download_artifacts(artifact_uri=str(src / "a.json"), dst_path=str(dst)))
    assert copied == dst / "a.json"
    assert copied.read_text() == '{"a": 1}'
    folder = Path(arts.download_artifacts(artifact_uri=str(src), dst_path=str(dst)))
    assert folder == dst / "src"
    assert (folder / "sub" / "b.txt").read_text() == "b"
    listed = arts.list_artifacts(artifact_uri=str(src))
    assert [(f.path, f.is_dir, f.file_size) for f in listed] == [
        ("a.json", False, 8),
        ("sub", True, None),
    ]
    assert arts.list_artifacts(artifact_uri=str(src / "a.json")) == []
    assert arts.load_dict(str(src / "a.json")) == {"a": 1}
    assert arts.load_text(f"file://{src}/sub/b.txt") == "b"


@pytest.mark.parametrize(
    ("uri", "code", "said"),
    [
        ("runs:/", "INVALID_PARAMETER_VALUE", "Not a proper runs:/ URI: runs:/"),
        ("models:/wine/3", "NOT_IMPLEMENTED", "xp's registry"),
        ("models:/wine@champion", "NOT_IMPLEMENTED", "runs:/<run_id>/<path>"),
        ("s3://bucket/key", "INVALID_PARAMETER_VALUE", "cannot read artifacts at 's3://"),
        ("xp-artifacts:/nowhere", "INVALID_PARAMETER_VALUE", "is not an xp artifact URI"),
    ],
)
def test_uris_xp_cannot_read_are_one_line(
    xpmlflow: ModuleType, uri: str, code: str, said: str
) -> None:
    with pytest.raises(xpmlflow.exceptions.MlflowException) as e:
        xpmlflow.artifacts.load_text(uri)
    assert e.value.error_code == code
    assert said in e.value.message
    assert "\n" not in e.value.message


def test_a_missing_local_model_is_named(xpmlflow: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(xpmlflow.exceptions.MlflowException) as e:
        xpmlflow.pyfunc.load_model(str(tmp_path / "no-model"))
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "no-model" in e.value.message


def test_images_queued_before_end_run_are_in_the_run_when_it_returns(
    mlflow: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow logs ``log_image(key=, step=)`` from a queue thread that ``end_run`` does not
    wait for; xp's store waits for it, so the run's commit holds every image (CI once saw
    the last one fail on the closed journal)."""
    import time

    import numpy as np

    if mlflow.__name__ == "mlflow":  # the plugin: a slow store keeps the queue busy
        from xp.plugins.mlflow_artifacts import XpArtifactRepository

        real = XpArtifactRepository.log_artifact

        def slow(self: XpArtifactRepository, *args: str | None) -> None:
            time.sleep(0.02)
            real(self, *args)

        monkeypatch.setattr(XpArtifactRepository, "log_artifact", slow)
    with mlflow.start_run() as run:
        for step in range(20):
            mlflow.log_image(np.full((4, 4), step / 20), key="masks", step=step)
    client = mlflow.MlflowClient()
    images = [f.path for f in client.list_artifacts(run.info.run_id, "images")]
    assert len([p for p in images if p.endswith(".png")]) == 20
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_a_file_logged_while_another_thread_ends_the_run_lands_in_it(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backend lets one thread at a time end a run or log a file to it: the end waits
    for the file being hashed, instead of closing the journal under it."""
    import threading
    import time

    import xp
    from xp.artifacts import cache
    from xp.interop.mlflow_runs import backend_for

    backend = backend_for(repo)
    run = backend.create_run("0", run_name="race")
    real = cache.add_bytes
    ender = threading.Thread(target=backend.update_run_info, args=(run.id, "FINISHED"))

    def slow(where: Path, data: bytes, announce: object) -> str:
        ender.start()
        time.sleep(0.3)  # without the lock the other thread ends the run meanwhile
        return real(where, data, announce)  # type: ignore[arg-type]

    monkeypatch.setattr(cache, "add_bytes", slow)
    backend.log_bytes(run.id, b"late", "late.txt")
    ender.join()
    monkeypatch.setattr(cache, "add_bytes", real)
    got = xp.get_run(run.id)
    assert [a.path for a in got.artifacts] == ["late.txt"]
    assert got.status == "finished"
