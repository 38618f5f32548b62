"""Between xp's MLflow entities (``xp.interop.mlflow_entities``) and MLflow's own, which the
MLflow client and server need (they serialise them with protobuf)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mlflow import entities as M
from mlflow.exceptions import MlflowException as MlflowError
from mlflow.protos import databricks_pb2

from xp.errors import MlflowException, RunActiveError, XPError
from xp.interop import mlflow_entities as E


@contextlib.contextmanager
def mlflow_errors() -> Iterator[None]:
    """xp's refusals as MLflow's exception, with the same code and message."""
    try:
        yield
    except MlflowException as exc:
        code = getattr(databricks_pb2, exc.error_code, databricks_pb2.INTERNAL_ERROR)
        raise MlflowError(exc.message, error_code=code) from None
    except RunActiveError as exc:
        raise MlflowError(str(exc), error_code=databricks_pb2.INVALID_STATE) from None
    except XPError as exc:
        raise MlflowError(str(exc), error_code=databricks_pb2.INVALID_PARAMETER_VALUE) from None


def experiment(e: E.Experiment) -> M.Experiment:
    return M.Experiment(
        experiment_id=e.experiment_id,
        name=e.name,
        artifact_location=e.artifact_location or "",
        lifecycle_stage=e.lifecycle_stage,
        tags=[M.ExperimentTag(k, v) for k, v in e.tags.items()],
        creation_time=e.creation_time,
        last_update_time=e.last_update_time,
    )


def metric(m: E.Metric) -> M.Metric:
    return M.Metric(
        key=m.key,
        value=m.value,
        timestamp=m.timestamp,
        step=m.step,
        model_id=m.model_id,
        dataset_name=m.dataset_name,
        dataset_digest=m.dataset_digest,
        run_id=m.run_id,
    )


def run_info(i: E.RunInfo) -> M.RunInfo:
    return M.RunInfo(
        run_id=i.run_id,
        experiment_id=i.experiment_id,
        user_id=i.user_id,
        status=i.status,
        start_time=i.start_time,
        end_time=i.end_time,
        lifecycle_stage=i.lifecycle_stage or "active",
        artifact_uri=i.artifact_uri,
        run_name=i.run_name,
    )


def run(r: E.Run) -> M.Run:
    data = M.RunData(
        metrics=[metric(m) for m in r.data._metric_objs],
        params=[M.Param(k, v) for k, v in r.data.params.items()],
        tags=[M.RunTag(k, v) for k, v in r.data.tags.items()],
    )
    inputs = M.RunInputs(
        dataset_inputs=[
            M.DatasetInput(
                M.Dataset(
                    name=d.dataset.name,
                    digest=d.dataset.digest,
                    source_type=d.dataset.source_type,
                    source=d.dataset.source,
                    schema=d.dataset.schema,
                    profile=d.dataset.profile,
                ),
                tags=[M.InputTag(t.key, t.value) for t in d.tags],
            )
            for d in (r.inputs.dataset_inputs if r.inputs else [])
        ],
        model_inputs=[],
    )
    outputs = M.RunOutputs(
        model_outputs=[
            M.LoggedModelOutput(model_id=o.model_id, step=o.step)
            for o in (r.outputs.model_outputs if r.outputs else [])
        ]
    )
    return M.Run(run_info(r.info), data, inputs, outputs)


def logged_model(m: E.LoggedModel) -> M.LoggedModel:
    return M.LoggedModel(
        experiment_id=m.experiment_id,
        model_id=m.model_id,
        name=m.name,
        artifact_location=m.artifact_location,
        creation_timestamp=m.creation_timestamp,
        last_updated_timestamp=m.last_updated_timestamp,
        model_type=m.model_type,
        source_run_id=m.source_run_id,
        status=m.status,
        status_message=m.status_message,
        tags=m.tags,
        params=m.params,
        metrics=[metric(x) for x in m.metrics],
    )


def file_info(f: E.FileInfo) -> M.FileInfo:
    return M.FileInfo(f.path, f.is_dir, f.file_size)


def own_metric(m: Any) -> E.Metric:
    return E.Metric(m.key, m.value, m.timestamp, m.step)


def own_dataset_input(d: Any) -> E.DatasetInput:
    ds = d.dataset
    return E.DatasetInput(
        E.Dataset(ds.name, ds.digest, ds.source_type, ds.source, ds.schema, ds.profile),
        [E.InputTag(t.key, t.value) for t in d.tags or []],
    )


def status_name(status: Any) -> str:
    """MLflow passes statuses to stores as RunStatus ints (sometimes as names)."""
    if isinstance(status, str):
        return status
    return str(M.RunStatus.to_string(status))
