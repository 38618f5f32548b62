"""W&B's Python API over xp runs: ``import xp.wandb as wandb`` and W&B code runs unchanged.

``wandb.init``, ``wandb.config``, ``wandb.log``, ``wandb.summary``, ``wandb.Image`` /
``Table`` / ``Histogram`` / ``Html`` / ``Artifact``, ``wandb.finish``, ``wandb.watch``,
``wandb.define_metric``, ``wandb.save``, resume by id. How each maps onto a run:
``xp.integrations.wandb`` and docs/integrations.md.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from xp.errors import XPError
from xp.integrations import wandb as _impl
from xp.integrations.wandb import (
    Artifact,
    Config,
    Histogram,
    Html,
    Image,
    Run,
    Summary,
    Table,
    define_metric,
    finish,
    generate_id,
    init,
    log,
    log_artifact,
    login,
    save,
    watch,
)

util = SimpleNamespace(generate_id=generate_id)
errors = SimpleNamespace(Error=XPError, CommError=XPError, UsageError=XPError)


def __getattr__(name: str) -> Any:
    """``wandb.run``, ``wandb.config``, ``wandb.summary``: the active run's, read live."""
    if name in ("run", "config", "summary"):
        return getattr(_impl, name)
    raise AttributeError(f"module 'xp.wandb' has no attribute {name!r}")


__all__ = [
    "Artifact",
    "Config",
    "Histogram",
    "Html",
    "Image",
    "Run",
    "Summary",
    "Table",
    "define_metric",
    "errors",
    "finish",
    "generate_id",
    "init",
    "log",
    "log_artifact",
    "login",
    "save",
    "util",
    "watch",
]
