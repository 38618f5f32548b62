"""Logging from where people train: one module per framework, each importing its framework
only when used, so ``import xp`` stays fast (docs/integrations.md).

- ``sklearn``, ``xgboost``, ``lightgbm``, ``catboost``: ``autolog()`` and callbacks
- ``lightning``: ``XPLogger``; ``transformers``: ``XPCallback`` and ``report_to="xp"``;
  ``keras``: ``XPCallback``; ``optuna``: ``XPCallback`` (a child run per trial)
- ``tensorboard``: ``xp import tensorboard`` / ``xp export tensorboard``
- ``wandb``, ``comet``: what ``import xp.wandb as wandb`` / ``import xp.comet as comet_ml`` run

``xp.autolog()`` turns on every autolog at once, for frameworks imported now or later.
"""

from __future__ import annotations

AUTOLOG_FRAMEWORKS = ("sklearn", "xgboost", "lightgbm", "catboost")


def autolog(
    *,
    log_models: bool = True,
    disable: bool = False,
    exclude: tuple[str, ...] = (),
) -> None:
    """Autolog scikit-learn, XGBoost, LightGBM and CatBoost training, whichever are (or get)
    imported: MLflow's ``mlflow.autolog()``. ``exclude`` names frameworks to leave alone;
    ``disable=True`` undoes it."""
    import importlib

    for name in AUTOLOG_FRAMEWORKS:
        if name in exclude:
            continue
        module = importlib.import_module(f"xp.integrations.{name}")
        module.autolog(log_models=log_models, disable=disable)
