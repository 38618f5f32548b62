"""``mlflow.MlflowClient`` over xp runs: MLflow's signatures and semantics, xp's storage.

Every call goes to the backend of the client's repository (``xp.interop.mlflow_runs``), which
writes xp runs; see docs/mlflow.md for where xp differs from MLflow and why.
"""

from __future__ import annotations

import io
import os
import posixpath
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from xp.errors import MlflowException
from xp.interop.mlflow_entities import (
    DatasetInput,
    Experiment,
    FileInfo,
    LoggedModel,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunTag,
    ViewType,
)
from xp.mlflow.tracking import _uri

if TYPE_CHECKING:
    from xp.interop.mlflow_runs import Backend

LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"
LOGGED_IMAGES = "mlflow.loggedImages"

REGISTRY = (
    "xp.mlflow: the MLflow model registry is not supported; reference a model by its run"
    " (runs:/<run_id>/<path>) or register it in xp's registry (`xp model register RUN NAME`)"
)
_REGISTRY_METHODS = {
    "create_registered_model",
    "get_registered_model",
    "rename_registered_model",
    "update_registered_model",
    "delete_registered_model",
    "search_registered_models",
    "create_model_version",
    "get_model_version",
    "update_model_version",
    "delete_model_version",
    "search_model_versions",
    "get_latest_versions",
    "transition_model_version_stage",
    "set_registered_model_alias",
    "delete_registered_model_alias",
    "get_model_version_by_alias",
    "set_registered_model_tag",
    "delete_registered_model_tag",
    "set_model_version_tag",
    "delete_model_version_tag",
    "get_model_version_download_uri",
    "copy_model_version",
}
_TRACING_METHODS = {
    "start_trace",
    "end_trace",
    "start_span",
    "end_span",
    "get_trace",
    "search_traces",
    "delete_traces",
    "set_trace_tag",
    "delete_trace_tag",
    "log_assessment",
}
TRACING = (
    "xp.mlflow: tracing is not supported; log inputs and outputs with log_dict or log_table"
    " (or use MLflow itself with MLFLOW_TRACKING_URI=xp:)"
)


def now_ms() -> int:
    return int(time.time() * 1000)


class RunOperations:
    """What ``synchronous=False`` returns: xp logs synchronously, so it is already done."""

    def wait(self) -> None:
        return None


