"""``xp plot`` and ``xp.plot``: one metric of several runs overlaid, as a matplotlib figure.

The same overlay as the UI's charts, for terminals, notebooks and CI: runs coloured in the
order given with the UI's palette (the order a report colours them), the raw series faint
and the smoothed one (TensorBoard's debiased EMA) on top when smoothing is asked, long series
thinned by M4 to what the figure's pixels can show, so a million points plot in a blink
without losing a spike. The figure is built without pyplot (no global state, no display
needed); a notebook shows a returned figure inline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xp.errors import InvalidValueError, RunNotFoundError, missing_extra
from xp.gitstore.repo import GitRepo
from xp.ui.documents import Source
from xp.ui.series import ema, m4

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The UI's palette (static/colors.js): run i of a plot gets PALETTE[i], as in a report.
PALETTE = (
    *("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf"),
    *("#e377c2", "#8c564b", "#a5a80f", "#393b79", "#637939", "#7f7f7f"),
)
X_AXES = ("step", "time", "relative")
FORMATS = ("png", "svg", "pdf")
BUCKETS = 2000  # M4 buckets per series: more than a figure's pixel columns


def plot(
    repo: GitRepo,
    *,
    runs: Sequence[str],
    metric: str,
    x: str = "step",
    smooth: float = 0.0,
    log_y: bool = False,
    title: str | None = None,
    size: tuple[float, float] = (8.0, 4.5),
) -> Figure:
    """A figure of ``metric`` for each of ``runs`` (ids, prefixes or names) against ``x``:
    ``step``, ``time`` (wall clock) or ``relative`` (seconds since each run started)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise missing_extra("matplotlib", "plot", "xp plot") from None
    import numpy as np

    if not runs:
        raise InvalidValueError("name at least one run to plot (list runs with `xp show`)")
    if x not in X_AXES:
        raise InvalidValueError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    if not 0 <= smooth < 1:
        raise InvalidValueError(
            f"smooth is an EMA weight from 0 (none) to below 1 (TensorBoard's), got {smooth}"
        )
    key = metric[8:] if metric.startswith("metrics.") else metric
    source = Source(repo)
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    drawn = 0
    for i, spec in enumerate(dict.fromkeys(runs)):
        found = source.find(spec)
        cols = source.columns(found, key)
        if cols is None:
            continue
        color = PALETTE[i % len(PALETTE)]
        order = np.argsort(cols.steps if x == "step" else cols.times, kind="stable")
        steps, values, times = cols.steps[order], cols.values[order], cols.times[order]
        if x == "step":
            xs: Any = steps
        elif x == "relative":
            xs = (times - int((found.row.start or 0) * 1000)) / 1000.0
        else:
            xs = times.astype("datetime64[ms]")
        keep = m4(steps if x == "step" else times, values, BUCKETS * 4)
        label = found.row.name
        single = len(cols) == 1
        style: dict[str, Any] = {"marker": "o"} if single else {}
        if smooth > 0 and not single:
            ax.plot(xs[keep], values[keep], color=color, alpha=0.25, linewidth=1)
            ax.plot(xs[keep], ema(values, smooth)[keep], color=color, linewidth=1.6, label=label)
        else:
            ax.plot(xs[keep], values[keep], color=color, linewidth=1.4, label=label, **style)
        drawn += 1
    if not drawn:
        raise RunNotFoundError(
            f"none of the runs has a metric {key!r}; see their metrics with `xp show`"
        )
    ax.set_title(title or key)
    ax.set_xlabel({"step": "step", "time": "time", "relative": "seconds since start"}[x])
    ax.set_ylabel(key)
    if log_y:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    if x == "time":
        fig.autofmt_xdate()
    return fig


def save(fig: Figure, path: Path) -> None:
    """Write ``fig`` as PNG, SVG or PDF (by the file's extension), the same bytes for the same
    figure (no date, fixed SVG ids)."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InvalidValueError(
            f"cannot write {path.name!r}: the file name must end in .png, .svg or .pdf"
        )
    import io

    import matplotlib

    from xp.fsutil import atomic_write

    metadata: dict[str, Any] = {"png": {"Software": None}, "svg": {"Date": None}}.get(fmt, {})
    if fmt == "pdf":
        metadata = {"CreationDate": None, "ModDate": None}
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "xp", "svg.fonttype": "path"}):
        fig.savefig(buffer, format=fmt, dpi=100, metadata=metadata)
    atomic_write(path, buffer.getvalue())  # a complete file or none
