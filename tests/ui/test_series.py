"""Series for charts: M4 keeps every extreme and never invents a point, the EMA is
TensorBoard's, the fast TSV reader agrees with the exact one, cutting keeps the edges."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xp.errors import ConfigError
from xp.record.model import parse_series, series_bytes
from xp.ui.series import Columns, SeriesCache, Window, cut, ema, m4, of_points, parse_tsv, summary

values = st.floats(allow_nan=True, allow_infinity=True, width=64)


def _reference_m4(xs: list[float], ys: list[float], points: int) -> set[int]:
    """M4 written out plainly, one bucket at a time (API contract of docs/ui.md)."""
    n = len(xs)
    if points <= 0 or n <= points:
        return set(range(n))
    buckets = max(1, points // 4)
    x0, x1 = xs[0], xs[-1]
    keep: set[int] = set()
    groups: dict[int, list[int]] = {}
    for i, x in enumerate(xs):
        b = min(buckets - 1, int((x - x0) / (x1 - x0) * buckets)) if x1 > x0 else i * buckets // n
        groups.setdefault(b, []).append(i)
    for members in groups.values():
        if len(members) <= 4:
            keep.update(members)
            continue
        keep.update((members[0], members[-1]))
        finite = [i for i in members if math.isfinite(ys[i])]
        if finite:
            keep.add(min(finite, key=lambda i: (ys[i], i)))
            keep.add(max(finite, key=lambda i: (ys[i], -i)))
        bad = [i for i in members if not math.isfinite(ys[i])]
        if bad:
            keep.add(bad[0])
    return keep


@settings(max_examples=200, deadline=None)
@given(
    ys=st.lists(values, min_size=0, max_size=300),
    points=st.integers(min_value=4, max_value=80),
    gaps=st.integers(min_value=1, max_value=3),
)
def test_m4_keeps_each_buckets_first_last_min_max_and_gap(
    ys: list[float], points: int, gaps: int
) -> None:
    xs = np.arange(len(ys), dtype=np.int64) * gaps
    arr = np.array(ys, dtype=np.float64)
    got = m4(xs, arr, points)
    assert list(got) == sorted(set(got.tolist()))  # sorted, no duplicates, real indices
    kept = set(got.tolist())
    # bucket edges by float arithmetic may fall on the other side of a point in numpy and
    # in the plain version: compare what matters, the extremes and the ends
    reference = _reference_m4(xs.tolist(), ys, points)
    finite = [v for v in ys if math.isfinite(v)]
    if finite:
        assert max(finite) in {ys[i] for i in kept}
        assert min(finite) in {ys[i] for i in kept}
    if ys:
        assert {0, len(ys) - 1} <= kept
    if any(not math.isfinite(v) for v in ys):
        assert any(not math.isfinite(ys[i]) for i in kept)
    assert len(kept) <= max(len(reference), points * 5 // 4 + 4)


def test_m4_on_a_million_points_keeps_a_one_point_spike() -> None:
    xs = np.arange(1_000_000)
    ys = np.exp(-xs / 2e5)
    ys[654_321] = 50.0
    ys[123_456] = -3.0
    ys[777_777] = np.nan
    got = m4(xs, ys, 2000)
    assert len(got) <= 2500
    assert {654_321, 123_456, 777_777, 0, 999_999} <= set(got.tolist())


def test_m4_with_every_point_at_one_step() -> None:
    xs = np.zeros(100, dtype=np.int64)
    ys = np.sin(np.arange(100.0))
    got = m4(xs, ys, 20)
    assert int(np.argmax(ys)) in got
    assert int(np.argmin(ys)) in got
    assert len(got) < 100


# Finite values within 1e300 of zero: at the edge of the float range the debiasing division
# overflows to inf or not depending on one ulp of ``1 - w**n`` (numpy's power and Python's
# differ there), which says nothing about the smoothing.
_ema_values = values.filter(lambda v: not math.isfinite(v) or abs(v) <= 1e300)


@given(st.lists(_ema_values, max_size=60), st.floats(min_value=0, max_value=0.999))
def test_ema_is_tensorboards_debiased_average(ys: list[float], weight: float) -> None:
    got = ema(np.array(ys, dtype=np.float64), weight)
    last, n = 0.0, 0
    for v, g in zip(ys, got.tolist(), strict=True):
        if not math.isfinite(v):
            assert g == v or (math.isnan(v) and math.isnan(g))  # passes through
            continue
        if weight == 0:
            assert g == v
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        want = last / (1 - weight**n)
        assert g == pytest.approx(want, rel=1e-9, abs=1e-300)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-(2**40), max_value=2**40),
            values | st.integers(min_value=-(10**9), max_value=10**9),
            st.integers(min_value=0, max_value=2**44),
        ),
        max_size=40,
    )
)
def test_the_fast_tsv_reader_agrees_with_the_exact_one(points: list[tuple[int, Any, int]]) -> None:
    data = series_bytes(points)  # as the record writes them
    fast = parse_tsv(data, "s")
    exact = of_points(parse_series(data, "s"))
    assert fast.steps.tolist() == exact.steps.tolist()
    assert fast.times.tolist() == exact.times.tolist()
    np.testing.assert_array_equal(fast.values, exact.values)


def test_a_damaged_series_names_the_line() -> None:
    with pytest.raises(ConfigError, match="line 3"):
        parse_tsv(b"step\tvalue\ttimestamp\n0\t1\t5\n1\tnope\n", "run:loss")


def test_cut_sorts_by_x_keeps_edges_and_spells_non_finite_values() -> None:
    cols = of_points([(3, 3.0, 30), (1, math.nan, 10), (2, math.inf, 20), (0, -math.inf, 40)])
    whole = cut(cols, Window())
    assert whole["step"] == [0, 1, 2, 3]
    assert whole["value"] == ["-inf", None, "inf", 3.0]
    by_time = cut(cols, Window(x="time"))
    assert by_time["time"] == [10, 20, 30, 40]
    window = cut(cols, Window(xmin=2, xmax=2))
    assert window["step"] == [1, 2, 3]  # one point beyond each edge
    after = cut(cols, Window(after_step=1))
    assert after["step"] == [2, 3]
    smooth = cut(cols, Window(smooth=0.5))
    assert smooth["smoothed"][3] == 3.0  # the first finite point, debiased, is itself


def test_summary_follows_the_best_rule() -> None:
    cols = of_points([(0, 2.0, 0), (1, 0.5, 1), (2, math.nan, 2), (2, 1.0, 3)])
    low = summary(cols, lower_is_better=True)
    assert low == {
        "count": 4,
        "first_step": 0,
        "last_step": 2,
        "last": 1.0,  # the highest step, the last logged among equal steps
        "min": 0.5,
        "max": 2.0,
        "best": 0.5,
        "best_step": 1,
    }
    assert summary(cols, lower_is_better=False)["best_step"] == 0
    assert summary(of_points([(0, math.nan, 0)]), True) == {
        "count": 1,
        "first_step": 0,
        "last_step": 0,
        "last": None,
    }


def test_the_cache_stays_within_its_budget() -> None:
    cache = SeriesCache(budget=25)
    loads: list[str] = []

    def load(name: str) -> Columns:
        loads.append(name)
        return of_points([(i, float(i), i) for i in range(10)])

    for name in ("a", "b", "a", "c", "a"):
        cache.get(("commit", name), lambda name=name: load(name))
    assert loads == ["a", "b", "c"]  # a stayed, b was dropped for c
    cache.get(("commit", "b"), lambda: load("b"))
    assert loads == ["a", "b", "c", "b"]
    assert cache.get(("commit", "gone"), lambda: None) is None
