"""``mlflow.sklearn``: save, log and load scikit-learn models as MLflow model directories,
and ``autolog``.

Models are written with cloudpickle (pickle when cloudpickle is missing), as MLflow's
autolog does and MLflow 2 did; MLflow 3's ``log_model`` default, skops, refuses tree models
unless told which types to trust. Real MLflow loads what this writes, and this loads what
MLflow writes (pickle, cloudpickle and skops).
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

from xp.errors import MlflowException
from xp.mlflow.models import (
    MLMODEL,
    Model,
    ModelInfo,
    ModelSignature,
    input_example_files,
    python_env_files,
)

FLAVOR_NAME = "sklearn"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SERIALIZATION_FORMAT_SKOPS = "skops"
SUPPORTED_SERIALIZATION_FORMATS = [
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_CLOUDPICKLE,
    SERIALIZATION_FORMAT_SKOPS,
]
_log = logging.getLogger("xp.mlflow")
_warned_registry = False


def _default_format() -> str:
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return SERIALIZATION_FORMAT_PICKLE
    return SERIALIZATION_FORMAT_CLOUDPICKLE


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    conda_env: Any = None,
    code_paths: list[str] | None = None,
    mlflow_model: Model | None = None,
    serialization_format: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    skops_trusted_types: list[str] | None = None,
    **_ignored: Any,
) -> Model:
    """Write ``sk_model`` as an MLflow model directory at ``path`` (which must not exist,
    or be empty)."""
    import sklearn

    fmt = serialization_format or _default_format()
    if fmt not in SUPPORTED_SERIALIZATION_FORMATS:
        raise MlflowException(
            f"Unrecognized serialization format: {fmt}. Please specify one of the following"
            f" supported formats: {SUPPORTED_SERIALIZATION_FORMATS}.",
            "INVALID_PARAMETER_VALUE",
        )
    target = Path(path)
    if target.exists() and any(target.iterdir()):
        raise MlflowException(
            f"Path '{target}' already exists and is not empty", "RESOURCE_ALREADY_EXISTS"
        )
    target.mkdir(parents=True, exist_ok=True)
    model_file = "model.skops" if fmt == SERIALIZATION_FORMAT_SKOPS else "model.pkl"
    with open(target / model_file, "wb") as fh:
        if fmt == SERIALIZATION_FORMAT_CLOUDPICKLE:
            import cloudpickle

            cloudpickle.dump(sk_model, fh)
        elif fmt == SERIALIZATION_FORMAT_SKOPS:
            import skops.io

            fh.write(skops.io.dumps(sk_model))
        else:
            pickle.dump(sk_model, fh, protocol=pickle.DEFAULT_PROTOCOL)
    model = mlflow_model or Model()
    if signature is not None:
        model.signature = signature
    if input_example is not None:
        model.saved_input_example_info = input_example_files(target, input_example)
    if metadata:
        model.metadata = metadata
    model.add_flavor(
        "python_function",
        loader_module="mlflow.sklearn",
        model_path=model_file,
        predict_fn=pyfunc_predict_fn,
        env={"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
        python_version=_python_version(),
    )
    model.add_flavor(
        FLAVOR_NAME,
        pickled_model=model_file,
        sklearn_version=sklearn.__version__,
        serialization_format=fmt,
        code=None,
        skops_trusted_types=skops_trusted_types,
    )
    model.save(target / MLMODEL)
    requirements = list(pip_requirements or [])
    if not requirements:
        for package in ("mlflow", "scikit-learn", "numpy", fmt if fmt != "pickle" else ""):
            v = _version(package) if package else None
            if v:
                requirements.append(f"{package}=={v}")
    requirements += list(extra_pip_requirements or [])
    python_env_files(target, requirements)
    return model


def _python_version() -> str:
    import platform

    return platform.python_version()


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    conda_env: Any = None,
    code_paths: list[str] | None = None,
    serialization_format: str | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    await_registration_for: int = 300,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    name: str | None = None,
    skops_trusted_types: list[str] | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log ``sk_model`` in the active run (MLflow 3: a logged model whose files are the
    run's artifacts under ``<name>/``); ``model_uri`` is ``models:/<model id>``, and
    ``runs:/<run id>/<name>`` reaches the same files."""
    return log_model_dir(
        lambda path, model: save_model(
            sk_model,
            path,
            mlflow_model=model,
            serialization_format=serialization_format,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            pyfunc_predict_fn=pyfunc_predict_fn,
            metadata=metadata,
            skops_trusted_types=skops_trusted_types,
        ),
        name=name or artifact_path or "model",
        registered_model_name=registered_model_name,
        params=params,
        tags=tags,
        model_type=model_type,
        step=step,
    )


