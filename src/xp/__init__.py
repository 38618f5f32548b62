"""xp: git-native experiment tracking. Every run is a git commit under ``refs/xp/``.

    import xp
    with xp.start_run(name="baseline", params={"lr": 0.1}):
        xp.log_metric("loss", 0.5)

Importing xp is cheap: git, YAML and pandas load on first use.
"""

from __future__ import annotations

from typing import Any

from xp.errors import XPError
from xp.tracking.fluent import (
    ActiveRun,
    active_run,
    end_run,
    log,
    log_artifact,
    log_dict,
    log_figure,
    log_histogram,
    log_image,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_table,
    log_text,
    start_run,
)

__version__ = "0.1.0"

# Loaded on first use (PEP 562) so `import xp` stays cheap: name -> module that defines it.
_LAZY = {
    "set_tag": "xp.api",  # the active run's, or with run= a finished run's (an annotation)
    "set_tags": "xp.api",
    "delete_tag": "xp.api",
    "note": "xp.api",
    "move_run": "xp.api",
    "get_run": "xp.api",
    "list_runs": "xp.api",
    "search_runs": "xp.api",
    "get_series": "xp.api",
    "diff": "xp.api",
    "plot": "xp.api",
    "assign_stage": "xp.api",
    "deregister_model": "xp.api",
    "get_model": "xp.api",
    "register_model": "xp.api",
    "show_models": "xp.api",
    "unassign_stage": "xp.api",
    "log_production": "xp.api",
    "import_production": "xp.api",
    "production_points": "xp.api",
    "model_status": "xp.api",
    "rollback_model": "xp.api",
    "model_performance": "xp.api",
    "check_models": "xp.api",
    "read_artifact": "xp.api",
    "load_table": "xp.api",
    "get_media": "xp.api",
    "autolog": "xp.integrations",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xp' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ActiveRun",
    "XPError",
    "__version__",
    "active_run",
    "assign_stage",
    "autolog",
    "check_models",
    "delete_tag",
    "deregister_model",
    "diff",
    "end_run",
    "get_media",
    "get_model",
    "get_run",
    "get_series",
    "import_production",
    "list_runs",
    "load_table",
    "log",
    "log_artifact",
    "log_dict",
    "log_figure",
    "log_histogram",
    "log_image",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_production",
    "log_table",
    "log_text",
    "model_performance",
    "model_status",
    "move_run",
    "note",
    "plot",
    "production_points",
    "read_artifact",
    "register_model",
    "rollback_model",
    "search_runs",
    "set_tag",
    "set_tags",
    "show_models",
    "start_run",
    "unassign_stage",
]
