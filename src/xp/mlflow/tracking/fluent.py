"""MLflow's fluent API (``mlflow.start_run``, ``mlflow.log_metric``...) over xp runs.

MLflow's semantics: a thread-local stack of active runs, ``step`` 0 by default, one shared
timestamp per ``log_metrics`` call, upper-case statuses, ``set_experiment`` creating the
experiment, ``MLFLOW_RUN_ID`` / ``MLFLOW_EXPERIMENT_NAME`` / ``MLFLOW_EXPERIMENT_ID`` read
from the environment. Two things are xp's: a run that ends with an uncaught exception is
``FAILED`` and one stopped by SIGINT/SIGTERM ``KILLED`` (MLflow's exit hook marks both
FINISHED), and ``start_run(run_id=...)`` of an ended run continues it as a new commit on top
of the old one (a fast-forward of its ref).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from xp.errors import MlflowException
from xp.interop.mlflow_entities import (
    DatasetInput,
    Experiment,
    InputTag,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from xp.mlflow.tracking import _uri
from xp.mlflow.tracking.client import MlflowClient, RunOperations

if TYPE_CHECKING:
    import pandas as pd

    from xp.interop.mlflow_runs import Backend

_RUN_ID_ENV = "MLFLOW_RUN_ID"
_EXPERIMENT_NAME_ENV = "MLFLOW_EXPERIMENT_NAME"
_EXPERIMENT_ID_ENV = "MLFLOW_EXPERIMENT_ID"
_STATUSES = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
NOTE = "mlflow.note.content"
PARENT = "mlflow.parentRunId"


class _ThreadState(threading.local):
    """MLflow's active runs are per thread, and a forked child starts with none."""

    def __init__(self) -> None:
        self.stack: list[ActiveRun] = []
        self.last_id: str | None = None


_state = _ThreadState()
_active_experiment_id: str | None = None
_experiment_lock = threading.Lock()
_known_keys: set[str] = set()  # metric names already checked


def _forget_in_child() -> None:
    _state.stack = []
    _state.last_id = None


os.register_at_fork(after_in_child=_forget_in_child)


def _stack() -> list[ActiveRun]:
    return _state.stack


def _backend() -> Backend:
    return _uri.backend()


def _client() -> MlflowClient:
    return MlflowClient()


class ActiveRun(Run):
    """What ``start_run`` returns: the run as it was when it started, and a context manager
    that ends it (FINISHED, or FAILED when the block raised)."""

    def __init__(self, run: Run, live: Any = None) -> None:
        super().__init__(run.info, run.data, run.inputs, run.outputs)
        self._live = live  # the xp Run being logged, for the fast path of log_metric

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if any(r.info.run_id == self.info.run_id for r in _stack()):
            if exc_type is None or (
                issubclass(exc_type, SystemExit) and getattr(exc, "code", None) in (None, 0)
            ):
                status = "FINISHED"
            elif issubclass(exc_type, KeyboardInterrupt):
                status = "KILLED"
            else:
                status = "FAILED"
            end_run(status)
        return exc_type is None


