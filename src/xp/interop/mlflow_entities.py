"""MLflow's entity classes (``mlflow.entities``), rewritten: what ``xp.mlflow`` returns and
what the plugin converts to real MLflow entities.

They behave as MLflow's do where scripts and tests can tell: properties with MLflow's names,
``dict(entity)`` over the properties in sorted order, ``repr`` as ``<Class: k=v, ...>``,
equality per class (``Param`` by key only; ``Run`` and ``RunData`` by identity), times in
integer milliseconds, statuses as upper-case strings. No MLflow import: ``import xp.mlflow``
must stay cheap and work without MLflow installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from xp.errors import MlflowException


class _MlflowObject:
    """Iteration over properties (sorted), repr and ``from_dictionary`` as MLflow's base."""

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for name in self._properties():
            yield name, getattr(self, name)

    @classmethod
    def _properties(cls) -> list[str]:
        return sorted(
            name
            for klass in cls.__mro__
            for name, value in vars(klass).items()
            if isinstance(value, property) and not name.startswith("_")
        )

    @classmethod
    def from_dictionary(cls, the_dict: Mapping[str, Any]) -> Any:
        known = set(cls._properties())
        return cls(**{k: v for k, v in the_dict.items() if k in known})

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self)
        return f"<{type(self).__name__}: {fields}>"


