"""The runs' value arrays (``runs.doc``, JSON written by the index) parsed in bulk.

orjson parses them 2-2.5x faster than ``json`` (the floor of ``xp show -a`` and
``search_runs``), and gives the same values but in one case: an integer beyond 64 bits,
which it reads as a float. Such a float's magnitude reaches 2**63, so a caller checks the
columns it uses with ``wide_floats`` (a few C-level calls per column) and parses those
arrays again with ``json`` only where one does. Texts orjson refuses (``Infinity``, a lone
surrogate's escape) are parsed by ``json`` too. orjson is imported when first used:
``import xp`` and ``xp --help`` do not load it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

_WIDE = 2.0**63  # the smallest magnitude of a float orjson makes of an integer


@functools.cache
def _orjson_loads() -> Callable[[str], Any] | None:
    try:
        import orjson
    except ImportError:  # a required dependency; an install without it still reads runs
        return None
    return orjson.loads


def fast() -> bool:
    """Whether orjson parses (else ``loads`` is ``json.loads``)."""
    return _orjson_loads() is not None


def loads(text: str) -> Any:
    """``json.loads(text)`` of a text the index wrote, by orjson where it can: the caller
    checks the result's floats with ``wide_floats`` before trusting its integers."""
    fast = _orjson_loads()
    if fast is not None:
        try:
            return fast(text)
        except ValueError:  # orjson.JSONDecodeError is one: e.g. Infinity, "\ud800"
            pass
    return json.loads(text)


def parse(docs: Sequence[str]) -> list[list[Any]]:
    """The value arrays ``docs``, parsed in one call."""
    return loads("[" + ",".join(docs) + "]")  # type: ignore[no-any-return]


def wide_floats(columns: Iterable[Sequence[Any]]) -> bool:
    """Whether some float in ``columns`` (anywhere in a list or object value too) reaches
    2**63 in magnitude: where orjson's answer may differ from ``json``'s. A column of
    floats is checked by its ``min`` and ``max``, one of ints or texts by its types."""
    for column in columns:
        kinds = set(map(type, column))
        if float in kinds:
            if kinds == {float}:
                if column and (max(column) >= _WIDE or min(column) <= -_WIDE):
                    return True
                continue
            if any(type(v) is float and abs(v) >= _WIDE for v in column):
                return True
        if (list in kinds or dict in kinds) and _nested_wide(column):
            return True
    return False


def _nested_wide(values: Iterable[Any]) -> bool:
    for value in values:
        if isinstance(value, float) and abs(value) >= _WIDE:
            return True
        if isinstance(value, dict) and _nested_wide(value.values()):
            return True
        if isinstance(value, list) and _nested_wide(value):
            return True
    return False