# -- experiments ----------------------------------------------------------------------------
def _get_experiment_id() -> str:
    if _active_experiment_id:
        return _active_experiment_id
    name = os.environ.get(_EXPERIMENT_NAME_ENV)
    env_id = os.environ.get(_EXPERIMENT_ID_ENV)
    backend = _backend()
    if name:
        exp = backend.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp is not None else backend.create_experiment(name)
        if env_id and env_id != exp_id:
            raise MlflowException(
                f"The provided {_EXPERIMENT_ID_ENV} environment variable value `{env_id}` does"
                f" not match the experiment id `{exp_id}` for experiment name `{name}`",
                "INVALID_PARAMETER_VALUE",
            )
        return exp_id
    if env_id:
        try:
            return backend.get_experiment(env_id).experiment_id
        except MlflowException:
            raise MlflowException(
                f"The provided {_EXPERIMENT_ID_ENV} environment variable value `{env_id}` does"
                " not exist in the tracking server. Provide a valid experiment_id.",
                "INVALID_PARAMETER_VALUE",
            ) from None
    return "0"


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment active (creating it by name when it does not exist yet)."""
    global _active_experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise MlflowException(
            "Must specify exactly one of: `experiment_id` or `experiment_name`.",
            "INVALID_PARAMETER_VALUE",
        )
    backend = _backend()
    with _experiment_lock:
        if experiment_id is not None:
            exp = backend.get_experiment(str(experiment_id))
        else:
            found = backend.get_experiment_by_name(str(experiment_name))
            if found is None:
                try:
                    backend.create_experiment(experiment_name)
                except MlflowException as exc:
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                found = backend.get_experiment_by_name(str(experiment_name))
            assert found is not None
            exp = found
        if exp.lifecycle_stage != LifecycleStage.ACTIVE:
            raise MlflowException(
                f"Cannot set a deleted experiment {exp.name!r} as the active experiment. You"
                " can restore the experiment, or permanently delete the experiment to create a"
                " new one.",
                "INVALID_PARAMETER_VALUE",
            )
        _active_experiment_id = exp.experiment_id
        os.environ[_EXPERIMENT_ID_ENV] = exp.experiment_id
    return exp


def create_experiment(
    name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
) -> str:
    return _backend().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return _backend().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return _backend().get_experiment_by_name(name)


def search_experiments(
    view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Experiment]:
    return list(
        _backend().search_experiments(view_type, max_results, filter_string, order_by, None)
    )


def delete_experiment(experiment_id: str) -> None:
    _backend().delete_experiment(experiment_id)


def restore_experiment(experiment_id: str) -> None:
    _backend().restore_experiment(experiment_id)


def set_experiment_tag(key: str, value: Any) -> None:
    _backend().set_experiment_tag(_get_experiment_id(), key, value)


def set_experiment_tags(tags: dict[str, Any]) -> None:
    for key, value in tags.items():
        set_experiment_tag(key, value)


def delete_experiment_tag(key: str) -> None:
    _backend().delete_experiment_tag(_get_experiment_id(), key)


# -- runs -----------------------------------------------------------------------------------
def start_run(
    run_id: str | None = None,
    experiment_id: str | int | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a run, or with ``run_id`` (or ``MLFLOW_RUN_ID``) go on logging into one: a run
    that ended is continued (its ref moves forward to a new commit)."""
    if experiment_id is not None and (
        not isinstance(experiment_id, (str, int)) or isinstance(experiment_id, bool)
    ):
        raise MlflowException(
            f"Invalid experiment id: {experiment_id} of type {type(experiment_id)}. Must be one"
            " of str, int, or None.",
            "INVALID_PARAMETER_VALUE",
        )
    if isinstance(experiment_id, int):
        experiment_id = str(experiment_id)
    stack = _stack()
    if stack and not nested:
        raise MlflowException(
            f"Run with UUID {stack[0].info.run_id} is already active. To start a new run, first"
            " end the current run with mlflow.end_run(). To start a nested run, call start_run"
            " with nested=True"
        )
    user_tags = {str(k): v for k, v in (tags or {}).items()}
    if description:
        if NOTE in user_tags:
            raise MlflowException(
                f"Description is already set via the tag {NOTE} in tags.Remove the key {NOTE}"
                " from the tags or omit the description.",
                "INVALID_PARAMETER_VALUE",
            )
        user_tags[NOTE] = description
    existing = run_id or os.environ.pop(_RUN_ID_ENV, None) or None
    backend = _backend()
    if existing:
        active = _continue(backend, existing, run_name, user_tags)
    else:
        if parent_run_id is not None:
            if stack and parent_run_id != stack[-1].info.run_id:
                raise MlflowException(
                    f"Current run with UUID {stack[-1].info.run_id} does not match the"
                    f" specified parent_run_id {parent_run_id}. To start a new nested run under"
                    f" the parent run with UUID {stack[-1].info.run_id}, first end the current"
                    " run with `mlflow.end_run()`.",
                    "INVALID_PARAMETER_VALUE",
                )
            parent = backend.get_run(parent_run_id)
            if parent.info.lifecycle_stage == LifecycleStage.DELETED:
                raise MlflowException(
                    f"Cannot start run under parent run with ID {parent_run_id} because it is in"
                    " the deleted state."
                )
        elif stack:
            parent_run_id = stack[-1].info.run_id
        attach = None  # under `xp run`: log into its run while its owner can merge the part
        inherit = None
        if not stack and os.environ.get("XP_RUN_ID"):
            from xp.tracking.attach import inherited

            inherit = inherited()
            attach = inherit.attach
            parent_run_id = parent_run_id or inherit.parent
        if parent_run_id:
            user_tags[PARENT] = parent_run_id
        exp_id = experiment_id if experiment_id is not None else _get_experiment_id()
        live = backend.create_run(exp_id, tags=user_tags, run_name=run_name, attach=attach)
        if inherit is not None and inherit.why is not None and inherit.parent is not None:
            from xp.tracking.attach import say_own_run

            say_own_run(inherit.parent, inherit.why, live.id)
        active = ActiveRun(backend.get_run(live.id), live)
    stack.append(active)
    return active


