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
    """Autologging for every supported library that is installed: scikit-learn. Other
    libraries' autologging needs MLflow itself (MLFLOW_TRACKING_URI=xp: keeps runs in git)."""
    if importlib.util.find_spec("sklearn") is not None and "sklearn" not in (exclude_flavors or []):
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