class MlflowClient:
    """MLflow's client; ``tracking_uri`` chooses the repository (``xp:/path``), or the
    working directory's repository by default."""

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        self._tracking_uri = _uri.check(str(tracking_uri)) if tracking_uri else None
        self._registry_uri = registry_uri

    def __getattr__(self, name: str) -> Any:
        if name in _REGISTRY_METHODS:
            raise MlflowException(REGISTRY, "NOT_IMPLEMENTED")
        if name in _TRACING_METHODS:
            raise MlflowException(TRACING, "NOT_IMPLEMENTED")
        raise AttributeError(f"'MlflowClient' object has no attribute {name!r}")

    @property
    def tracking_uri(self) -> str:
        return self._tracking_uri or _uri.get_tracking_uri()

    @property
    def _backend(self) -> Backend:
        return _uri.backend(self._tracking_uri)

    # -- experiments --------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> str:
        return self._backend.create_experiment(name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._backend.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._backend.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int | None = 1000,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        return self._backend.search_experiments(
            view_type, max_results, filter_string, order_by, page_token
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self._backend.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self._backend.restore_experiment(experiment_id)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._backend.rename_experiment(experiment_id, new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self._backend.set_experiment_tag(experiment_id, key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._backend.delete_experiment_tag(experiment_id, key)

    # -- runs ---------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        run = self._backend.create_run(
            str(experiment_id), start_time=start_time, tags=tags, run_name=run_name
        )
        return self.get_run(run.id)

    def get_run(self, run_id: str) -> Run:
        return self._backend.get_run(run_id)

    def get_parent_run(self, run_id: str) -> Run | None:
        parent = self.get_run(run_id).data.tags.get("mlflow.parentRunId")
        return None if parent is None else self.get_run(parent)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        self._backend.update_run_info(run_id, status, run_name=name)

    def set_terminated(
        self, run_id: str, status: str | None = None, end_time: int | None = None
    ) -> None:
        self._backend.update_run_info(run_id, status or "FINISHED", end_time=end_time)

    def delete_run(self, run_id: str) -> None:
        self._backend.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self._backend.restore_run(run_id)

    def search_runs(
        self,
        experiment_ids: str | int | list[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        if isinstance(experiment_ids, (str, int)):
            experiment_ids = [str(experiment_ids)]
        return self._backend.search_runs(
            experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
        )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self._backend.get_metric_history(run_id, key)

    # -- logging ------------------------------------------------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
        model_id: str | None = None,
    ) -> RunOperations | None:
        metric = Metric(
            key,
            value,
            timestamp if timestamp is not None else now_ms(),
            step if step is not None else 0,
        )
        self._backend.log_batch(run_id, metrics=[metric], single=True)
        return RunOperations() if synchronous is False else None

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        self._backend.log_batch(run_id, params=[Param(key, value)], single=True)
        return RunOperations() if synchronous is False else value

    def set_tag(
        self, run_id: str, key: str, value: Any, synchronous: bool | None = None
    ) -> RunOperations | None:
        self._backend.log_batch(run_id, tags=[RunTag(key, value)], single=True)
        return RunOperations() if synchronous is False else None

    def delete_tag(self, run_id: str, key: str) -> None:
        self._backend.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> RunOperations | None:
        self._backend.log_batch(run_id, list(metrics), list(params), list(tags))
        return RunOperations() if synchronous is False else None

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] | None = None,
        models: Sequence[Any] | None = None,
    ) -> None:
        self._backend.log_inputs(run_id, list(datasets or []))

    # -- artifacts ----------------------------------------------------------------------------
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self._backend.log_artifact(run_id, local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self._backend.log_artifacts(run_id, local_dir, artifact_path)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return self._backend.list_artifacts(run_id, path)

    def download_artifacts(
        self, run_id: str, path: str, dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        return self._backend.download_artifacts(run_id, path, dst_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._backend.log_bytes(run_id, text.encode("utf-8"), artifact_file)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """YAML for ``.yaml``/``.yml``, JSON for anything else, as MLflow writes them."""
        import json

        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.dump(dictionary, indent=2, default_flow_style=False)
        else:
            text = json.dumps(dictionary, indent=2, default=str)
        self.log_text(run_id, text, artifact_file)

    def log_figure(
        self,
        run_id: str,
        figure: Any,
        artifact_file: str,
        *,
        save_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """A matplotlib figure (saved in the file's format) or a plotly figure (``.html``,
        or an image through kaleido)."""
        import tempfile
        from pathlib import Path

        kind = type(figure).__module__.split(".")[0]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, posixpath.basename(artifact_file))
            if kind == "matplotlib":
                figure.savefig(path, **(save_kwargs or {}))
            elif kind == "plotly":
                if artifact_file.endswith(".html"):
                    figure.write_html(path, include_plotlyjs="cdn", auto_open=False)
                else:
                    figure.write_image(path, **(save_kwargs or {}))
            else:
                raise TypeError(f"Unsupported figure object type: '{type(figure)}'")
            self._backend.log_bytes(run_id, Path(path).read_bytes(), artifact_file)

    def log_image(
        self,
        run_id: str,
        image: Any,
        artifact_file: str | None = None,
        key: str | None = None,
        step: int | None = None,
        timestamp: int | None = None,
        synchronous: bool | None = None,
    ) -> None:
        """A numpy array or PIL image as a file, or with ``key`` as one step of an image series
        (``images/<key>+step+<n>+timestamp+<ms>+<uuid>.png`` and a small ``.webp``)."""
        import json
        import uuid

        pil = to_pil_image(image)
        if artifact_file is not None and key is not None:
            raise TypeError("Only one of artifact_file or key can be specified")
        if artifact_file is not None:
            self._backend.log_bytes(run_id, _image_bytes(pil, artifact_file), artifact_file)
            return
        if key is None:
            raise TypeError("Either artifact_file or key must be specified")
        from xp.interop.mlflow_validation import check_name

        check_name(key, "key", "metric")
        step = step or 0
        timestamp = timestamp or now_ms()
        stem = f"images/{key.replace('/', '#')}+step+{step}+timestamp+{timestamp}+{uuid.uuid4()}"
        self._backend.log_bytes(run_id, _image_bytes(pil, "x.png"), stem + ".png")
        small = pil.copy()
        small.thumbnail((256, 256))
        self._backend.log_bytes(run_id, _image_bytes(small, "x.webp"), stem + "+compressed.webp")
        tags = self.get_run(run_id).data.tags
        keys = json.loads(tags.get(LOGGED_IMAGES, "[]"))
        if key not in keys:
            self.set_tag(run_id, LOGGED_IMAGES, json.dumps([*keys, key]))

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """A dict or DataFrame as a JSON (orient "split") or Parquet artifact; a table logged
        again under the same name is appended to, as in MLflow."""
        import json
        import tempfile

        import pandas as pd

        if not artifact_file.endswith((".json", ".parquet")):
            raise ValueError(
                f"Invalid artifact file path '{artifact_file}'. Please ensure the file you are"
                " trying to log as a table has a file name with either '.json' or '.parquet'"
                " extension."
            )
        if not isinstance(data, (pd.DataFrame, dict)):
            raise MlflowException.invalid_parameter_value(
                "data must be a pandas.DataFrame or a dictionary"
            )
        frame = _frame(data)
        frame = self._table_images(run_id, frame, artifact_file)
        norm = posixpath.normpath(artifact_file)
        if any(f.path == norm for f in self.list_artifacts(run_id, posixpath.dirname(norm))):
            with tempfile.TemporaryDirectory() as tmp:
                old = read_table(self.download_artifacts(run_id, norm, tmp))
            frame = pd.concat([old, frame], ignore_index=True)
        buf = io.BytesIO()
        if norm.endswith(".json"):
            frame.to_json(buf, orient="split", index=False, date_format="iso")
        else:
            frame.to_parquet(buf, index=False)
        self._backend.log_bytes(run_id, buf.getvalue(), norm)
        tags = self.get_run(run_id).data.tags
        logged = json.loads(tags.get(LOGGED_ARTIFACTS, "[]"))
        entry = {"path": norm, "type": "table"}
        if entry not in logged:
            self.set_tag(run_id, LOGGED_ARTIFACTS, json.dumps([*logged, entry]))

    def _table_images(self, run_id: str, frame: Any, artifact_file: str) -> Any:
        import uuid

        def is_image(obj: Any) -> bool:
            return all(callable(getattr(obj, a, None)) for a in ("save", "resize")) and hasattr(
                obj, "size"
            )

        for column in frame.columns:
            flags = [is_image(x) for x in frame[column]]
            if any(flags) and not all(flags):
                raise ValueError(
                    f"Column `{column}` contains a mix of images and non-images. Please ensure"
                    " that all elements in the column are of the same type."
                )
            if flags and all(flags):
                stem = posixpath.join("table_images", posixpath.splitext(artifact_file)[0], "{}")

                def save(img: Any, stem: str = stem) -> dict[str, str]:
                    name = stem.format(uuid.uuid4())
                    pil = to_pil_image(img)
                    self._backend.log_bytes(run_id, _image_bytes(pil, "x.png"), name + ".png")
                    small = pil.copy()
                    small.thumbnail((256, 256))
                    self._backend.log_bytes(run_id, _image_bytes(small, "x.webp"), name + ".webp")
                    return {
                        "type": "image",
                        "filepath": name + ".png",
                        "compressed_filepath": name + ".webp",
                    }

                frame[column] = frame[column].map(save)
        return frame

    # -- logged models --------------------------------------------------------------------------
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        return self._backend.create_logged_model(
            experiment_id, name, source_run_id, tags, params, model_type
        )

    def finalize_logged_model(self, model_id: str, status: Any) -> LoggedModel:
        return self._backend.finalize_logged_model(model_id, status)

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        return self._backend.get_logged_model(model_id)

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        return self._backend.search_logged_models(
            experiment_ids, filter_string, max_results, order_by, page_token
        )

    def set_logged_model_tags(self, model_id: str, tags: dict[str, Any]) -> None:
        self._backend.set_logged_model_tags(model_id, tags)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._backend.delete_logged_model_tag(model_id, key)

    def delete_logged_model(self, model_id: str) -> None:
        self._backend.delete_logged_model(model_id)


def _frame(data: Any) -> Any:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data.copy()
    try:
        return pd.DataFrame(data)
    except ValueError:  # all scalars: one row
        return pd.DataFrame([data])


def read_table(path: str) -> Any:
    import json

    import pandas as pd

    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    with open(path) as fh:
        split = json.load(fh)
    return pd.DataFrame(split["data"], columns=split["columns"])


def to_pil_image(image: Any) -> Any:
    """A PIL image from a PIL image, an ``mlflow.Image`` or a numpy array (uint8, or floats
    in [0, 1]; 2-D, or height x width x 1, 3 or 4 channels)."""
    try:
        from PIL import Image
    except ImportError:
        raise MlflowException(
            "log_image needs Pillow, which is not installed; pip install pillow",
            "INVALID_PARAMETER_VALUE",
        ) from None
    if isinstance(image, Image.Image):
        return image
    inner = getattr(image, "image", None)
    if isinstance(inner, Image.Image):
        return inner
    import numpy as np

    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(
            f"Invalid array shape {array.shape}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"
        )
    if array.dtype.kind == "f":
        if array.size and (array.min() < 0 or array.max() > 1):
            raise ValueError("Invalid pixel values: float images must be in [0, 1]")
        array = (array * 255).round().astype(np.uint8)
    elif array.dtype.kind in "iub":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError("Invalid pixel values: integer images must be in [0, 255]")
        array = array.astype(np.uint8)
    else:
        raise TypeError(f"Invalid array type {array.dtype}: use uint8 or float images")
    return Image.fromarray(array)


def _image_bytes(pil: Any, artifact_file: str) -> bytes:
    ext = posixpath.splitext(artifact_file)[1].lower().lstrip(".") or "png"
    fmt = {"jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}.get(ext, ext.upper())
    buf = io.BytesIO()
    img = pil.convert("RGB") if fmt == "JPEG" and pil.mode not in ("RGB", "L") else pil
    img.save(buf, format=fmt)
    return buf.getvalue()


def _first(items: Iterable[Any]) -> Any:
    return next(iter(items), None)


__all__ = ["MlflowClient", "RunInfo", "RunOperations"]
