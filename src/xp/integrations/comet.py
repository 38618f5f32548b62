"""Comet's ``Experiment`` API over xp runs: what ``import xp.comet as comet_ml`` gives.

    experiment = comet_ml.Experiment(api_key="...", project_name="demo", workspace="team")
    experiment.set_name("lr-0.01")
    experiment.log_parameters({"lr": 0.01, "opt": {"name": "adam"}})
    experiment.log_metric("loss", loss, step=step, epoch=epoch)
    experiment.end()

Mapping: ``project_name`` is the experiment, ``workspace`` the tag ``comet.workspace``; the API
key and the ``auto_*``/``log_env_*`` switches are accepted and need nothing (xp records the
code, the environment and the machine itself). ``add_tag(s)``: a tag with an empty value per
label; ``log_other(s)``: tags. ``log_parameter(s)``: params (``prefix`` joined with ``_`` as
Comet does; nested dicts joined with ``.`` where Comet uses ``|``, which xp keys do not allow).
``log_metric(s)``: metrics at ``step``, else at the step set by ``set_step`` or the last
``step`` given, else the key's next step; ``epoch`` also logs the series ``epoch``.
``log_asset``/``log_asset_folder``/``log_model`` (``models/<name>/``)/``log_code``
(``code/``): artifacts; ``log_image``, ``log_figure``, ``log_table``, ``log_histogram_3d``,
``log_text``: the media index. ``get_key()`` is the experiment key: the xp run id of its first
run; ``ExistingExperiment(previous_experiment=key)`` (or ``start(experiment_key=key)``)
continues it as a new run (tag ``xp.resumes``, steps after the last one), since runs are
immutable commits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from xp.errors import InvalidValueError, RunNotFoundError
from xp.integrations.common import continue_from, metric_key, number, param_value, runs_where


class Experiment:
    """One Comet experiment: an xp run (the active one, or one it starts and ``end()``s)."""

    def __init__(
        self,
        api_key: str | None = None,
        project_name: str | None = None,
        workspace: str | None = None,
        *,
        disabled: bool = False,
        experiment_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        import xp

        self.disabled = disabled or _env_true("COMET_DISABLE")
        self.project_name = project_name or os.environ.get("COMET_PROJECT_NAME")
        self.workspace = workspace or os.environ.get("COMET_WORKSPACE")
        self._step: int | None = None
        self._epoch: int | None = None
        self._ended = False
        self._run: Any = None
        self._owned = False
        if self.disabled:
            return
        previous = _find(experiment_key) if experiment_key else None
        active = xp.active_run()
        if active is None:
            name = previous.name if previous is not None else None
            self._run = xp.start_run(name=name, experiment=self.project_name).run
            self._owned = True
        else:
            self._run = active
        key = previous.tags.get("comet.key", previous.id) if previous is not None else self._run.id
        self._run.set_tag("comet.key", key)
        if self.workspace:
            self._run.set_tag("comet.workspace", self.workspace)
        if previous is not None:
            self._step = continue_from(self._run, previous)

    # -- identity -------------------------------------------------------------------------
    def get_key(self) -> str:
        return "" if self._run is None else str(self._run.state.tags.get("comet.key", self._run.id))

    @property
    def id(self) -> str:
        return self.get_key()

    @property
    def url(self) -> None:
        return None  # xp is local: `xp show` is its view

    def get_name(self) -> str | None:
        return None if self._run is None else str(self._run.name)

    @property
    def name(self) -> str | None:
        return self.get_name()

    def set_name(self, name: str) -> None:
        if self._run is not None:
            self._run.set_name(name)

    @property
    def curr_step(self) -> int | None:
        return self._step

    @property
    def curr_epoch(self) -> int | None:
        return self._epoch

    def set_step(self, step: int | None) -> None:
        self._step = None if step is None else int(step)

    def set_epoch(self, epoch: int | None) -> None:
        self._epoch = None if epoch is None else int(epoch)

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.end()

    # -- tags and params ------------------------------------------------------------------
    def add_tag(self, tag: str) -> bool:
        if self._run is not None:
            self._run.set_tag(metric_key(tag), "")
        return True

    def add_tags(self, tags: list[str]) -> bool:
        for tag in tags:
            self.add_tag(tag)
        return True

    def get_tags(self) -> list[str]:
        if self._run is None:
            return []
        return sorted(k for k, v in self._run.state.tags.items() if v == "")

    def log_other(self, key: str, value: Any) -> None:
        if self._run is not None:
            self._run.set_tag(metric_key(key), param_value(value))

    def log_others(self, dictionary: Mapping[str, Any]) -> None:
        for key, value in dictionary.items():
            self.log_other(key, value)

    def log_parameter(self, name: str, value: Any, step: int | None = None) -> None:
        if self._run is None:
            return
        if isinstance(value, Mapping):
            self.log_parameters({name: value})
            return
        self._run.log_param(metric_key(name), param_value(value))

    def log_parameters(
        self,
        parameters: Mapping[str, Any],
        prefix: str | None = None,
        step: int | None = None,
        nested_support: bool = True,
    ) -> None:
        if self._run is None:
            return
        for key, value in _flatten(parameters, ".").items():
            name = f"{prefix}_{key}" if prefix else key
            self._run.log_param(metric_key(name), param_value(value))

    # -- metrics ----------------------------------------------------------------------------
    def _at(self, step: int | None, epoch: int | None) -> int | None:
        if step is not None:
            self._step = int(step)
        if epoch is not None:
            self._epoch = int(epoch)
        return self._step

    def log_metric(
        self,
        name: str,
        value: Any,
        step: int | None = None,
        epoch: int | None = None,
        include_context: bool = True,
    ) -> None:
        if self._run is None:
            return
        at = self._at(step, epoch)
        num = number(value)
        if num is None:
            raise InvalidValueError(f"metric {name!r} must be a number, got {value!r}")
        self._run.log_metric(metric_key(name), num, at)
        if epoch is not None:
            self._run.log_metric("epoch", int(epoch), at)

    def log_metrics(
        self,
        dic: Mapping[str, Any],
        prefix: str | None = None,
        step: int | None = None,
        epoch: int | None = None,
    ) -> None:
        if self._run is None:
            return
        at = self._at(step, epoch)
        for key, value in _flatten(dic, ".").items():
            num = number(value)
            if num is not None:
                self._run.log_metric(metric_key(f"{prefix}_{key}" if prefix else key), num, at)
        if epoch is not None:
            self._run.log_metric("epoch", int(epoch), at)

    # -- files ------------------------------------------------------------------------------
    def log_asset(
        self,
        file_data: Any,
        file_name: str | None = None,
        overwrite: bool = False,
        copy_to_tmp: bool = True,
        step: int | None = None,
        metadata: Any = None,
    ) -> dict[str, str] | None:
        if self._run is None:
            return None
        if isinstance(file_data, (str, os.PathLike)):
            name = file_name or os.path.basename(os.fspath(file_data))
            self._run.log_artifact(file_data, name, external=True)
        else:
            data = file_data.read() if hasattr(file_data, "read") else file_data
            if isinstance(data, str):
                data = data.encode("utf-8")
            if not isinstance(data, (bytes, bytearray)):
                raise InvalidValueError("log_asset takes a path, bytes or a file object")
            name = file_name or "asset"
            self._run.log_bytes(bytes(data), name)
        return {"fileName": name}

    def log_asset_folder(
        self,
        folder: str,
        step: int | None = None,
        log_file_name: bool | None = None,
        recursive: bool = False,
    ) -> None:
        if self._run is None:
            return
        base = os.path.basename(os.path.normpath(folder))
        for root, dirs, files in os.walk(folder):
            if not recursive:
                dirs.clear()
            for fname in sorted(files):
                path = os.path.join(root, fname)
                rel = os.path.relpath(path, folder).replace(os.sep, "/")
                self._run.log_artifact(path, f"{base}/{rel}", external=True)

    def log_model(
        self,
        name: str,
        file_or_folder: str,
        file_name: str | None = None,
        overwrite: bool = False,
        metadata: Any = None,
        copy_to_tmp: bool = True,
        prepend_folder_name: bool = True,
    ) -> None:
        if self._run is None:
            return
        base = file_name or os.path.basename(os.path.normpath(file_or_folder))
        self._run.log_artifact(file_or_folder, f"models/{metric_key(name)}/{base}", external=True)

    def log_code(
        self,
        file_name: str | None = None,
        folder: str | None = None,
        code: str | None = None,
        code_name: str | None = None,
        overwrite: bool = False,
    ) -> None:
        """The workspace is in the run's commit already; this stores what you name besides,
        under ``code/``."""
        if self._run is None:
            return
        if code is not None:
            self._run.log_text(code, f"code/{code_name or 'code.py'}")
        for path in (file_name, folder):
            if path is not None:
                base = os.path.basename(os.path.normpath(path))
                self._run.log_artifact(path, f"code/{base}", external=True)

    # -- media ------------------------------------------------------------------------------
    def log_image(
        self,
        image_data: Any,
        name: str | None = None,
        overwrite: bool = False,
        image_format: str = "png",
        image_scale: float = 1.0,
        image_shape: Any = None,
        image_colormap: Any = None,
        image_minmax: Any = None,
        image_channels: str = "last",
        copy_to_tmp: bool = True,
        step: int | None = None,
        annotations: Any = None,
        metadata: Any = None,
    ) -> None:
        if self._run is None:
            return
        if image_channels == "first" and hasattr(image_data, "shape"):
            import numpy as np

            image_data = np.moveaxis(np.asarray(image_data), 0, -1)
        key = _media_key(name, "image", image_data)
        self._run.log_image(image_data, key=key, step=self._at(step, None))

    def log_figure(
        self,
        figure_name: str | None = None,
        figure: Any = None,
        overwrite: bool = False,
        step: int | None = None,
    ) -> None:
        if self._run is None:
            return
        if figure is None:  # Comet logs matplotlib's current figure
            import matplotlib.pyplot as plt

            figure = plt.gcf()
        key = _media_key(figure_name, "figure", None)
        self._run.log_figure(figure, key=key, step=self._at(step, None))

    def log_table(
        self,
        filename: str,
        tabular_data: Any = None,
        headers: bool | list[str] = False,
        **format_kwargs: Any,
    ) -> None:
        if self._run is None:
            return
        if tabular_data is None:  # a file that exists
            self._run.log_artifact(filename, os.path.basename(filename), external=True)
            return
        import pandas as pd

        frame = (
            tabular_data
            if isinstance(tabular_data, pd.DataFrame)
            else pd.DataFrame(
                list(tabular_data), columns=headers if isinstance(headers, list) else None
            )
        )
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "csv"
        if ext in ("csv", "parquet"):
            self._run.log_table(frame, filename)
        elif ext == "tsv":
            self._run.log_bytes(frame.to_csv(sep="\t", index=False).encode(), filename)
        elif ext == "json":
            self._run.log_bytes(frame.to_json(orient="records").encode(), filename)
        else:
            raise InvalidValueError(
                f"log_table writes .csv, .tsv, .json or .parquet, not {filename!r}"
            )

    def log_histogram_3d(
        self,
        values: Any,
        name: str | None = None,
        step: int | None = None,
        epoch: int | None = None,
        metadata: Any = None,
        **kwargs: Any,
    ) -> None:
        if self._run is None:
            return
        self._run.log_histogram(values, metric_key(name or "histogram"), step=self._at(step, epoch))

    def log_text(self, text: str, step: int | None = None, metadata: Any = None) -> None:
        if self._run is not None:
            self._run.log_text(str(text), key="text", step=self._at(step, None))

    def log_html(self, html: str, clear: bool = False) -> None:
        if self._run is not None:
            self._run.log_text(str(html), key="html")

    def log_dataset_hash(self, data: Any) -> None:
        """Comet hashes the data; xp records data versions with ``xp.log_input(path)``."""
        if self._run is not None and isinstance(data, (str, os.PathLike)):
            self._run.log_input(data)

    # -- the end ----------------------------------------------------------------------------
    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._owned and self._run is not None and self._run.status == "running":
            import xp

            xp.end_run("finished", run=self._run)


class OfflineExperiment(Experiment):
    """Comet's offline experiment: the same, since every xp run is local."""

    def __init__(
        self,
        project_name: str | None = None,
        workspace: str | None = None,
        offline_directory: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(project_name=project_name, workspace=workspace, **kwargs)


class ExistingExperiment(Experiment):
    """Continue the experiment ``previous_experiment`` (its ``get_key()``) as a new run."""

    def __init__(
        self,
        api_key: str | None = None,
        previous_experiment: str | None = None,
        **kwargs: Any,
    ) -> None:
        key = previous_experiment or os.environ.get("COMET_EXPERIMENT_KEY")
        if not key:
            raise InvalidValueError("ExistingExperiment needs previous_experiment=<key>")
        super().__init__(api_key=api_key, experiment_key=key, **kwargs)


def start(
    api_key: str | None = None,
    workspace: str | None = None,
    project: str | None = None,
    project_name: str | None = None,
    experiment_key: str | None = None,
    mode: str | None = None,
    online: bool | None = None,
    experiment_config: Any = None,
    **kwargs: Any,
) -> Experiment:
    """Comet's newer entry point: ``mode="get"`` continues ``experiment_key`` (it must
    exist), ``"get_or_create"`` continues it when it exists, ``"create"`` starts anew."""
    disabled = bool(getattr(experiment_config, "disabled", False))
    name = project or project_name
    if experiment_key and mode in ("get", "get_or_create", None):
        try:
            _find(experiment_key)
        except RunNotFoundError:
            if mode == "get":
                raise
            experiment_key = None
    elif mode == "create":
        experiment_key = None
    return Experiment(
        project_name=name, workspace=workspace, experiment_key=experiment_key, disabled=disabled
    )


def login(*args: Any, **kwargs: Any) -> bool:
    """Nothing to log in to: runs are git commits in this repository."""
    return True


def init(*args: Any, **kwargs: Any) -> None:
    """Comet's configuration step: nothing to configure."""


def _find(key: str) -> Any:
    """The newest run of experiment ``key`` (its ``comet.key`` tag, or its run id)."""
    import xp

    found = runs_where(f"tags.comet.key = '{key.replace(chr(39), chr(39) * 2)}'", limit=1)
    if found:
        return xp.get_run(found[0])
    try:
        return xp.get_run(key)
    except RunNotFoundError:
        raise RunNotFoundError(
            f"no Comet experiment with key {key!r}; list runs with `xp show`"
        ) from None


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _media_key(name: str | None, default: str, data: Any) -> str:
    if name is None and isinstance(data, (str, os.PathLike)):
        name = os.path.basename(os.fspath(data))
    key = name or default
    stem, dot, ext = key.rpartition(".")
    if dot and ext.lower() in ("png", "jpg", "jpeg", "gif", "svg", "pdf", "html"):
        key = stem
    return metric_key(key)


def _flatten(values: Mapping[str, Any], sep: str, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, sep, name + sep))
        else:
            out[name] = value
    return out
