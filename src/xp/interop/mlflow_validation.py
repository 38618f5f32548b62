"""MLflow's checks of names and values, with MLflow's messages and error codes.

Scripts and tests written for MLflow match on these messages (``"Changing param values is
not allowed"``, ``"Please specify value as a valid double"``), so the bridge checks first in
MLflow's words. xp's own rules then still apply (a name part may not start or end with a
space, because names become file paths); their refusals come back as MlflowException too.
"""

from __future__ import annotations

import json
import logging
import numbers
import os
import posixpath
import re
from typing import Any

from xp.errors import MlflowException

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
MAX_EXPERIMENT_NAME_LENGTH = 500
RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
EXPERIMENT_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,63}$")
_NAME_RE = re.compile(r"^[/\w.\- :]*$")
_BAD_CHARACTERS = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
    " spaces ( ), colon(:) and slashes (/)."
)
_log = logging.getLogger("xp.mlflow")


def _bad(message: str) -> MlflowException:
    return MlflowException(message, "INVALID_PARAMETER_VALUE")


def invalid_value(path: str, value: Any, message: str | None = None) -> str:
    try:
        shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        shown = json.dumps(str(value))
    head = f"Invalid value {shown} for parameter '{path}' supplied"
    return f"{head}: {message}" if message else f"{head}."


def join_path(base: str, leaf: str) -> str:
    return leaf if not base else f"{base}.{leaf}"


def _path_not_unique(name: str) -> bool:
    norm = posixpath.normpath(name)
    return norm != name or norm == "." or norm.startswith("..") or norm.startswith("/")


def _bad_path(name: str) -> str:
    return (
        "Names may be treated as files in certain cases, and must not resolve to other names"
        f" when treated as such. This name would resolve to {posixpath.normpath(name)!r}"
    )


def _xp_rule(name: str, path: str) -> None:
    """xp's extra rule: a name part that starts or ends with a space cannot be a file."""
    if any(part != part.strip() for part in name.split("/")):
        raise _bad(
            invalid_value(
                path,
                name,
                "xp stores names as file paths, so no part of a name may start or end with a"
                " space; rename it",
            )
        )


def check_name(name: Any, path: str, kind: str) -> str:
    """A metric, param or tag name (``kind``: metric, param or tag)."""
    if name is None:
        if kind == "metric":
            raise _bad(
                invalid_value(
                    path, None, "Metric name cannot be None. A key name must be provided."
                )
            )
        if kind == "param":
            raise _bad(invalid_value(path, "", "A key name must be provided."))
        raise _bad(f"Missing value for required parameter '{path}'.")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _bad(invalid_value(path, name, _BAD_CHARACTERS))
    if _path_not_unique(name):
        raise _bad(invalid_value(path, name, _bad_path(name)))
    if len(name) > MAX_KEY_LENGTH:
        what = {"metric": "Metric name", "param": "Param key"}.get(kind, path)
        raise _bad(f"'{what}' exceeds the maximum length of {MAX_KEY_LENGTH} characters")
    _xp_rule(name, path)
    return name


def truncate(what: str, value: str, limit: int) -> str:
    """MLflow truncates long param and tag values (with a warning) unless told not to."""
    if len(value) <= limit:
        return value
    if os.environ.get("MLFLOW_TRUNCATE_LONG_VALUES", "true").lower() in ("false", "0", "no"):
        raise _bad(f"'{what}' exceeds the maximum length of {limit} characters")
    _log.warning(
        "%s '%s...' (%d characters) is truncated to %d characters to meet the length limit.",
        what,
        value[:100],
        len(value),
        limit,
    )
    return value[:limit]


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def check_metric(key: Any, value: Any, timestamp: Any, step: Any, path: str = "") -> float:
    """The value as a float; MLflow's messages for a bad name, value, timestamp or step."""
    check_name(key, join_path(path, "name"), "metric")
    if value is None:
        raise _bad(f"Missing value for required parameter '{join_path(path, 'value')}'.")
    if not is_number(value):
        raise _bad(
            invalid_value(
                join_path(path, "value"),
                value,
                f"(timestamp={timestamp}). Please specify value as a valid double (64-bit"
                " floating point)",
            )
        )
    if not is_number(timestamp) or timestamp < 0:
        raise _bad(
            invalid_value(
                join_path(path, "timestamp"),
                timestamp,
                f"metric '{key}' (value={value}). Timestamp must be a nonnegative long (64-bit"
                " integer) ",
            )
        )
    if not is_number(step) or int(step) != step:
        raise _bad(
            invalid_value(
                join_path(path, "step"),
                step,
                f"metric '{key}' (value={value}). Step must be a valid long (64-bit integer).",
            )
        )
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise _bad(
            invalid_value(
                join_path(path, "value"),
                str(value),
                "Please specify value as a valid double (64-bit floating point)",
            )
        ) from None


def check_experiment_name(name: Any) -> str:
    if name is None or name == "":
        raise _bad(f"Invalid experiment name: '{name}'")
    if not isinstance(name, str):
        raise _bad(f"Invalid experiment name: {name}. Expects a string.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise _bad(f"'name' exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH} characters")
    return name


def check_run_id(run_id: Any, path: str = "run_id") -> str:
    if not isinstance(run_id, str) or RUN_ID_RE.match(run_id) is None:
        raise _bad(invalid_value(path, run_id))
    return run_id


def check_unique_params(keys: list[str]) -> None:
    seen: set[str] = set()
    dupes = []
    for key in keys:
        if key in seen:
            dupes.append(key)
        seen.add(key)
    if dupes:
        raise _bad(
            f"Duplicate parameter keys have been submitted: {dupes}. Please ensure the request"
            " contains only one param value per param key."
        )
