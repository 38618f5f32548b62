"""Values: what a logged param, metric or tag becomes, how it reads as text, and how it is
stored in the query index.

What is accepted (docs/api.md, "Values"): Python and numpy numbers of every dtype, 0-d
arrays, ``Decimal``, ``Fraction`` and anything with ``item()`` or ``__float__`` (torch and
TensorFlow scalars). Metric integers are kept exactly when they fit in 64 bits (what SQLite,
pandas and every plotting tool take as an integer) and refused beyond; param integers are
kept exactly at any size; every other number becomes the nearest double. Refusing at the call
keeps the run: a value that could not be written at ``end_run`` would lose it.

One text form everywhere: what ``xp show`` prints is what ``--where params.x = '...'``
matches, so a user can copy a cell into a filter.
"""

from __future__ import annotations

import json
import math
import numbers
import operator
from typing import Any

from xp import format as fmt
from xp.errors import InvalidValueError
from xp.record.model import format_number

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
_MAX_PARAM_INT_BITS = 14_000  # about 4,200 digits: under Python's int-to-text limit (4,300)


def _int(what: str, value: int) -> int:
    if INT_MIN <= value <= INT_MAX:
        return value
    digits = int(value.bit_length() * 0.30103) + 1  # str() of a huge int is itself refused
    raise InvalidValueError(
        f"{what} is an integer of about {digits} digits, beyond the 64-bit range xp stores"
        " exactly (-2**63 .. 2**63-1); log float(value) if an approximation will do"
    )


