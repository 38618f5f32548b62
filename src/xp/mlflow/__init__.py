"""MLflow's Python API on xp: ``import xp.mlflow as mlflow`` and a typical MLflow tracking
script runs unchanged, without MLflow installed, recording xp runs (git commits).

    import xp.mlflow as mlflow
    mlflow.set_experiment("wine")
    with mlflow.start_run(run_name="en-0.5") as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_metric("rmse", 0.78)

MLflow's semantics throughout (docs/mlflow.md lists the few differences). What xp cannot do
(serving, deployments, tracing, the model registry, other model flavors) fails with one line
naming the alternative. Importing this is cheap: no pandas, git or MLflow until first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from xp.errors import MlflowException
from xp.interop.mlflow_entities import Experiment, Run, RunStatus, ViewType
from xp.mlflow.tracking._uri import (
    get_registry_uri,
    get_tracking_uri,
    is_tracking_uri_set,
    set_registry_uri,
    set_tracking_uri,
)
from xp.mlflow.tracking.client import MlflowClient
from xp.mlflow.tracking.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_experiment,
    delete_experiment_tag,
    delete_run,
    delete_tag,
    end_run,
    flush_async_logging,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_parent_run,
    get_run,
    last_active_run,
    load_table,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_input,
    log_inputs,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_table,
    log_text,
    restore_experiment,
    search_experiments,
    search_runs,
    set_experiment,
    set_experiment_tag,
    set_experiment_tags,
    set_tag,
    set_tags,
    start_run,
)

__version__ = "3.17.2+xp"  # the MLflow API version xp.mlflow follows

_SUBMODULES = {
    "artifacts",
    "data",
    "entities",
    "exceptions",
    "models",
    "protos",
    "pyfunc",
    "sklearn",
    "store",
    "tracking",
    "utils",
}
_SERVING = (
    "xp.mlflow: model serving is not supported; load the model with"
    " xp.mlflow.pyfunc.load_model(uri) and serve it yourself, or use MLflow itself"
)
_DEPLOYMENTS = (
    "xp.mlflow: deployments are not supported; use MLflow itself (pip install mlflow) with"
    " MLFLOW_TRACKING_URI=xp: to keep recording runs in git"
)
_TRACING = (
    "xp.mlflow: tracing is not supported; log inputs and outputs with log_dict or log_table"
    " (or use MLflow itself with MLFLOW_TRACKING_URI=xp:)"
)
_EVALUATE = (
    "xp.mlflow: evaluate is not supported; compute the metrics yourself and log them with"
    " log_metrics"
)
_REGISTRY = (
    "xp.mlflow: the MLflow model registry is not supported; reference a model by its run"
    " (runs:/<run_id>/<path>) or register it in xp's registry (`xp model register RUN NAME`)"
)
_PROJECTS = "xp.mlflow: MLflow Projects are not supported; run the entry point under `xp run`"
_REFUSED = {
    "deployments": _DEPLOYMENTS,
    "sagemaker": _DEPLOYMENTS,
    "gateway": _DEPLOYMENTS,
    "trace": _TRACING,
    "start_span": _TRACING,
    "search_traces": _TRACING,
    "get_trace": _TRACING,
    "get_last_active_trace_id": _TRACING,
    "update_current_trace": _TRACING,
    "get_current_active_span": _TRACING,
    "tracing": _TRACING,
    "openai": _TRACING,
    "langchain": _TRACING,
    "anthropic": _TRACING,
    "llama_index": _TRACING,
    "evaluate": _EVALUATE,
    "genai": _EVALUATE,
    "register_model": _REGISTRY,
    "projects": _PROJECTS,
    "run": _PROJECTS,
    "models_serve": _SERVING,
}
_FLAVORS = {
    "pytorch",
    "tensorflow",
    "keras",
    "xgboost",
    "lightgbm",
    "catboost",
    "onnx",
    "spark",
    "pyspark",
    "h2o",
    "statsmodels",
    "prophet",
    "transformers",
    "sentence_transformers",
    "spacy",
    "fastai",
    "paddle",
    "pmdarima",
    "diviner",
    "johnsnowlabs",
    "mleap",
    "shap",
    "gluon",
    "promptflow",
    "dspy",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"xp.mlflow.{name}")
        globals()[name] = module
        return module
    if name in ("autolog", "Image", "last_logged_model", "get_logged_model"):
        from xp.mlflow import _extras

        value = getattr(_extras, name)
        globals()[name] = value
        return value
    if name in _REFUSED:
        raise MlflowException(_REFUSED[name], "NOT_IMPLEMENTED")
    if name in _FLAVORS:
        raise MlflowException(
            f"xp.mlflow: the {name!r} model flavor is not supported; save the model with"
            f" {name}'s own API and log the file with log_artifact (or use MLflow itself with"
            " MLFLOW_TRACKING_URI=xp:)",
            "NOT_IMPLEMENTED",
        )
    raise AttributeError(f"module 'xp.mlflow' has no attribute {name!r}")


__all__ = [
    "ActiveRun",
    "Experiment",
    "MlflowClient",
    "MlflowException",
    "Run",
    "RunStatus",
    "ViewType",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_experiment_tag",
    "delete_run",
    "delete_tag",
    "end_run",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_registry_uri",
    "get_run",
    "get_tracking_uri",
    "is_tracking_uri_set",
    "last_active_run",
    "load_table",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_inputs",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "restore_experiment",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_registry_uri",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