def log_model_dir(
    save: Any,
    *,
    name: str,
    registered_model_name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
) -> ModelInfo:
    """Create the logged model, write its directory with ``save(path, Model)``, store the
    files as run artifacts and mark the model ready."""
    global _warned_registry
    from xp.mlflow import _extras
    from xp.mlflow.tracking import fluent

    active = fluent.active_run()
    run_id = active.info.run_id if active is not None else None
    backend = fluent._backend()
    experiment_id = active.info.experiment_id if active is not None else fluent._get_experiment_id()
    logged = backend.create_logged_model(
        experiment_id,
        name,
        run_id,
        {str(k): str(v) for k, v in (tags or {}).items()},
        {str(k): str(v) for k, v in (params or {}).items()},
        model_type,
    )
    run_id = logged.source_run_id
    assert run_id is not None
    from xp.interop.mlflow_runs import parse_artifact_uri

    folder = parse_artifact_uri(logged.artifact_location)[2]
    model = Model(artifact_path=folder, run_id=run_id, model_id=logged.model_id)
    tmp = tempfile.mkdtemp(prefix="xp-mlflow-model-")
    try:
        save(os.path.join(tmp, "model"), model)
        backend.log_artifacts(run_id, os.path.join(tmp, "model"), folder)
    except BaseException:
        backend.finalize_logged_model(logged.model_id, "FAILED")
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if step:
        backend.set_model_step(run_id, logged.model_id, step)
    backend.finalize_logged_model(logged.model_id, "READY")
    if registered_model_name and not _warned_registry:
        _warned_registry = True
        _log.warning(
            "xp.mlflow: registered_model_name=%r is ignored: xp has no MLflow model registry;"
            " register the run's model with `xp model register %s %s`",
            registered_model_name,
            run_id,
            registered_model_name,
        )
    info = ModelInfo(
        artifact_path=folder,
        flavors=model.flavors,
        model_uri=f"models:/{logged.model_id}",
        model_uuid=model.model_uuid,
        run_id=run_id,
        saved_input_example_info=model.saved_input_example_info,
        signature=model.signature,
        utc_time_created=model.utc_time_created,
        mlflow_version=model.mlflow_version,
        metadata=model.metadata,
        model_id=logged.model_id,
        name=name,
        params=params,
        tags=tags,
    )
    _extras.remember_model(logged.model_id)
    return info


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """The estimator saved at ``model_uri`` (runs:/, models:/, a local path)."""
    from xp.mlflow.pyfunc import local_model

    path, model = local_model(model_uri, dst_path)
    conf = model.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise MlflowException(
            f'Model does not have the "sklearn" flavor (it has {sorted(model.flavors)})',
            "RESOURCE_DOES_NOT_EXIST",
        )
    return load_file(
        path / str(conf.get("pickled_model", "model.pkl")),
        str(conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE)),
        conf.get("skops_trusted_types"),
    )


def load_file(path: Path, fmt: str, trusted: list[str] | None = None) -> Any:
    from xp.mlflow.pyfunc import check_deserialization

    check_deserialization(path)
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        import skops.io

        return skops.io.load(path, trusted=trusted or skops.io.get_untrusted_types(file=path))
    if fmt not in SUPPORTED_SERIALIZATION_FORMATS:
        raise MlflowException(
            f"Unrecognized serialization format: {fmt}. Please specify one of the following"
            f" supported formats: {SUPPORTED_SERIALIZATION_FORMATS}.",
            "INVALID_PARAMETER_VALUE",
        )
    with open(path, "rb") as fh:
        return pickle.load(fh)


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = 5,
    log_post_training_metrics: bool = True,
    serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: dict[str, str] | None = None,
) -> None:
    """Log params, training metrics, tags and the fitted model of every ``fit`` (see
    ``xp.mlflow.sklearn._autolog``)."""
    from xp.mlflow.sklearn import _autolog

    _autolog.configure(
        disable=disable,
        log_models=log_models,
        log_datasets=log_datasets,
        log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures,
        max_tuning_runs=max_tuning_runs,
        serialization_format=serialization_format if _default_format() != "pickle" else "pickle",
        pos_label=pos_label,
        extra_tags=extra_tags or {},
        exclusive=exclusive,
    )


__all__ = [
    "FLAVOR_NAME",
    "SERIALIZATION_FORMAT_CLOUDPICKLE",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_SKOPS",
    "autolog",
    "load_model",
    "log_model",
    "save_model",
]
