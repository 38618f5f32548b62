"""From what a run logged (``RunState``) to its record and its commit message.

Shared by ``end_run``, ``xp recover`` and every other path that commits a run, so a run
recovered from its journal has the same record it would have had.
"""

from __future__ import annotations

import math
import time
from typing import Any

from xp.record.header import RunHeader
from xp.record.journal import RunState
from xp.record.model import (
    Point,
    RunRecord,
    StreamedFile,
    final_value,
    format_number,
    series_points,
)
from xp.record.spill import SeriesSpill, SpilledSeries, to_ms

__all__ = ["build_record", "commit_message", "iso_time", "parse_time", "to_ms"]


def iso_time(ts: float) -> str:
    """UTC ISO 8601 to the millisecond, as meta.yaml stores times (``to_ms``)."""
    ms = to_ms(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch from a meta.yaml time (ISO 8601 text, or a datetime)."""
    from datetime import datetime, timezone

    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def state_of_record(
    record: RunRecord,
    header: RunHeader,
    spill: SeriesSpill | None = None,
    last_steps: dict[str, int] | None = None,
) -> RunState:
    """What a committed run had logged, as live state a continued session builds on. With a
    ``spill`` the points go there, one series at a time (a run of 10M points continues in
    bounded memory); ``last_steps`` gets each metric's last logged step.

    A metric with a single point at step 0 has no series file, so no timestamp of its own:
    it gets the run's end time (then, being a series of one, it keeps that from now on).
    """
    end = parse_time(record.meta.get("end_time")) or header.start_time
    points: list[tuple[str, float, int, float]] = []
    for key in sorted(record.metrics):
        series = series_points(record.series, key)
        if series:
            batch = [(key, value, step, ts / 1000) for step, value, ts in series]
        else:
            batch = [(key, record.metrics[key], 0, end)]
        del series
        if last_steps is not None:
            last_steps[key] = batch[-1][2]
        if spill is not None:
            spill.add(batch)
        else:
            points += batch
    return RunState(
        spill=spill,
        header=header,
        params=dict(record.params),
        tags=dict(record.tags),
        points=points,
        artifacts={a.path: a for a in record.artifacts},
        inputs={i.path: i for i in record.inputs},
        media={m.path: m for m in record.media},
        datasets=list(record.datasets),
        models={str(m.get("id")): dict(m) for m in record.models},
    )


def build_record(
    state: RunState, status: str, end_time: float, packages: tuple[str, ...]
) -> RunRecord:
    """The record a run's state turns into; shared by end_run and crash recovery."""
    h = state.header
    spill = state.spill
    streamed: dict[str, StreamedFile] = {}
    series: dict[str, list[Point]] = {}
    if spill is not None:  # a live run's points, or a big journal's: streamed (issue 18)
        spill.add(state.points)
        state.points = []
        metrics = {k: spill.final(k) for k in spill.names()}
        streamed = {
            k: SpilledSeries(spill, k)
            for k in spill.names()
            if h.all_series or spill.count(k) > 1 or spill.first_step(k) != 0
        }
    else:
        grouped: dict[str, list[Point]] = {}
        for key, value, step, ts in state.points:
            grouped.setdefault(key, []).append((step, value, to_ms(ts)))
        metrics = {k: final_value(v) for k, v in grouped.items()}
        series = {k: v for k, v in grouped.items() if h.all_series or len(v) > 1 or v[0][0] != 0}
    start = float(h.start_time)
    meta: dict[str, Any] = {
        "experiment": h.experiment or "default",
        "start_time": iso_time(start),
        "end_time": iso_time(end_time),
        "duration": round(max(0.0, end_time - start), 3),
        "command": list(h.command),
        "cwd": h.cwd,
        "baseline": h.baseline,
        "branch": h.branch,
        "dirty": bool(h.dirty),
        "xp_version": h.xp_version,
    }
    meta.update(h.context)
    optional: dict[str, Any] = {"parent": h.parent, "message": h.message, "exit_code": h.exit_code}
    meta.update({k: v for k, v in optional.items() if v is not None})
    if h.resumed:
        meta["resumed"] = list(h.resumed)
    warnings = list(h.warnings)
    warnings += [
        f"{path} ({size} bytes) is over the size limit and was not snapshotted;"
        " log it with xp.log_artifact"
        for path, size in h.skipped
    ]
    if warnings:
        meta["warnings"] = warnings
    return RunRecord(
        id=h.id,
        name=h.name,
        status=status,
        meta=meta,
        params=dict(state.params),
        metrics=metrics,
        series=series,
        streamed=streamed,
        tags=dict(state.tags),
        artifacts=tuple(state.artifacts.values()),
        inputs=tuple(state.inputs.values()),
        packages=packages,
        media=tuple(state.media.values()),
        datasets=tuple(state.datasets),
        models=tuple(state.models[k] for k in sorted(state.models)),
    )


def short_number(value: float | int) -> str:
    """4 significant digits for humans (commit subjects, CLI summaries); nan/inf spelled out."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return format_number(value)


def commit_message(record: RunRecord) -> str:
    shown = " ".join(f"{k}={short_number(v)}" for k, v in sorted(record.metrics.items())[:4])
    subject = f"xp: {record.name}" + (f" {shown}" if shown else "")
    body = record.meta.get("message")
    text = subject + (f"\n\n{body}" if body else "")
    return f"{text}\n\nxp-run: {record.id}\nxp-status: {record.status}\n"