class _ByValue(_MlflowObject):
    """Entities that MLflow compares by all their fields."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self.__dict__.items())))


# -- enums --------------------------------------------------------------------------------------
class RunStatus:
    RUNNING = 1
    SCHEDULED = 2
    FINISHED = 3
    FAILED = 4
    KILLED = 5
    _NAMES: ClassVar[dict[int, str]] = {
        1: "RUNNING",
        2: "SCHEDULED",
        3: "FINISHED",
        4: "FAILED",
        5: "KILLED",
    }

    @classmethod
    def from_string(cls, status_str: str) -> int:
        for value, name in cls._NAMES.items():
            if name == status_str:
                return value
        raise MlflowException(
            f"Could not get run status corresponding to string {status_str}. Valid run status"
            f" strings: {list(cls._NAMES.values())}",
            "INVALID_PARAMETER_VALUE",
        )

    @classmethod
    def to_string(cls, status: int) -> str:
        if status not in cls._NAMES:
            raise MlflowException(
                f"Could not get string corresponding to run status {status}. Valid run status"
                f" values: {list(cls._NAMES)}",
                "INVALID_PARAMETER_VALUE",
            )
        return cls._NAMES[status]

    @classmethod
    def is_terminated(cls, status: int) -> bool:
        return status in (cls.FINISHED, cls.FAILED, cls.KILLED)

    @classmethod
    def all_status(cls) -> list[int]:
        return list(cls._NAMES)


class ViewType:
    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3
    _NAMES: ClassVar[dict[int, str]] = {1: "active_only", 2: "deleted_only", 3: "all"}

    @classmethod
    def from_string(cls, view_str: str) -> int:
        for value, name in cls._NAMES.items():
            if name == str(view_str).lower():
                return value
        raise MlflowException(
            f"Could not get valid view type corresponding to string {view_str}",
            "INVALID_PARAMETER_VALUE",
        )

    @classmethod
    def to_string(cls, view_type: int) -> str:
        if view_type not in cls._NAMES:
            raise MlflowException(f"Could not get valid view type {view_type}")
        return cls._NAMES[view_type]


class LifecycleStage:
    ACTIVE = "active"
    DELETED = "deleted"

    @classmethod
    def view_type_to_stages(cls, view_type: int = ViewType.ALL) -> list[str]:
        stages = []
        if view_type in (ViewType.ACTIVE_ONLY, ViewType.ALL):
            stages.append(cls.ACTIVE)
        if view_type in (ViewType.DELETED_ONLY, ViewType.ALL):
            stages.append(cls.DELETED)
        return stages

    @classmethod
    def is_valid(cls, lifecycle_stage: str) -> bool:
        return lifecycle_stage in (cls.ACTIVE, cls.DELETED)

    @classmethod
    def matches_view_type(cls, view_type: int, lifecycle_stage: str) -> bool:
        return lifecycle_stage in cls.view_type_to_stages(view_type)


class SourceType:
    NOTEBOOK = 1
    JOB = 2
    PROJECT = 3
    LOCAL = 4
    UNKNOWN = 5
    _NAMES: ClassVar[dict[int, str]] = {
        1: "NOTEBOOK",
        2: "JOB",
        3: "PROJECT",
        4: "LOCAL",
        5: "UNKNOWN",
    }

    @classmethod
    def from_string(cls, status_str: str) -> int:
        for value, name in cls._NAMES.items():
            if name == status_str:
                return value
        raise MlflowException(f"Could not get source type corresponding to {status_str}")

    @classmethod
    def to_string(cls, status: int) -> str:
        if status not in cls._NAMES:
            raise MlflowException(f"Could not get string for source type {status}")
        return cls._NAMES[status]


# -- key/value entities -----------------------------------------------------------------------
class Param(_MlflowObject):
    """A param; compared and hashed by key only, as MLflow does."""

    def __init__(self, key: str, value: str) -> None:
        self._key = key
        self._value = value

    @property
    def key(self) -> str:
        return self._key

    @property
    def value(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Param) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)


class _KeyValue(_ByValue):
    def __init__(self, key: str, value: str) -> None:
        self._key = key
        self._value = value

    @property
    def key(self) -> str:
        return self._key

    @property
    def value(self) -> str:
        return self._value


class RunTag(_KeyValue):
    pass


class ExperimentTag(_KeyValue):
    pass


class InputTag(_KeyValue):
    pass


class Metric(_ByValue):
    def __init__(
        self,
        key: str,
        value: float,
        timestamp: int,
        step: int,
        model_id: str | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
        run_id: str | None = None,
    ) -> None:
        if (dataset_name is None) != (dataset_digest is None):
            raise MlflowException(
                "Both dataset_name and dataset_digest must be provided if one is provided",
                "INVALID_PARAMETER_VALUE",
            )
        self._key = key
        self._value = value
        self._timestamp = timestamp
        self._step = step
        self._model_id = model_id
        self._dataset_name = dataset_name
        self._dataset_digest = dataset_digest
        self._run_id = run_id

    @property
    def key(self) -> str:
        return self._key

    @property
    def value(self) -> float:
        return self._value

    @property
    def timestamp(self) -> int:
        return self._timestamp

    @property
    def step(self) -> int:
        return self._step

    @property
    def model_id(self) -> str | None:
        return self._model_id

    @property
    def dataset_name(self) -> str | None:
        return self._dataset_name

    @property
    def dataset_digest(self) -> str | None:
        return self._dataset_digest

    @property
    def run_id(self) -> str | None:
        return self._run_id

    def to_dictionary(self) -> dict[str, Any]:
        return dict(self)

    @classmethod
    def from_dictionary(cls, metric_dict: Mapping[str, Any]) -> Metric:
        missing = {"key", "value", "timestamp", "step"} - set(metric_dict)
        if missing:
            raise MlflowException(
                f"Missing required keys {sorted(missing)} in metric dictionary",
                "INVALID_PARAMETER_VALUE",
            )
        known = set(cls._properties())
        return cls(**{k: v for k, v in metric_dict.items() if k in known})


# -- runs ---------------------------------------------------------------------------------------
class RunInfo(_ByValue):
    def __init__(
        self,
        run_id: str | None = None,
        experiment_id: str | None = None,
        user_id: str | None = None,
        status: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        lifecycle_stage: str | None = None,
        artifact_uri: str | None = None,
        run_name: str | None = None,
        run_uuid: str | None = None,
    ) -> None:
        run_id = run_id if run_id is not None else run_uuid
        if run_id is None:
            raise MlflowException("run_id cannot be None")
        for what, value in (
            ("experiment_id", experiment_id),
            ("user_id", user_id),
            ("status", status),
            ("start_time", start_time),
        ):
            if value is None:
                raise MlflowException(f"{what} cannot be None")
        self._run_id = run_id
        self._experiment_id = experiment_id
        self._user_id = user_id
        self._status = status
        self._start_time = start_time
        self._end_time = end_time
        self._lifecycle_stage = lifecycle_stage
        self._artifact_uri = artifact_uri
        self._run_name = run_name

    @classmethod
    def _properties(cls) -> list[str]:
        return [p for p in super()._properties() if p != "run_uuid"]

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def run_uuid(self) -> str:
        """MLflow 2's name for ``run_id``, still used by many scripts."""
        return self._run_id

    @property
    def experiment_id(self) -> str:
        return str(self._experiment_id)

    @property
    def user_id(self) -> str:
        return str(self._user_id)

    @property
    def status(self) -> str:
        return str(self._status)

    @property
    def start_time(self) -> int:
        return int(self._start_time or 0)

    @property
    def end_time(self) -> int | None:
        return self._end_time

    @property
    def lifecycle_stage(self) -> str | None:
        return self._lifecycle_stage

    @property
    def artifact_uri(self) -> str | None:
        return self._artifact_uri

    @property
    def run_name(self) -> str | None:
        return self._run_name

    def to_dictionary(self) -> dict[str, Any]:
        return dict(self)


