"""Property tests of the API and the record format (issue 10): any value a log call accepts
comes back exactly through ``xp.get_run`` and ``xp show --format json``; any value it refuses
raises a documented ``XPError`` at the call, and the run goes on and is recorded.

"Exactly" is the rule of docs/api.md ("Values"), written here a second time, independently,
as ``expect_*``: what the test expects is not computed by the code under test.
"""

from __future__ import annotations

import decimal
import fractions
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xp
from tests.helpers import invoke
from xp.errors import InputError

REFUSED = object()
INT64 = (-(2**63), 2**63 - 1)
NP_INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def _surrogate_text() -> st.SearchStrategy[str]:
    lone = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
    return st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), lone, st.text(max_size=5))


TEXT = st.one_of(st.text(max_size=40), _surrogate_text())
NP_INT = st.sampled_from(NP_INTS).flatmap(
    lambda t: st.integers(int(np.iinfo(t).min), int(np.iinfo(t).max)).map(t)
)
NP_FLOAT = st.one_of(
    st.floats(width=16).map(np.float16),
    st.floats(width=32).map(np.float32),
    st.floats().map(np.float64),
)
NUMBER = st.one_of(
    st.floats(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1, 2**63 - 1]),
    st.booleans(),
    NP_INT,
    NP_FLOAT,
    st.booleans().map(np.bool_),
    st.floats().map(np.array),  # 0-d arrays
    st.decimals(allow_nan=True, allow_infinity=True).filter(lambda d: not d.is_snan()),
    st.fractions(max_denominator=10**6),
)
PARAM = st.one_of(
    TEXT, st.none(), NUMBER, st.lists(st.one_of(st.text(max_size=8), NUMBER), max_size=3)
)
METRIC = st.one_of(NUMBER, st.text(max_size=5), st.none())
KEY = st.from_regex(r"[a-z][a-z0-9_.-]{0,8}(/[a-z][a-z0-9_-]{0,6})?", fullmatch=True).filter(
    lambda k: ".tsv/" not in k
)


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _number(value: Any) -> Any:
    """docs/api.md: bools are bools (params) or 0/1 (metrics), integers stay integers, every
    other number is the nearest double."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.ndarray):
        return _number(value.item())
    return float(value)


def expect_param(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return REFUSED if _has_surrogate(value) else value
    if isinstance(value, list):
        items = [expect_param(v) for v in value]
        return REFUSED if any(i is REFUSED for i in items) else items
    return _number(value)


def expect_metric(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return REFUSED
    number = _number(value)
    if isinstance(number, bool):
        return int(number)
    if isinstance(number, int) and not INT64[0] <= number <= INT64[1]:
        return REFUSED
    return number


def expect_tag(value: Any) -> Any:
    return REFUSED if _has_surrogate(value) else value


def same(a: Any, b: Any) -> bool:
    """Equal in value and type (1 is not 1.0, True is not 1), NaN equal to NaN."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def as_json(value: Any, kind: str) -> Any:
    """How docs/show-diff.md says ``xp show --format json`` writes a value: strict JSON, so a
    NaN metric is null and infinities are "inf"/"-inf"; a non-finite param is its text."""
    if isinstance(value, list):
        return [as_json(v, kind) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return None if kind == "metrics" else "nan"
        return "inf" if value > 0 else "-inf"
    return value


def log_all(call: Any, items: dict[str, Any], expect: Any) -> dict[str, Any]:
    """Log each item; a refusal must be the documented error, at the call. What was kept."""
    kept = {}
    for key, value in items.items():
        wanted = expect(value)
        if wanted is REFUSED:
            with pytest.raises(InputError) as refused:
                call(key, value)
            assert "\n" not in str(refused.value)
            continue
        call(key, value)
        kept[key] = wanted
    return kept


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    params=st.dictionaries(KEY, PARAM, max_size=4),
    metrics=st.dictionaries(KEY, METRIC, max_size=4),
    tags=st.dictionaries(KEY, TEXT, max_size=3),
)
def test_accepted_values_round_trip_and_refused_ones_leave_the_run_alive(
    repo: Path, params: dict[str, Any], metrics: dict[str, Any], tags: dict[str, Any]
) -> None:
    with xp.start_run() as run:
        kept_params = log_all(xp.log_param, params, expect_param)
        kept_metrics = log_all(lambda k, v: xp.log_metric(k, v, step=0), metrics, expect_metric)
        for key in kept_metrics:  # a second point at step 1 makes a series file too
            xp.log_metric(key, metrics[key], step=1)
        kept_tags = log_all(xp.set_tag, tags, expect_tag)
    got = xp.get_run(run.id)
    assert got.status == "finished"
    assert set(got.params) == set(kept_params)
    assert all(same(got.params[k], v) for k, v in kept_params.items()), got.params
    assert all(same(got.metrics[k], v) for k, v in kept_metrics.items()), got.metrics
    for key, value in kept_metrics.items():
        assert all(same(v, value) for v in got.series(key)["value"].tolist())
    assert got.tags == kept_tags
    result = invoke("show", "--all", "--format", "json")
    assert result.exit_code == 0, result.output
    (doc,) = [d for d in json.loads(result.stdout) if d["run_id"] == run.id]
    assert doc["params"] == {k: as_json(v, "params") for k, v in kept_params.items()}
    assert doc["metrics"] == {k: as_json(v, "metrics") for k, v in kept_metrics.items()}
    assert doc["tags"] == kept_tags


def test_decimal_and_fraction_are_the_nearest_double(repo: Path) -> None:
    with xp.start_run() as run:
        xp.log_metric("d", decimal.Decimal("0.1000000000000000055511151231257827"))
        xp.log_param("f", fractions.Fraction(2, 3))
    got = xp.get_run(run.id)
    assert same(got.metrics["d"], 0.1)
    assert same(got.params["f"], 2 / 3)