def _continue(
    backend: Backend, run_id: str, run_name: str | None, tags: dict[str, Any]
) -> ActiveRun:
    from xp.interop.mlflow_runs import live_run
    from xp.interop.mlflow_validation import check_run_id

    check_run_id(run_id)
    run = backend.get_run(run_id)
    if _active_experiment_id is not None and run.info.experiment_id != _active_experiment_id:
        raise MlflowException(
            f"Cannot start run with ID {run_id} because active experiment ID does not match"
            " environment run ID. Make sure --experiment-name or --experiment-id matches"
            " experiment set with set_experiment(), or just use command-line arguments"
        )
    if run.info.lifecycle_stage == LifecycleStage.DELETED:
        raise MlflowException(
            f"Cannot start run with ID {run_id} because it is in the deleted state."
        )
    if live_run(backend.repo, run_id) is None or run_name:
        backend.update_run_info(run_id, "RUNNING", run_name=run_name)
    if tags:
        backend.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
    return ActiveRun(backend.get_run(run_id), live_run(backend.repo, run_id))


def end_run(status: str = "FINISHED") -> None:
    """End the innermost active run (nothing happens when none is active)."""
    stack = _stack()
    if not stack:
        return
    if status not in _STATUSES:
        raise MlflowException(
            f"Could not get run status corresponding to string {status}. Valid run status"
            f" strings: {_STATUSES}",
            "INVALID_PARAMETER_VALUE",
        )
    active = stack.pop()
    run_id = active.info.run_id
    os.environ.pop(_RUN_ID_ENV, None)
    _state.last_id = run_id
    if status in ("RUNNING", "SCHEDULED"):
        return  # MLflow leaves such a run running; it ends with the process
    _backend().update_run_info(run_id, status)  # ends now, on the clock its points used


def active_run() -> ActiveRun | None:
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    active = active_run()
    if active is not None:
        return active
    return None if _state.last_id is None else get_run(_state.last_id)


def get_run(run_id: str) -> Run:
    return _backend().get_run(run_id)


def get_parent_run(run_id: str) -> Run | None:
    return _client().get_parent_run(run_id)


def delete_run(run_id: str) -> None:
    _backend().delete_run(run_id)


def _run_id() -> str:
    stack = _stack()
    if not stack:
        start_run()
        stack = _stack()
    return stack[-1].info.run_id


# -- logging -------------------------------------------------------------------------------
def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> RunOperations | None:
    """MLflow's step (``step or 0``) and timestamp (``timestamp or now``, in ms)."""
    if run_id is None:  # the fast path: a checked name, a number, the active run
        stack = _state.stack
        if stack:
            live = stack[-1]._live
            if (
                live is not None
                and live.status == "running"
                and key in _known_keys
                and (type(value) is float or type(value) is int)
                and (step is None or type(step) is int)
            ):
                live.log_metric(key, value, step or 0, timestamp or None)
                return None if synchronous is not False else RunOperations()
    return _log_metric(key, value, step, synchronous, timestamp, run_id)


