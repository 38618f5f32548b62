"""Step series for charts: parsed once into columns, cut to a window, downsampled for display.

A recorded series is a blob that never changes, so its parsed columns are cached by (commit,
metric) with a budget in points. Display downsampling is M4 (first, last, min and max of each
equal-width bucket of x, plus the first non-finite point so gaps survive): the line drawn
through the kept points covers the same pixels as the full line when there are at least as
many buckets as pixel columns, and no spike is lost (LTTB can drop one). Smoothing is the
debiased EMA of TensorBoard, computed on the full series before it is thinned, so the smoothed
curve does not depend on which points were kept.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xp.errors import ConfigError
from xp.record.model import parse_series

if TYPE_CHECKING:  # numpy is imported by the functions: `xp ui` answers its table without it
    import numpy as np

DEFAULT_POINTS = 2000
MAX_POINTS = 100_000


@dataclass(frozen=True)
class Columns:
    """One series as parallel arrays in logging order: step (int64), value (float64), time
    (int64, ms since the epoch)."""

    steps: np.ndarray[Any, Any]
    values: np.ndarray[Any, Any]
    times: np.ndarray[Any, Any]

    def __len__(self) -> int:
        return int(self.steps.shape[0])


def parse_tsv(data: bytes, source: str) -> Columns:
    """``series/<name>.tsv`` bytes -> columns; pandas' C reader (a million lines in ~0.3 s),
    the exact reader of ``xp.record.model`` for anything it does not take as is."""
    import numpy as np
    import pandas as pd

    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep="\t",
            dtype={"step": np.int64, "value": np.float64, "timestamp": np.int64},
            engine="c",
        )
        if list(frame.columns) != ["step", "value", "timestamp"]:
            raise ValueError("unexpected header")
        return Columns(
            frame["step"].to_numpy(),
            frame["value"].to_numpy(),
            frame["timestamp"].to_numpy(),
        )
    except (ValueError, TypeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        points = parse_series(data, source)  # raises ConfigError naming the bad line
        return of_points(points)


def of_points(points: list[tuple[int, Any, int]]) -> Columns:
    import numpy as np

    if not points:
        empty = np.zeros(0, dtype=np.int64)
        return Columns(empty, np.zeros(0, dtype=np.float64), empty)
    steps, vals, times = zip(*points, strict=True)
    return Columns(
        np.asarray(steps, dtype=np.int64),
        np.asarray([float(v) for v in vals], dtype=np.float64),
        np.asarray(times, dtype=np.int64),
    )


class SeriesCache:
    """Parsed series by key, least recently used dropped first past ``budget`` points."""

    def __init__(self, budget: int = 30_000_000) -> None:
        self.budget = budget
        self._items: OrderedDict[tuple[str, str], Columns] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], load: Callable[[], Columns | None]) -> Columns | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        value = load()  # outside the lock: parsing takes time, other keys need not wait
        if value is None:
            return None
        with self._lock:
            if key not in self._items:
                self._items[key] = value
                self._size += len(value)
            while self._size > self.budget and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)
        return value


# -- downsampling -----------------------------------------------------------------------------


def m4(xs: np.ndarray[Any, Any], ys: np.ndarray[Any, Any], points: int) -> np.ndarray[Any, Any]:
    """Indices (sorted) of the points of ``xs``/``ys`` (``xs`` ascending) to draw at most
    ~``points`` of them: per bucket of equal width in x the first, last, minimum and maximum
    finite point and the first non-finite one; a bucket of 4 or fewer points is kept whole."""
    import numpy as np

    n = int(xs.shape[0])
    if points <= 0 or n <= points:
        return np.arange(n)
    buckets = max(1, points // 4)
    x0, x1 = float(xs[0]), float(xs[-1])
    if x1 > x0:
        edges = x0 + (x1 - x0) * np.arange(1, buckets) / buckets
        starts = np.concatenate(([0], np.searchsorted(xs, edges, side="left")))
    else:  # every point at one x: buckets by position instead
        starts = (np.arange(buckets) * n) // buckets
    starts = np.unique(starts)
    ends = np.append(starts[1:], n)
    counts = ends - starts
    finite = np.isfinite(ys)
    low = np.where(finite, ys, np.inf)
    high = np.where(finite, ys, -np.inf)
    mins = np.minimum.reduceat(low, starts)
    maxs = np.maximum.reduceat(high, starts)
    bucket_of = np.repeat(np.arange(starts.shape[0]), counts)
    keep = [starts, ends - 1]
    for extreme, column in ((mins, low), (maxs, high)):
        hit = np.flatnonzero(column == extreme[bucket_of])
        # the first hit of each bucket (a bucket of only non-finite points hits everywhere)
        first = np.searchsorted(hit, starts)
        ok = first < hit.shape[0]
        chosen = hit[np.minimum(first, hit.shape[0] - 1)]
        keep.append(chosen[ok & (chosen < ends)])
    bad = np.flatnonzero(~finite)
    if bad.shape[0]:
        first = np.searchsorted(bad, starts)
        chosen = bad[np.minimum(first, bad.shape[0] - 1)]
        keep.append(chosen[(first < bad.shape[0]) & (chosen < ends)])
    small = counts <= 4
    if small.any():
        keep.append(np.flatnonzero(np.repeat(small, counts)))
    return np.unique(np.concatenate(keep))


def ema(values: np.ndarray[Any, Any], weight: float) -> np.ndarray[Any, Any]:
    """TensorBoard's smoothing: ``last = last*w + (1-w)*v``, shown as ``last / (1 - w**n)``
    over the finite points in order; non-finite points pass through unchanged."""
    import numpy as np

    out = values.astype(np.float64, copy=True)
    if weight <= 0 or out.shape[0] == 0:
        return out
    finite = np.flatnonzero(np.isfinite(out))
    last, w = 0.0, float(weight)
    acc = np.empty(finite.shape[0])
    # a recurrence: numpy has no scan for it, but a plain loop over floats is ~30 ns a point
    vals = out[finite].tolist()
    for i, v in enumerate(vals):
        last = last * w + (1.0 - w) * v
        acc[i] = last
    n = np.arange(1, finite.shape[0] + 1)
    out[finite] = acc if w >= 1 else acc / (1.0 - w**n)
    return out


@dataclass(frozen=True)
class Window:
    """What a chart asks for: x axis, range, appended points only, size, smoothing."""

    x: str = "step"  # or "time"
    xmin: float | None = None
    xmax: float | None = None
    after_step: int | None = None
    points: int = DEFAULT_POINTS
    smooth: float = 0.0


def cut(cols: Columns, window: Window) -> dict[str, Any]:
    """The part of ``cols`` a chart draws: sorted by x (ties in logging order), inside the
    range plus the one point beyond each edge, thinned by ``m4``; lists ready for JSON with
    non-finite values as None ("nan") or "inf"/"-inf"."""
    import numpy as np

    xs_all = cols.steps if window.x == "step" else cols.times
    order = np.argsort(xs_all, kind="stable")
    xs = xs_all[order]
    lo, hi = 0, int(xs.shape[0])
    if window.after_step is not None:
        keep = cols.steps[order] > window.after_step
        order, xs = order[keep], xs[keep]
        hi = int(xs.shape[0])
    if window.xmin is not None:
        lo = max(0, int(np.searchsorted(xs, window.xmin, side="left")) - 1)
    if window.xmax is not None:
        hi = min(hi, int(np.searchsorted(xs, window.xmax, side="right")) + 1)
    order, xs = order[lo:hi], xs[lo:hi]
    values = cols.values[order]
    smoothed = None
    if window.smooth > 0:
        # over the whole series in x order, then cut: the curve does not depend on the window
        full = ema(cols.values[np.argsort(xs_all, kind="stable")], window.smooth)
        smoothed = full[lo:hi] if window.after_step is None else None
    idx = m4(xs, values, window.points)
    out: dict[str, Any] = {
        "count": len(cols),
        "range_count": int(xs.shape[0]),
        "downsampled": bool(idx.shape[0] < xs.shape[0]),
        "step": cols.steps[order[idx]].tolist(),
        "time": cols.times[order[idx]].tolist(),
        "value": json_values(values[idx]),
    }
    if smoothed is not None:
        out["smoothed"] = json_values(smoothed[idx])
    return out


def json_values(values: np.ndarray[Any, Any]) -> list[Any]:
    """Floats for strict JSON: NaN -> None, infinities -> "inf" / "-inf"."""
    import numpy as np

    out: list[Any] = values.tolist()
    if not np.isfinite(values).all():
        for i in np.flatnonzero(~np.isfinite(values)).tolist():
            v = out[i]
            out[i] = None if v != v else ("inf" if v > 0 else "-inf")
    return out


def summary(cols: Columns, lower_is_better: bool) -> dict[str, Any]:
    """count, first/last step, last value (MLflow's rule), min, max, best and its step."""
    import numpy as np

    if not len(cols):
        return {"count": 0}
    order = np.argsort(cols.steps, kind="stable")
    last = cols.values[order[-1]]  # the highest step, the last logged among equal steps
    finite = np.isfinite(cols.values)
    out: dict[str, Any] = {
        "count": len(cols),
        "first_step": int(cols.steps.min()),
        "last_step": int(cols.steps.max()),
        "last": json_values(np.array([last]))[0],
    }
    if finite.any():
        vals = np.where(finite, cols.values, np.nan)
        best_i = int(np.nanargmin(vals) if lower_is_better else np.nanargmax(vals))
        out.update(
            min=float(np.nanmin(vals)),
            max=float(np.nanmax(vals)),
            best=float(cols.values[best_i]),
            best_step=int(cols.steps[best_i]),
        )
    return out


def check_points(points: int) -> int:
    if not 0 <= points <= MAX_POINTS:
        raise ConfigError(f"points must be 0 (all) to {MAX_POINTS:,}, got {points}")
    return points