def _native(value: Any, depth: int = 0) -> Any:
    """A number of any type as int, float or bool; ``TypeError`` when it is not one number."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)  # numpy.float64 is a float subclass: the same double
    if isinstance(value, (str, bytes, bytearray, complex)) or (
        isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real)
    ):
        raise TypeError(type(value).__name__)
    if isinstance(value, numbers.Integral):  # numpy integers of every width
        return operator.index(value)
    if isinstance(value, numbers.Real):  # numpy floats, longdouble, Fraction
        return float(value)
    item = getattr(value, "item", None)
    if callable(item) and depth == 0:  # 0-d arrays, numpy.bool_, torch scalars
        try:
            got = item()
        except (ValueError, RuntimeError, TypeError, IndexError):
            size = getattr(value, "size", None)
            shape = f" of {size() if callable(size) else size} elements" if size else ""
            raise TypeError(f"{type(value).__name__}{shape}") from None
        return _native(got, depth + 1)
    if hasattr(value, "__index__") and not hasattr(value, "__float__"):
        return operator.index(value)
    if hasattr(value, "__float__"):
        return float(value)  # Decimal, TensorFlow scalars: the nearest double
    raise TypeError(type(value).__name__)


def metric_value(key: str, value: Any) -> int | float:
    """A metric as recorded: an int of 64 bits, or a float (NaN and infinities kept).

    ``log_metric`` calls this only for values that are not exactly ``float`` (its fast path).
    A bool is the number 0 or 1 (Python's, numpy's and MLflow's reading).
    """
    if type(value) is int:
        return _int(f"metric {key!r}", value)
    if isinstance(value, (str, bytes, bytearray)):
        raise InvalidValueError(
            f"metric {key!r} must be a number, got {type(value).__name__} {value!r:.60};"
            " record text with set_tag or log_text"
        )
    try:
        number = _native(value)
    except (TypeError, ValueError, OverflowError, ArithmeticError) as exc:
        raise InvalidValueError(
            f"metric {key!r} must be a number, got {_what(exc, value)};"
            " pass a float (e.g. float(x) or tensor.item())"
        ) from None
    if isinstance(number, bool):
        return int(number)
    if isinstance(number, int):
        return _int(f"metric {key!r}", number)
    return float(number)


def _what(exc: BaseException, value: Any) -> str:
    """What the value was, for a refusal: ``ndarray of 3 elements``, ``Decimal('sNaN') (...)``."""
    name = type(value).__name__
    text = str(exc)
    if isinstance(exc, TypeError):
        return text if text.startswith(name) else name
    return f"{name} {value!r:.40}" + (f" ({text})" if text else "")


def _param_scalar(key: str, value: Any) -> Any:
    """A scalar param value (str, int, float, bool, None), or ``TypeError`` for a value that
    is none of those (its text is recorded then)."""
    if type(value) is str:
        return fmt.check_text(value, f"param {key!r}")
    if value is None or isinstance(value, str):
        return value if value is None else fmt.check_text(str(value), f"param {key!r}")
    try:
        number = _native(value)
    except (ValueError, OverflowError, ArithmeticError) as exc:
        raise TypeError(str(exc)) from None
    if type(number) is int and number.bit_length() > _MAX_PARAM_INT_BITS:
        raise InvalidValueError(
            f"param {key!r} is an integer of more than 4,300 digits, which Python will not turn"
            " into text; log it as an artifact (log_text)"
        )
    return number


def param_value(key: str, value: Any) -> Any:
    """A param as recorded: a scalar (str, int, float, bool, None), a list of scalars,
    or else the value's text (``str(value)``), at most ``MAX_PARAM_LENGTH`` characters."""
    t = type(value)
    if t is float or t is bool or value is None:  # the common cases, cheaply
        return value
    if t is int and value.bit_length() <= _MAX_PARAM_INT_BITS:
        return value
    out: Any
    try:
        out = _param_scalar(key, value)
    except TypeError:
        out = None
        if isinstance(value, (list, tuple)) or _is_1d(value):
            items = value.tolist() if not isinstance(value, (list, tuple)) else value
            try:
                out = [_param_scalar(key, v) for v in items]
            except TypeError:
                out = None
        if out is None:
            out = _text_of(value, f"param {key!r}")
    size = len(out) if type(out) is str else len(text(out))
    if size > fmt.MAX_PARAM_LENGTH:
        raise InvalidValueError(
            f"param {key!r} is {size} characters; the limit is {fmt.MAX_PARAM_LENGTH}:"
            " log long values with log_text"
        )
    return out


def _is_1d(value: Any) -> bool:
    return getattr(value, "ndim", None) == 1 and callable(getattr(value, "tolist", None))


def _text_of(value: Any, what: str) -> str:
    try:
        out = str(value)
    except Exception as exc:  # a broken __str__ is the caller's value, not our bug
        raise InvalidValueError(
            f"{what}: str() of the {type(value).__name__} failed ({exc}); pass text"
        ) from None
    return fmt.check_text(out, what)


def tag_value(key: str, value: Any) -> str:
    """A tag as recorded: its text, valid Unicode, at most ``MAX_TAG_LENGTH`` characters."""
    out = value if type(value) is str else _text_of(value, f"tag {key!r}")
    fmt.check_text(out, f"tag {key!r}")
    if len(out) > fmt.MAX_TAG_LENGTH:
        raise InvalidValueError(
            f"tag {key!r} is {len(out)} characters; the limit is {fmt.MAX_TAG_LENGTH}"
        )
    return out


def step_value(key: str, step: Any) -> int:
    """A step: an integer (numpy's too) in 64 bits."""
    if isinstance(step, (bool, float, str, bytes)):
        raise InvalidValueError(f"step for metric {key!r} must be an integer, got {step!r}")
    try:
        number = operator.index(step)
    except TypeError:
        raise InvalidValueError(
            f"step for metric {key!r} must be an integer, got {step!r}"
        ) from None
    return _int(f"step for metric {key!r}", number)


# Milliseconds since the epoch that ISO 8601 can spell: years 1 to 9999.
MIN_TIMESTAMP_MS = -62135596800000
MAX_TIMESTAMP_MS = 253402300799999


def timestamp_value(key: str, timestamp: Any) -> float:
    """A metric timestamp in ms since the epoch -> seconds; a finite time between the years
    1 and 9999 (what ISO 8601 and pandas can show)."""
    try:
        ms = float(_native(timestamp)) if not isinstance(timestamp, bool) else math.nan
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        ms = math.nan
    if not MIN_TIMESTAMP_MS <= ms <= MAX_TIMESTAMP_MS:  # NaN fails too
        raise InvalidValueError(
            f"timestamp for metric {key!r} must be milliseconds since the epoch (years 1-9999),"
            f" got {timestamp!r}"
        )
    return ms / 1000


def seconds_value(key: str, seconds: Any) -> float:
    """A point's time in seconds since the epoch (as ``time.time()`` gives it), within
    ``timestamp_value``'s years 1-9999: a NaN or infinite time would break every flush."""
    try:
        got = float(_native(seconds)) if not isinstance(seconds, bool) else math.nan
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        got = math.nan
    if not MIN_TIMESTAMP_MS <= got * 1000 <= MAX_TIMESTAMP_MS:  # NaN fails too
        raise InvalidValueError(
            f"time for metric {key!r} must be seconds since the epoch (years 1-9999),"
            f" got {seconds!r}"
        )
    return got


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
