"""``mlflow.pyfunc``: custom ``PythonModel`` classes with artifacts and config, saved as
MLflow's model directory (real MLflow loads it, and xp loads MLflow's), and MLflow's refusals."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from xp.mlflow.pyfunc import PythonModel


class Scaled(PythonModel):
    """Multiplies by the factor in its artifact file; adds model_config's offset."""

    def load_context(self, context: Any) -> None:
        self.factor = float(Path(context.artifacts["factor"]).read_text())
        self.offset = float(context.model_config.get("offset", 0))
        self.vocab = sorted(p.name for p in Path(context.artifacts["vocab"]).iterdir())

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        extra = (params or {}).get("extra", 0)
        return [v * self.factor + self.offset + extra for v in model_input]


class Plain(PythonModel):
    def predict(self, model_input: Any) -> Any:  # type: ignore[override]  # MLflow allows it
        return [str(v) for v in model_input]


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "factor.txt").write_text("3")
    (tmp_path / "vocab").mkdir()
    for word in ("b", "a"):
        (tmp_path / "vocab" / word).write_text(word)
    return {"factor": str(tmp_path / "factor.txt"), "vocab": str(tmp_path / "vocab")}


def test_python_model_with_artifacts_and_config(
    xpmlflow: ModuleType, sources: dict[str, str]
) -> None:
    with xpmlflow.start_run():
        info = xpmlflow.pyfunc.log_model(
            name="scaled",
            python_model=Scaled(),
            artifacts=sources,
            model_config={"offset": 1},
            metadata={"owner": "me"},
            pip_requirements=["numpy"],
        )
    loaded = xpmlflow.pyfunc.load_model(info.model_uri)
    assert loaded.predict([1, 2]) == [4.0, 7.0]
    assert loaded.predict([1], params={"extra": 10}) == [14.0]
    model = loaded.unwrap_python_model()
    assert isinstance(model, Scaled)
    assert model.vocab == ["a", "b"]
    assert loaded.get_raw_model() is model
    assert loaded.metadata.metadata == {"owner": "me"}
    assert loaded.model_id == info.model_id
    assert loaded.loader_module == "mlflow.pyfunc.model"
    assert "flavor: mlflow.pyfunc.model" in repr(loaded)
    # the config given at load time wins over the saved one
    again = xpmlflow.pyfunc.load_model(info.model_uri, model_config={"offset": 100})
    assert again.predict([0]) == [100.0]
    files = {f.path for f in xpmlflow.artifacts.list_artifacts(info.model_uri)}
    assert {"artifacts", "MLmodel", "python_model.pkl", "requirements.txt"} <= {
        p.split("/")[-1] for p in files
    }


def test_predict_without_context(xpmlflow: ModuleType, tmp_path: Path) -> None:
    xpmlflow.pyfunc.save_model(str(tmp_path / "plain"), python_model=Plain())
    assert xpmlflow.pyfunc.load_model(str(tmp_path / "plain")).predict([1, 2]) == ["1", "2"]


def test_refusals(xpmlflow: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    errors = xpmlflow.exceptions.MlflowException
    with pytest.raises(errors, match="need python_model="):
        xpmlflow.pyfunc.save_model(str(tmp_path / "none"))
    xpmlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=Plain())
    with pytest.raises(errors, match="already exists and is not empty") as e:
        xpmlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=Plain())
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(errors, match="custom loader_module need MLflow itself"):
        xpmlflow.pyfunc.log_model(name="x", loader_module="my.loader", data_path="d")
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors, match='Could not find an "MLmodel" configuration file'):
        xpmlflow.pyfunc.load_model(str(tmp_path / "empty"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "MLmodel").write_text("flavors:\n  keras: {}\n")
    with pytest.raises(errors, match='does not have the "python_function" flavor'):
        xpmlflow.pyfunc.load_model(str(tmp_path / "other"))
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.onnx\n"
    )
    with pytest.raises(errors, match=r"'mlflow\.onnx' needs MLflow itself") as e:
        xpmlflow.pyfunc.load_model(str(tmp_path / "onnx"))
    assert e.value.error_code == "NOT_IMPLEMENTED"
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    with pytest.raises(errors, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION is false"):
        xpmlflow.pyfunc.load_model(str(tmp_path / "m"))