class RunData(_MlflowObject):
    """Params, tags and the latest value of each metric; ``_metric_objs`` as MLflow keeps it."""

    def __init__(
        self,
        metrics: Iterable[Metric] | None = None,
        params: Iterable[Param] | None = None,
        tags: Iterable[RunTag] | None = None,
    ) -> None:
        self._metric_objs = list(metrics or [])
        self._metrics: dict[str, float] = {}
        for metric in self._metric_objs:
            self._metrics[metric.key] = metric.value
        self._params = {p.key: p.value for p in params or []}
        self._tags = {t.key: t.value for t in tags or []}

    @property
    def metrics(self) -> dict[str, float]:
        return self._metrics

    @property
    def params(self) -> dict[str, str]:
        return self._params

    @property
    def tags(self) -> dict[str, str]:
        return self._tags

    def to_dictionary(self) -> dict[str, Any]:
        return {"metrics": dict(self._metrics), "params": dict(self._params), "tags": self._tags}


class Dataset(_ByValue):
    def __init__(
        self,
        name: str,
        digest: str,
        source_type: str,
        source: str,
        schema: str | None = None,
        profile: str | None = None,
    ) -> None:
        self._name = name
        self._digest = digest
        self._source_type = source_type
        self._source = source
        self._schema = schema
        self._profile = profile

    @property
    def name(self) -> str:
        return self._name

    @property
    def digest(self) -> str:
        return self._digest

    @property
    def source_type(self) -> str:
        return self._source_type

    @property
    def source(self) -> str:
        return self._source

    @property
    def schema(self) -> str | None:
        return self._schema

    @property
    def profile(self) -> str | None:
        return self._profile

    def to_dictionary(self) -> dict[str, Any]:
        return dict(self)


class DatasetInput(_ByValue):
    def __init__(self, dataset: Dataset, tags: Iterable[InputTag] | None = None) -> None:
        self._dataset = dataset
        self._tags = list(tags or [])

    @property
    def dataset(self) -> Dataset:
        return self._dataset

    @property
    def tags(self) -> list[InputTag]:
        return self._tags

    def to_dictionary(self) -> dict[str, Any]:
        return {
            "dataset": self._dataset.to_dictionary(),
            "tags": {t.key: t.value for t in self._tags},
        }


class LoggedModelInput(_ByValue):
    def __init__(self, model_id: str) -> None:
        self._model_id = model_id

    @property
    def model_id(self) -> str:
        return self._model_id


class LoggedModelOutput(_ByValue):
    def __init__(self, model_id: str, step: int = 0) -> None:
        self._model_id = model_id
        self._step = step

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def step(self) -> int:
        return self._step


class RunInputs(_ByValue):
    def __init__(
        self,
        dataset_inputs: Iterable[DatasetInput] | None = None,
        model_inputs: Iterable[LoggedModelInput] | None = None,
    ) -> None:
        self._dataset_inputs = list(dataset_inputs or [])
        self._model_inputs = list(model_inputs or [])

    @property
    def dataset_inputs(self) -> list[DatasetInput]:
        return self._dataset_inputs

    @property
    def model_inputs(self) -> list[LoggedModelInput]:
        return self._model_inputs

    def to_dictionary(self) -> dict[str, Any]:
        return {"dataset_inputs": [d.to_dictionary() for d in self._dataset_inputs]}


class RunOutputs(_ByValue):
    def __init__(self, model_outputs: Iterable[LoggedModelOutput] | None = None) -> None:
        self._model_outputs = list(model_outputs or [])

    @property
    def model_outputs(self) -> list[LoggedModelOutput]:
        return self._model_outputs

    def to_dictionary(self) -> dict[str, Any]:
        return {"model_outputs": [dict(m) for m in self._model_outputs]}


class Run(_MlflowObject):
    """``info`` (RunInfo), ``data`` (RunData), ``inputs``, ``outputs``; compared by identity."""

    def __init__(
        self,
        run_info: RunInfo,
        run_data: RunData | None = None,
        run_inputs: RunInputs | None = None,
        run_outputs: RunOutputs | None = None,
    ) -> None:
        if run_info is None:
            raise MlflowException("run_info cannot be None")
        self._info = run_info
        self._data = run_data if run_data is not None else RunData()
        self._inputs = run_inputs
        self._outputs = run_outputs

    @property
    def info(self) -> RunInfo:
        return self._info

    @property
    def data(self) -> RunData:
        return self._data

    @property
    def inputs(self) -> RunInputs | None:
        return self._inputs

    @property
    def outputs(self) -> RunOutputs | None:
        return self._outputs

    def to_dictionary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"info": dict(self._info), "data": self._data.to_dictionary()}
        if self._inputs is not None:
            out["inputs"] = self._inputs.to_dictionary()
        if self._outputs is not None:
            out["outputs"] = self._outputs.to_dictionary()
        return out


