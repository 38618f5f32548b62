"""Top-level names loaded on first use: ``mlflow.autolog``, ``mlflow.Image``,
``mlflow.last_logged_model``, ``mlflow.get_logged_model``."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

_log = logging.getLogger("xp.mlflow")
_last_model_id: str | None = None


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    log_traces: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: dict[str, str] | None = None,
    exclude_flavors: list[str] | None = None,
) -> None:
    """Autologging for every supported library that is installed: scikit-learn (MLflow's
    ``mlflow.sklearn.autolog``), XGBoost, LightGBM and CatBoost (xp's integrations, MLflow's
    metric names), each also when imported later. Training logs into the active
    ``mlflow.start_run()`` run, or into a run of its own. Other libraries' autologging needs
    MLflow itself (MLFLOW_TRACKING_URI=xp: keeps runs in git)."""
    excluded = set(exclude_flavors or [])
    if importlib.util.find_spec("sklearn") is not None and "sklearn" not in excluded:
        from xp.mlflow.sklearn import autolog as sklearn_autolog

        sklearn_autolog(
            log_input_examples=log_input_examples,
            log_model_signatures=log_model_signatures,
            log_models=log_models,
            log_datasets=log_datasets,
            disable=disable,
            exclusive=exclusive,
            silent=silent,
            extra_tags=extra_tags,
        )
    from xp.integrations.common import add_active_source

    add_active_source(_active_live_run)
    for name in _FRAMEWORKS:
        if name not in excluded:
            module = importlib.import_module(f"xp.integrations.{name}")
            module.autolog(log_models=log_models, disable=disable)


_FRAMEWORKS = ("xgboost", "lightgbm", "catboost")  # xp.integrations' autologs


def _active_live_run() -> Any:
    """The xp run behind ``mlflow.active_run()``, for the integrations to log into."""
    from xp.interop.mlflow_runs import live_run
    from xp.mlflow.tracking import fluent

    active = fluent.active_run()
    if active is None:
        return None
    return live_run(fluent._backend().repo, active.info.run_id)


class Image:
    """MLflow's image value (a table cell, ``log_image``): from a numpy array, a PIL image
    or nested lists."""

    def __init__(self, image: Any) -> None:
        from xp.mlflow.tracking.client import to_pil_image

        if isinstance(image, list):
            import numpy as np

            image = np.asarray(image, dtype=np.uint8)
        self.image = to_pil_image(image)

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.image.size
        return int(width), int(height)

    def to_pil(self) -> Any:
        return self.image

    def to_array(self) -> Any:
        import numpy as np

        return np.array(self.image)

    def save(self, path: str) -> None:
        self.image.save(path)

    def resize(self, size: tuple[int, int]) -> Image:
        return Image(self.image.resize(size))


def remember_model(model_id: str) -> None:
    global _last_model_id
    _last_model_id = model_id


def last_logged_model() -> Any:
    """The model the last ``log_model`` of this process logged (None before any)."""
    return None if _last_model_id is None else get_logged_model(_last_model_id)


def get_logged_model(model_id: str) -> Any:
    from xp.mlflow.tracking import fluent

    return fluent._backend().get_logged_model(model_id)
