"""``mlflow.models``: the MLmodel metadata (``Model``), signatures (``infer_signature``) and
what ``log_model`` returns (``ModelInfo``).

A model directory written by ``xp.mlflow`` is an MLflow model directory (``MLmodel``, the
serialized model, ``requirements.txt``, ``python_env.yaml``, ``conda.yaml``): real MLflow
loads it, and ``xp.mlflow`` loads MLflow's (for the flavors it supports).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import uuid
from pathlib import Path
from typing import Any

MLMODEL = "MLmodel"


def _spec(data: Any) -> list[dict[str, Any]]:
    """A column spec for a DataFrame, a tensor spec for arrays (MLflow's JSON shapes)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        from xp.mlflow.data import colspec

        return colspec(data)
    if isinstance(data, pd.Series):
        from xp.mlflow.data import colspec

        return colspec(data.to_frame(name=data.name if data.name is not None else 0))
    import numpy as np

    array = np.asarray(data)
    shape = [-1, *array.shape[1:]] if array.ndim else [-1]
    return [{"type": "tensor", "tensor-spec": {"dtype": str(array.dtype), "shape": shape}}]


class ModelSignature:
    """The inputs and outputs a model expects, as MLflow writes them in ``MLmodel``."""

    def __init__(
        self,
        inputs: list[dict[str, Any]] | None = None,
        outputs: list[dict[str, Any]] | None = None,
        params: Any = None,
    ) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.params = params

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": None if self.inputs is None else json.dumps(self.inputs),
            "outputs": None if self.outputs is None else json.dumps(self.outputs),
            "params": None if self.params is None else json.dumps(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSignature:
        def load(v: Any) -> Any:
            return json.loads(v) if isinstance(v, str) else v

        return cls(load(d.get("inputs")), load(d.get("outputs")), load(d.get("params")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSignature) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"<ModelSignature inputs={self.inputs} outputs={self.outputs}>"


def infer_signature(
    model_input: Any = None, model_output: Any = None, params: dict[str, Any] | None = None
) -> ModelSignature:
    return ModelSignature(
        None if model_input is None else _spec(model_input),
        None if model_output is None else _spec(model_output),
        None
        if not params
        else [
            {"name": k, "type": type(v).__name__, "default": v, "shape": None}
            for k, v in params.items()
        ],
    )


class Model:
    """The contents of an ``MLmodel`` file."""

    def __init__(
        self,
        artifact_path: str | None = None,
        run_id: str | None = None,
        utc_time_created: str | None = None,
        flavors: dict[str, Any] | None = None,
        signature: ModelSignature | None = None,
        saved_input_example_info: dict[str, Any] | None = None,
        model_uuid: str | None = None,
        model_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        mlflow_version: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.artifact_path = artifact_path
        self.run_id = run_id
        self.utc_time_created = utc_time_created or datetime.datetime.now(
            datetime.timezone.utc
        ).strftime("%Y-%m-%d %H:%M:%S.%f")
        self.flavors = flavors or {}
        self.signature = signature
        self.saved_input_example_info = saved_input_example_info
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.model_id = model_id
        self.metadata = metadata
        self.mlflow_version = mlflow_version
        self.__dict__.update(kwargs)

    def add_flavor(self, name: str, **params: Any) -> Model:
        self.flavors[name] = params
        return self

    def get_input_schema(self) -> Any:
        return self.signature.inputs if self.signature else None

    def get_output_schema(self) -> Any:
        return self.signature.outputs if self.signature else None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v is not None}
        if self.signature is not None:
            out["signature"] = self.signature.to_dict()
        return out

    def to_yaml(self) -> str:
        import yaml

        return str(yaml.safe_dump(self.to_dict(), default_flow_style=False, sort_keys=True))

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.to_yaml())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        import yaml

        target = Path(path)
        if target.is_dir():
            target = target / MLMODEL
        data = yaml.safe_load(target.read_text()) or {}
        signature = data.pop("signature", None)
        model = cls(**data)
        if signature:
            model.signature = ModelSignature.from_dict(signature)
        return model


class ModelInfo:
    """What ``log_model`` returns: where the model is and what it is."""

    def __init__(
        self,
        artifact_path: str,
        flavors: dict[str, Any],
        model_uri: str,
        model_uuid: str,
        run_id: str | None,
        saved_input_example_info: dict[str, Any] | None,
        signature: ModelSignature | None,
        utc_time_created: str,
        mlflow_version: str | None,
        metadata: dict[str, Any] | None = None,
        model_id: str | None = None,
        name: str | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        registered_model_version: int | None = None,
    ) -> None:
        self.artifact_path = artifact_path
        self.flavors = flavors
        self.model_uri = model_uri
        self.model_uuid = model_uuid
        self.run_id = run_id
        self.saved_input_example_info = saved_input_example_info
        self.signature = signature
        self.utc_time_created = utc_time_created
        self.mlflow_version = mlflow_version
        self.metadata = metadata
        self.model_id = model_id
        self.name = name
        self.params = params or {}
        self.tags = tags or {}
        self.registered_model_version = registered_model_version
        self.metrics = None
        self.env_vars = None
        self.prompts = None
        self.creation_timestamp = None

    @property
    def signature_dict(self) -> dict[str, Any] | None:
        return self.signature.to_dict() if self.signature else None

    def __repr__(self) -> str:
        return f"<ModelInfo model_uri={self.model_uri!r} flavors={list(self.flavors)}>"


def python_env_files(path: Path, requirements: list[str]) -> None:
    """``requirements.txt``, ``python_env.yaml`` and ``conda.yaml`` as MLflow writes them."""
    import yaml

    version = platform.python_version()
    (path / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    (path / "python_env.yaml").write_text(
        yaml.safe_dump(
            {
                "python": version,
                "build_dependencies": ["pip", "setuptools", "wheel"],
                "dependencies": ["-r requirements.txt"],
            },
            sort_keys=False,
        )
    )
    (path / "conda.yaml").write_text(
        yaml.safe_dump(
            {
                "channels": ["conda-forge"],
                "dependencies": [f"python={version}", "pip", {"pip": requirements}],
                "name": "mlflow-env",
            },
            sort_keys=False,
        )
    )


def input_example_files(path: Path, example: Any) -> dict[str, Any]:
    """Write ``input_example.json`` (MLflow's shape for DataFrames and arrays)."""
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        doc: Any = json.loads(example.to_json(orient="split", index=False))
        kind = "dataframe"
    else:
        doc = np.asarray(example).tolist()
        kind = "ndarray"
    (path / "input_example.json").write_text(json.dumps(doc))
    serving = {"dataframe_split": doc} if kind == "dataframe" else {"inputs": doc}
    (path / "serving_input_example.json").write_text(json.dumps(serving, indent=2))
    info = {
        "artifact_path": "input_example.json",
        "serving_input_path": "serving_input_example.json",
        "type": kind,
    }
    if kind == "dataframe":
        info["pandas_orient"] = "split"
    return info


def set_signature(model_uri: str, signature: ModelSignature) -> None:
    from xp.errors import MlflowException

    raise MlflowException(
        "xp.mlflow: set_signature cannot change a logged model (runs are commits); pass"
        " signature= to log_model",
        "NOT_IMPLEMENTED",
    )


def __getattr__(name: str) -> Any:
    if name in ("build_docker", "predict", "serve"):
        from xp.errors import MlflowException

        raise MlflowException(
            "xp.mlflow: model serving is not supported; load the model with"
            " xp.mlflow.pyfunc.load_model(uri) and serve it yourself, or use MLflow itself",
            "NOT_IMPLEMENTED",
        )
    raise AttributeError(f"module 'xp.mlflow.models' has no attribute {name!r}")


__all__ = ["Model", "ModelInfo", "ModelSignature", "infer_signature", "set_signature"]