# -- experiments, files, models -----------------------------------------------------------------
class Experiment(_MlflowObject):
    DEFAULT_EXPERIMENT_NAME = "Default"

    def __init__(
        self,
        experiment_id: str,
        name: str,
        artifact_location: str | None,
        lifecycle_stage: str,
        tags: Iterable[ExperimentTag] | Mapping[str, str] | None = None,
        creation_time: int | None = None,
        last_update_time: int | None = None,
        workspace: str | None = None,
        trace_location: Any = None,
        effective_trace_archival_retention: Any = None,
    ) -> None:
        self._experiment_id = str(experiment_id)
        self._name = name
        self._artifact_location = artifact_location
        self._lifecycle_stage = lifecycle_stage
        if isinstance(tags, Mapping):
            self._tags = {str(k): str(v) for k, v in tags.items()}
        else:
            self._tags = {t.key: t.value for t in tags or []}
        self._creation_time = creation_time
        self._last_update_time = last_update_time
        self._workspace = workspace or "default"
        self._trace_location = trace_location
        self._effective_trace_archival_retention = effective_trace_archival_retention

    @property
    def experiment_id(self) -> str:
        return self._experiment_id

    @property
    def name(self) -> str:
        return self._name

    @property
    def artifact_location(self) -> str | None:
        return self._artifact_location

    @property
    def lifecycle_stage(self) -> str:
        return self._lifecycle_stage

    @property
    def tags(self) -> dict[str, str]:
        return self._tags

    @property
    def creation_time(self) -> int | None:
        return self._creation_time

    @property
    def last_update_time(self) -> int | None:
        return self._last_update_time

    @property
    def workspace(self) -> str:
        return self._workspace

    @property
    def trace_location(self) -> Any:
        return self._trace_location

    @property
    def effective_trace_archival_retention(self) -> Any:
        return self._effective_trace_archival_retention


class FileInfo(_ByValue):
    def __init__(self, path: str, is_dir: bool, file_size: int | None) -> None:
        self._path = path
        self._is_dir = is_dir
        self._bytes = file_size

    @property
    def path(self) -> str:
        return self._path

    @property
    def is_dir(self) -> bool:
        return self._is_dir

    @property
    def file_size(self) -> int | None:
        return self._bytes


class LoggedModelStatus:
    UNSPECIFIED = 0
    PENDING = 1
    READY = 2
    FAILED = 3
    _NAMES: ClassVar[dict[int, str]] = {0: "UNSPECIFIED", 1: "PENDING", 2: "READY", 3: "FAILED"}

    @classmethod
    def to_string(cls, status: int) -> str:
        return cls._NAMES.get(status, "UNSPECIFIED")

    @classmethod
    def from_string(cls, name: str) -> int:
        for value, text in cls._NAMES.items():
            if text == name:
                return value
        return cls.UNSPECIFIED


class LoggedModel(_MlflowObject):
    """An MLflow 3 logged model; xp keeps its files as artifacts of its source run."""

    def __init__(
        self,
        experiment_id: str,
        model_id: str,
        name: str,
        artifact_location: str,
        creation_timestamp: int,
        last_updated_timestamp: int,
        model_type: str | None = None,
        source_run_id: str | None = None,
        status: int = LoggedModelStatus.READY,
        status_message: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        metrics: list[Metric] | None = None,
    ) -> None:
        self._experiment_id = str(experiment_id)
        self._model_id = model_id
        self._name = name
        self._artifact_location = artifact_location
        self._creation_timestamp = creation_timestamp
        self._last_updated_timestamp = last_updated_timestamp
        self._model_type = model_type
        self._source_run_id = source_run_id
        self._status = status
        self._status_message = status_message
        self._tags = dict(tags or {})
        self._params = dict(params or {})
        self._metrics = list(metrics or [])

    @property
    def experiment_id(self) -> str:
        return self._experiment_id

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def name(self) -> str:
        return self._name

    @property
    def artifact_location(self) -> str:
        return self._artifact_location

    @property
    def creation_timestamp(self) -> int:
        return self._creation_timestamp

    @property
    def last_updated_timestamp(self) -> int:
        return self._last_updated_timestamp

    @property
    def model_type(self) -> str | None:
        return self._model_type

    @property
    def source_run_id(self) -> str | None:
        return self._source_run_id

    @property
    def status(self) -> int:
        return self._status

    @property
    def status_message(self) -> str | None:
        return self._status_message

    @property
    def tags(self) -> dict[str, str]:
        return self._tags

    @property
    def params(self) -> dict[str, str]:
        return self._params

    @property
    def metrics(self) -> list[Metric]:
        return self._metrics

    @property
    def model_uri(self) -> str:
        return f"models:/{self._model_id}"


class PagedList(list):  # type: ignore[type-arg]
    """A page of results with ``.token`` for the next page (None at the end)."""

    def __init__(self, items: Iterable[Any], token: str | None) -> None:
        super().__init__(items)
        self.token = token

    def to_list(self) -> list[Any]:
        return list(self)