def _log_metric(
    key: str,
    value: Any,
    step: Any,
    synchronous: bool | None,
    timestamp: int | None,
    run_id: str | None,
) -> RunOperations | None:
    from xp.interop.mlflow_validation import check_metric, check_name

    stack = _state.stack if run_id is None else None
    live = stack[-1]._live if stack else None
    if live is not None and live.status == "running":
        check_name(key, "name", "metric")
        _known_keys.add(key)
        ts = timestamp or int(time.time() * 1000)
        st = step or 0
        number = check_metric(key, value, ts, st)
        live.log_metric(key, number, int(st), timestamp or None)
    else:
        _client().log_metric(run_id or _run_id(), key, value, timestamp or None, step or 0)
    return RunOperations() if synchronous is False else None


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> RunOperations | None:
    ts = timestamp or int(time.time() * 1000)
    batch = [Metric(k, v, ts, step or 0) for k, v in metrics.items()]
    _backend().log_batch(run_id or _run_id(), metrics=batch)
    return RunOperations() if synchronous is False else None


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    _backend().log_batch(_run_id(), params=[Param(key, value)], single=True)
    return RunOperations() if synchronous is False else value


def log_params(
    params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> RunOperations | None:
    _backend().log_batch(run_id or _run_id(), params=[Param(k, v) for k, v in params.items()])
    return RunOperations() if synchronous is False else None


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
    _backend().log_batch(_run_id(), tags=[RunTag(key, str(value))], single=True)
    return RunOperations() if synchronous is False else None


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> RunOperations | None:
    _backend().log_batch(_run_id(), tags=[RunTag(k, str(v)) for k, v in tags.items()])
    return RunOperations() if synchronous is False else None


def delete_tag(key: str) -> None:
    _backend().delete_tag(_run_id(), key)


def flush_async_logging() -> None:
    """xp logs synchronously (into memory, journaled twice a second): nothing to flush."""


def log_input(
    dataset: Any = None,
    context: str | None = None,
    tags: dict[str, str] | None = None,
    model: Any = None,
) -> None:
    if dataset is None:
        return
    log_inputs([dataset], [context], [tags])


def log_inputs(
    datasets: Sequence[Any] | None = None,
    contexts: Sequence[str | None] | None = None,
    tags_list: Sequence[dict[str, str] | None] | None = None,
    models: Sequence[Any] | None = None,
) -> None:
    datasets = list(datasets or [])
    contexts = list(contexts) if contexts is not None else [None] * len(datasets)
    tags_list = list(tags_list) if tags_list is not None else [None] * len(datasets)
    if not len(datasets) == len(contexts) == len(tags_list):
        raise MlflowException(
            "The lengths of datasets, contexts, tags_list must be the same.",
            "INVALID_PARAMETER_VALUE",
        )
    inputs = []
    for ds, context, extra in zip(datasets, contexts, tags_list, strict=True):
        tags = [InputTag(k, str(v)) for k, v in (extra or {}).items()]
        if context:
            tags.append(InputTag("mlflow.data.context", context))
        inputs.append(DatasetInput(ds._to_mlflow_entity(), tags))
    _backend().log_inputs(_run_id(), inputs)


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    _backend().log_artifact(run_id or _run_id(), local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    _backend().log_artifacts(run_id or _run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_text(run_id or _run_id(), text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_dict(run_id or _run_id(), dictionary, artifact_file)


def log_figure(
    figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None
) -> None:
    _client().log_figure(_run_id(), figure, artifact_file, save_kwargs=save_kwargs)


def log_image(
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = False,
) -> None:
    _client().log_image(_run_id(), image, artifact_file, key, step, timestamp)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_table(run_id or _run_id(), data, artifact_file)


def load_table(
    artifact_file: str,
    run_ids: list[str] | None = None,
    extra_columns: list[str] | None = None,
) -> pd.DataFrame:
    """The table ``artifact_file`` of every run (of the active experiment, or ``run_ids``)
    that logged it, concatenated; ``extra_columns`` (``run_id``, ``tags.x``...) added."""
    import tempfile

    import pandas as pd

    from xp.mlflow.tracking.client import read_table

    client = _client()
    if run_ids is None:
        wanted = search_runs(output_format="list")
        runs = [r for r in wanted if artifact_file in r.data.tags.get("mlflow.loggedArtifacts", "")]
    else:
        runs = [client.get_run(r) for r in run_ids]
    frames = []
    for run in runs:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                frame = read_table(client.download_artifacts(run.info.run_id, artifact_file, tmp))
        except MlflowException:
            continue
        flat = {"run_id": run.info.run_id, **{f"tags.{k}": v for k, v in run.data.tags.items()}}
        for column in extra_columns or []:
            if column not in flat:
                raise KeyError(f"Invalid extra column: {column!r}")
            frame[column] = flat[column]
        frames.append(frame)
    if not frames:
        raise MlflowException(
            "No runs found with the corresponding table artifact.", "RESOURCE_DOES_NOT_EXIST"
        )
    return cast("pd.DataFrame", pd.concat(frames, ignore_index=True))


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """``xp-artifacts:<work tree>/.xp/runs/<run id>/artifacts[/<path>]``: xp keeps artifacts in
    its content-addressed cache, so this URI opens with ``mlflow.artifacts`` functions and
    the loaders, not ``open``."""
    uri = _backend().artifact_uri(_run_id())
    if artifact_path:
        uri = f"{uri}/{artifact_path.lstrip('/')}"
    return uri


# -- searching ------------------------------------------------------------------------------
def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str = "",
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = 100000,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> Any:
    """Runs as MLflow's DataFrame (its columns and types) or as a list of ``Run``."""
    backend = _backend()
    if experiment_ids and experiment_names:
        raise MlflowException(
            "Only experiment_ids or experiment_names can be used, but not both",
            "INVALID_PARAMETER_VALUE",
        )
    if output_format not in ("pandas", "list"):
        raise ValueError(
            f"Unsupported output format: {output_format}. Supported string values are 'pandas'"
            " or 'list'"
        )
    if experiment_names is not None:
        ids = []
        for name in experiment_names:
            exp = backend.get_experiment_by_name(name) if name is not None else None
            if exp is not None:
                ids.append(exp.experiment_id)
    elif experiment_ids:
        ids = [str(e) for e in experiment_ids]
    elif search_all_experiments:
        ids = [e.experiment_id for e in backend.search_experiments(max_results=None)]
    else:
        ids = [_get_experiment_id()]
    from xp.interop import mlflow_search as S

    S.check_max_results(max_results, limit=max(max_results or 0, S.MAX_RESULTS))
    rows = backend.search_rows(ids, filter_string, run_view_type, order_by) if ids else []
    rows = rows[:max_results] if max_results is not None else rows
    if output_format == "list":
        return [backend.run_entity(r.payload) for r in rows]
    return _frame(rows)


def _frame(rows: Sequence[Any]) -> pd.DataFrame:
    """MLflow's DataFrame: info columns, then metrics.*, params.*, tags.* (missing: NaN
    for metrics, None for params and tags), times as UTC datetimes; built as MLflow builds
    it, so the dtypes follow the installed pandas as MLflow's do."""
    import numpy as np
    import pandas as pd

    info: dict[str, list[Any]] = {
        "run_id": [],
        "experiment_id": [],
        "status": [],
        "artifact_uri": [],
        "start_time": [],
        "end_time": [],
    }
    metrics: dict[str, list[Any]] = {}
    params: dict[str, list[Any]] = {}
    tags: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        a = row.attributes
        info["run_id"].append(a["run_id"])
        info["experiment_id"].append(a["experiment_id"])
        info["status"].append(a["status"])
        info["artifact_uri"].append(a["artifact_uri"])
        info["start_time"].append(pd.to_datetime(a["start_time"], unit="ms", utc=True))
        info["end_time"].append(pd.to_datetime(a["end_time"], unit="ms", utc=True))
        for store, values, missing in (
            (metrics, row.metrics, np.nan),
            (params, row.params, None),
            (tags, row.tags, None),
        ):
            for key, value in values.items():
                column = store.setdefault(key, [missing] * i)
                column.append(value)
            for column in store.values():
                if len(column) < i + 1:
                    column.append(missing)
    data = {
        **info,
        **{f"metrics.{k}": v for k, v in metrics.items()},
        **{f"params.{k}": v for k, v in params.items()},
        **{f"tags.{k}": v for k, v in tags.items()},
    }
    return cast("pd.DataFrame", pd.DataFrame(data))


def _reset() -> None:
    """Forget active runs and the active experiment (tests)."""
    global _active_experiment_id
    _active_experiment_id = None
    _state.stack = []
    _state.last_id = None
    _known_keys.clear()


__all__ = [
    "ActiveRun",
    "RunStatus",
]
