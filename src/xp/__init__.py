"""xp: git-native experiment tracking. Every run is a git commit under ``refs/xp/``.

    import xp
    with xp.start_run(name="baseline", params={"lr": 0.1}):
        xp.log_metric("loss", 0.5)

Importing xp is cheap: git, YAML and pandas load on first use.
"""

from __future__ import annotations

from xp.errors import XPError
from xp.fluent import (
    ActiveRun,
    active_run,
    end_run,
    log_artifact,
    log_dict,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    set_tag,
    set_tags,
    start_run,
)
from xp.store import get_run, list_runs

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "XPError",
    "__version__",
    "active_run",
    "end_run",
    "get_run",
    "list_runs",
    "log_artifact",
    "log_dict",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "set_tag",
    "set_tags",
    "start_run",
]
