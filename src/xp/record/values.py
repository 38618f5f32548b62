"""How a param, metric or tag value reads as text, and how it is stored in the query index.

One text form everywhere: what ``xp show`` prints is what ``--where params.x = '...'``
matches, so a user can copy a cell into a filter.
"""

from __future__ import annotations

import json
import math
from typing import Any

from xp.record.model import format_number

# Inside index JSON: NaN is null (SQLite's JSON has no NaN) and +-inf is +-1e999, which
# SQLite and Python both read back as infinity. The marker cannot occur in real text.
_INF = "\0xp-inf\0"
_NEG_INF = "\0xp-neginf\0"
_INF_JSON = json.dumps(_INF)
_NEG_INF_JSON = json.dumps(_NEG_INF)


def text(value: Any) -> str:
    """The canonical text of a value: YAML spelling for bools and null, repr for floats."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(text(v) for v in value) + "]"
    return str(value)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metric_cell(value: Any) -> Any:
    """A metric as the index stores it: a number, None for NaN, text for a non-number."""
    if not is_number(value):
        return text(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return _INF if value > 0 else _NEG_INF
    return value


def param_cell(value: Any) -> Any:
    """A param as stored: JSON-able as it is, non-finite floats as their text."""
    if isinstance(value, float) and not math.isfinite(value):
        return text(value)
    if isinstance(value, (list, tuple)):
        return [param_cell(v) for v in value]
    if isinstance(value, dict):
        return text(value)
    return value


def dumps(data: dict[str, Any]) -> str:
    out = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if "xp-" in out:
        out = out.replace(_INF_JSON, "1e999").replace(_NEG_INF_JSON, "-1e999")
    return out


def json_safe(value: Any) -> Any:
    """Strict JSON: NaN becomes null and infinities the strings "inf" / "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else text(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
