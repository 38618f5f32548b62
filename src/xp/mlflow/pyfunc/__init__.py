"""``mlflow.pyfunc``: load a model as a generic predictor (``load_model(uri).predict``), and
log custom ``PythonModel`` classes.

Loading a model runs its pickled code. As in MLflow, ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION``
set to false forbids it; xp also refuses, unless that variable is set to true, a model of a
run that was not recorded in this clone (a run fetched from someone else), as ``xp
reproduce`` asks before running someone else's command.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from xp.errors import MlflowException
from xp.mlflow.models import MLMODEL, Model

_trusted_paths: set[str] = set()


def local_model(model_uri: str, dst_path: str | None = None) -> tuple[Path, Model]:
    """A local copy of the model directory at ``model_uri`` and its MLmodel."""
    from xp.mlflow.artifacts import local_copy, locate

    found = locate(str(model_uri))
    local = Path(local_copy(str(model_uri), dst_path))
    if not isinstance(found, Path):
        backend, run_id, _path = found
        from xp import format as fmt
        from xp.gitstore.refs import read_ref

        if read_ref(backend.repo.common_dir, fmt.run_ref(run_id)) is not None:
            _trusted_paths.add(str(local.resolve()))
    else:
        _trusted_paths.add(str(local.resolve()))
    if not (local / MLMODEL).is_file():
        raise MlflowException(
            f'Could not find an "MLmodel" configuration file at "{model_uri}"',
            "RESOURCE_DOES_NOT_EXIST",
        )
    return local, Model.load(local / MLMODEL)


def check_deserialization(path: Path) -> None:
    """Refuse to unpickle what the user did not choose to trust (see the module's doc)."""
    allowed = os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "").strip().lower()
    if allowed in ("false", "0", "no"):
        raise MlflowException(
            "Deserializing this model is disallowed because MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
            " is false; loading a model runs code from it. Set it to true to allow loading."
        )
    real = str(path.resolve())
    trusted = any(real == t or real.startswith(t + os.sep) for t in _trusted_paths)
    if not trusted and allowed not in ("true", "1", "yes"):
        raise MlflowException(
            "xp.mlflow: this model comes from a run fetched from someone else, and loading it"
            " runs code it contains; set MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true if you trust"
            " it"
        )


class PythonModel:
    """Base class of custom models: override ``predict(context, model_input, params=None)``
    and optionally ``load_context(context)``."""

    def load_context(self, context: PythonModelContext) -> None:
        return None

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError


class PythonModelContext:
    def __init__(self, artifacts: dict[str, str], model_config: dict[str, Any] | None = None):
        self.artifacts = artifacts
        self.model_config = model_config or {}


class PyFuncModel:
    """What ``load_model`` returns: ``predict(data)``, ``metadata`` (the MLmodel),
    ``unwrap_python_model()`` and ``get_raw_model()``."""

    def __init__(self, model_meta: Model, impl: Any, predict_fn: str = "predict") -> None:
        self._meta = model_meta
        self._impl = impl
        self._predict_fn = predict_fn

    @property
    def metadata(self) -> Model:
        return self._meta

    @property
    def model_id(self) -> str | None:
        return self._meta.model_id

    @property
    def loader_module(self) -> str:
        return str(self._meta.flavors.get("python_function", {}).get("loader_module"))

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        if isinstance(self._impl, _PythonModelWrapper):
            return self._impl.predict(data, params)
        return getattr(self._impl, self._predict_fn)(data)

    def unwrap_python_model(self) -> Any:
        if not isinstance(self._impl, _PythonModelWrapper):
            raise MlflowException(
                "Can only unwrap PythonModel (custom) models; this is a"
                f" {self.loader_module} model, see get_raw_model()"
            )
        return self._impl.model

    def get_raw_model(self) -> Any:
        return self._impl.model if isinstance(self._impl, _PythonModelWrapper) else self._impl

    def __repr__(self) -> str:
        return f"mlflow.pyfunc.loaded_model:\n  flavor: {self.loader_module}"


class _PythonModelWrapper:
    def __init__(self, model: Any, context: PythonModelContext) -> None:
        self.model = model
        self.context = context

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import inspect

        sig = inspect.signature(self.model.predict)
        args: list[Any] = [data]
        if "context" in sig.parameters or len(sig.parameters) >= 2:
            args = [self.context, data]
        if params is not None and "params" in sig.parameters:
            return self.model.predict(*args, params=params)
        return self.model.predict(*args)


