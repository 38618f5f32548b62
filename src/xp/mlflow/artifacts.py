"""``mlflow.artifacts``: download, list and read artifacts by URI or by run.

URIs understood: ``runs:/<run id>/<path>``, ``models:/<model id>`` (a model logged with
``xp.mlflow``), the ``xp-artifacts:...`` URIs runs report, and local paths (``file://``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from xp.errors import MlflowException
from xp.interop.mlflow_entities import FileInfo
from xp.mlflow.tracking import _uri

if TYPE_CHECKING:
    from xp.interop.mlflow_runs import Backend


def locate(uri: str, tracking_uri: str | None = None) -> tuple[Backend, str, str] | Path:
    """(backend, run id, path in the run) of a run artifact URI, or the local path."""
    from xp.interop.mlflow_runs import ARTIFACT_SCHEME, parse_artifact_uri

    parsed = urlparse(uri)
    scheme = parsed.scheme
    backend = _uri.backend(tracking_uri)
    if scheme == "runs":
        parts = (parsed.netloc + parsed.path).strip("/").split("/", 1)
        if not parts[0]:
            raise MlflowException(f"Not a proper runs:/ URI: {uri}", "INVALID_PARAMETER_VALUE")
        return backend, parts[0], parts[1] if len(parts) > 1 else ""
    if scheme == "models":
        model_id = (parsed.netloc + parsed.path).strip("/")
        if "/" in model_id or "@" in model_id or not model_id.startswith("m-"):
            raise MlflowException(
                f"{uri}: xp.mlflow resolves models:/<model id> of models it logged; a"
                " registered model name needs the MLflow model registry, which xp does not"
                " have (use runs:/<run_id>/<path>, or xp's registry: `xp model get`)",
                "NOT_IMPLEMENTED",
            )
        model = backend.get_logged_model(model_id)
        _top, run_id, path = parse_artifact_uri(model.artifact_location)
        assert run_id is not None
        return backend, run_id, path
    if scheme == ARTIFACT_SCHEME or uri.startswith(f"{ARTIFACT_SCHEME}:"):
        top, run_id, path = parse_artifact_uri(uri)
        if run_id is None:
            raise MlflowException(f"{uri} names no run", "INVALID_PARAMETER_VALUE")
        here = _uri.backend(f"xp:{top}")
        return here, run_id, path
    if scheme in ("", "file") or len(scheme) == 1:
        return Path(parsed.path if scheme == "file" else uri)
    raise MlflowException(
        f"xp.mlflow cannot read artifacts at {uri!r}; use runs:/<run_id>/<path> or a local path",
        "INVALID_PARAMETER_VALUE",
    )


def _check_arguments(artifact_uri: str | None, run_id: str | None, path: str | None) -> None:
    """MLflow's refusals, in its words: one of the two, and a path only with a run."""
    if (artifact_uri is None) == (run_id is None):
        raise MlflowException(
            "Exactly one of `run_id` or `artifact_uri` must be specified",
            "INVALID_PARAMETER_VALUE",
        )
    if artifact_uri is not None and path is not None:
        raise MlflowException(
            "`artifact_path` cannot be specified if `artifact_uri` is specified",
            "INVALID_PARAMETER_VALUE",
        )


def download_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    dst_path: str | None = None,
    tracking_uri: str | None = None,
) -> str:
    """The local path of the artifact (file or folder) asked for, copied below
    ``dst_path`` (a new temporary folder by default)."""
    _check_arguments(artifact_uri, run_id, artifact_path)
    if run_id is not None:
        return _download_leaf(_uri.backend(tracking_uri), run_id, artifact_path or "", dst_path)
    assert artifact_uri is not None
    found = locate(artifact_uri, tracking_uri)
    if isinstance(found, Path):
        if dst_path is None:
            return str(found)
        dst = Path(dst_path) / found.name
        if found.is_dir():
            shutil.copytree(found, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found, dst)
        return str(dst)
    backend, rid, path = found
    return _download_leaf(backend, rid, path, dst_path)


def _download_leaf(backend: Backend, run_id: str, path: str, dst_path: str | None) -> str:
    """MLflow's placement: ``runs:/<id>/a/b.txt`` lands at ``<dst>/b.txt``, not ``a/b.txt``."""
    folder, _, _leaf = path.strip("/").rpartition("/")
    if not folder:
        return backend.download_artifacts(run_id, path or None, dst_path)
    staging = tempfile.mkdtemp(prefix="xp-mlflow-download-")
    try:
        got = Path(backend.download_artifacts(run_id, path, staging))
        dst = Path(dst_path or tempfile.mkdtemp(prefix="xp-mlflow-")) / got.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if got.is_dir():
            shutil.copytree(got, dst, dirs_exist_ok=True)
        else:
            shutil.copyfile(got, dst)
        return str(dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def list_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
) -> list[FileInfo]:
    _check_arguments(artifact_uri, run_id, artifact_path)
    if run_id is not None:
        return _uri.backend(tracking_uri).list_artifacts(run_id, artifact_path)
    assert artifact_uri is not None
    found = locate(artifact_uri, tracking_uri)
    if isinstance(found, Path):
        if not found.is_dir():
            return []
        return [
            FileInfo(p.name, p.is_dir(), None if p.is_dir() else p.stat().st_size)
            for p in sorted(found.iterdir())
        ]
    backend, rid, path = found
    return backend.list_artifacts(rid, path or None)


def _read(artifact_uri: str) -> bytes:
    found = locate(artifact_uri)
    if isinstance(found, Path):
        return found.read_bytes()
    backend, rid, path = found
    return backend.read_artifact(rid, path)


def load_text(artifact_uri: str) -> str:
    try:
        return _read(artifact_uri).decode("utf-8")
    except UnicodeDecodeError:
        raise MlflowException(  # MLflow's words
            f"Artifact {artifact_uri!r} is not valid UTF-8. To read a file in another encoding,"
            " download it with `mlflow.artifacts.download_artifacts` and open it with the"
            " correct `encoding`.",
            "BAD_REQUEST",
        ) from None


def load_dict(artifact_uri: str) -> Any:
    import json

    text = load_text(artifact_uri)
    try:
        return json.loads(text)
    except ValueError:
        import yaml

        try:  # log_dict writes YAML for a .yaml/.yml path: read that too
            return yaml.safe_load(text)
        except yaml.YAMLError:
            raise MlflowException(
                "Unable to form a JSON object from file content", "BAD_REQUEST"
            ) from None


def load_image(artifact_uri: str) -> Any:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(_read(artifact_uri)))


def local_copy(uri: str, dst_path: str | None = None) -> str:
    """A local folder or file with the contents of ``uri`` (downloaded when remote)."""
    found = locate(uri)
    if isinstance(found, Path):
        if not found.exists():
            raise MlflowException(f"No such file or directory: {uri}", "RESOURCE_DOES_NOT_EXIST")
        return str(found)
    backend, rid, path = found
    dst = dst_path or tempfile.mkdtemp(prefix="xp-mlflow-model-")
    return backend.download_artifacts(rid, path or None, dst)


__all__ = ["download_artifacts", "list_artifacts", "load_dict", "load_image", "load_text"]