def load_model(
    model_uri: str,
    suppress_warnings: bool = False,
    dst_path: str | None = None,
    model_config: dict[str, Any] | None = None,
) -> PyFuncModel:
    """A model with ``predict``: scikit-learn models and ``PythonModel`` classes."""
    path, model = local_model(model_uri, dst_path)
    conf = model.flavors.get("python_function")
    if conf is None:
        raise MlflowException(
            f'Model does not have the "python_function" flavor: {sorted(model.flavors)}',
            "RESOURCE_DOES_NOT_EXIST",
        )
    loader = conf.get("loader_module")
    if loader == "mlflow.sklearn":
        from xp.mlflow.sklearn import load_file

        sk = model.flavors.get("sklearn", {})
        impl = load_file(
            path / str(conf.get("model_path") or sk.get("pickled_model", "model.pkl")),
            str(sk.get("serialization_format", "pickle")),
            sk.get("skops_trusted_types"),
        )
        return PyFuncModel(model, impl, str(conf.get("predict_fn") or "predict"))
    if loader == "mlflow.pyfunc.model":
        check_deserialization(path / str(conf.get("python_model", "python_model.pkl")))
        import pickle

        with open(path / str(conf.get("python_model", "python_model.pkl")), "rb") as fh:
            python_model = pickle.load(fh)
        artifacts = {
            name: str(path / spec["path"]) for name, spec in (conf.get("artifacts") or {}).items()
        }
        context = PythonModelContext(artifacts, model_config or conf.get("model_config"))
        python_model.load_context(context)
        return PyFuncModel(model, _PythonModelWrapper(python_model, context))
    raise MlflowException(
        f"xp.mlflow: the model flavor {loader!r} needs MLflow itself to load (pip install"
        " mlflow); xp.mlflow loads scikit-learn models and PythonModel classes",
        "NOT_IMPLEMENTED",
    )


def save_model(
    path: str | os.PathLike[str],
    python_model: Any = None,
    artifacts: dict[str, str] | None = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    model_config: dict[str, Any] | None = None,
    mlflow_model: Model | None = None,
    metadata: dict[str, Any] | None = None,
    **_ignored: Any,
) -> Model:
    """Write a ``PythonModel`` (cloudpickled) and its artifact files as a model directory
    MLflow's ``mlflow.pyfunc.model`` loader reads."""
    import shutil

    from xp.mlflow.models import input_example_files, python_env_files

    if python_model is None:
        raise MlflowException(
            "xp.mlflow: save_model/log_model need python_model= (a PythonModel); for other"
            " models use the flavor's own log_model (xp.mlflow.sklearn)",
            "INVALID_PARAMETER_VALUE",
        )
    try:
        import cloudpickle as pickler
    except ImportError:
        import pickle as pickler
    target = Path(path)
    if target.exists() and any(target.iterdir()):
        raise MlflowException(
            f"Path '{target}' already exists and is not empty", "RESOURCE_ALREADY_EXISTS"
        )
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "python_model.pkl", "wb") as fh:
        pickler.dump(python_model, fh)
    copied = {}
    for name, source in (artifacts or {}).items():
        from xp.mlflow.artifacts import local_copy

        local = Path(local_copy(source))
        dest = target / "artifacts" / local.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if local.is_dir():
            shutil.copytree(local, dest)
        else:
            shutil.copyfile(local, dest)
        copied[name] = {"path": f"artifacts/{local.name}", "uri": source}
    model = mlflow_model or Model()
    if signature is not None:
        model.signature = signature
    if input_example is not None:
        model.saved_input_example_info = input_example_files(target, input_example)
    if metadata:
        model.metadata = metadata
    import platform

    flavor: dict[str, Any] = {
        "loader_module": "mlflow.pyfunc.model",
        "python_model": "python_model.pkl",
        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
        "python_version": platform.python_version(),
    }
    if copied:
        flavor["artifacts"] = copied
    if model_config:
        flavor["model_config"] = model_config
    model.add_flavor("python_function", **flavor)
    model.save(target / MLMODEL)
    requirements = list(pip_requirements or [])
    if not requirements:
        from importlib.metadata import PackageNotFoundError, version

        for package in ("mlflow", "cloudpickle"):
            try:
                requirements.append(f"{package}=={version(package)}")
            except PackageNotFoundError:
                continue
    python_env_files(target, requirements + list(extra_pip_requirements or []))
    return model


def log_model(
    artifact_path: str | None = None,
    loader_module: str | None = None,
    data_path: str | None = None,
    code_paths: list[str] | None = None,
    conda_env: Any = None,
    python_model: Any = None,
    artifacts: dict[str, str] | None = None,
    registered_model_name: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    **kwargs: Any,
) -> Any:
    from xp.mlflow.sklearn import log_model_dir

    if loader_module is not None:
        raise MlflowException(
            "xp.mlflow: pyfunc models with a custom loader_module need MLflow itself; use"
            " python_model= (a PythonModel)",
            "NOT_IMPLEMENTED",
        )
    return log_model_dir(
        lambda path, model: save_model(
            path,
            python_model=python_model,
            artifacts=artifacts,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            model_config=model_config,
            mlflow_model=model,
            metadata=metadata,
        ),
        name=name or artifact_path or "model",
        registered_model_name=registered_model_name,
        params=params,
        tags=tags,
        model_type=model_type,
        step=step,
    )


def spark_udf(*args: Any, **kwargs: Any) -> Any:
    raise MlflowException(
        "xp.mlflow: spark_udf is not supported; load the model with"
        " xp.mlflow.pyfunc.load_model(uri) and call predict",
        "NOT_IMPLEMENTED",
    )


def _tmp() -> str:
    return tempfile.mkdtemp(prefix="xp-mlflow-")


__all__ = [
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "load_model",
    "log_model",
    "save_model",
    "spark_udf",
]
