"""Recording monitoring points: ``xp.log_production``, ``xp model observe``, ``xp model import``.

A point belongs to the version that was in the stage at its ``window_end`` (from the stage's
tag history), so a job that scores yesterday's window after today's rollout still credits
yesterday's version; ``version=`` says it outright. Each call is one commit on this clone's
chain (``points.append``): acknowledged means in git.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xp import format as fmt
from xp.errors import InvalidValueError, ModelNotFoundError, missing_extra
from xp.gitstore.repo import GitRepo
from xp.production import points as pts
from xp.production.status import holder_at
from xp.sharing import registry
from xp.sharing.registry import Model, Registry

TIME_COLUMNS = ("window_end", "timestamp", "time", "ts", "date", "datetime")


@dataclass(frozen=True)
class Observation:
    """What was recorded: how many points, for which versions, in which commit."""

    model: str
    stage: str
    versions: tuple[str, ...]
    points: int
    commit: str
    ref: str


def find_model(reg: Registry, name: str) -> Model:
    registry.check_name(name, "model name")
    model = reg.models.get(name)
    if model is None or not model.versions:
        known = ", ".join(sorted(m for m in reg.models if reg.models[m].versions)) or "none yet"
        raise ModelNotFoundError(
            f"no model {name!r}; registered models: {known} (register one with"
            " `xp model register NAME RUN`)"
        )
    return model


def _stages(reg: Registry, name: str) -> str:
    model = reg.models[name]
    return ", ".join(f"{s}={v}" for s, v in sorted(model.stages.items())) or "none"


def version_for(
    reg: Registry, model: Model, stage: str, when: int | None, version: str | None
) -> str:
    """The version a point belongs to: ``version`` when given, else the stage's holder at
    ``when`` (milliseconds; None = now)."""
    if version is not None:
        v = version.strip()
        v = v if v.startswith("v") else f"v{v}"
        if v not in model.versions:
            listed = ", ".join(sorted(model.versions, key=registry.semver_key)) or "none"
            raise ModelNotFoundError(
                f"{model.name}@{v} does not exist; registered versions: {listed}"
            )
        return v
    held = model.stages.get(stage) if when is None else holder_at(reg, model, stage, when)
    if held is None:
        at = "has" if when is None else f"had at {_iso(when)}"
        raise ModelNotFoundError(
            f"{model.name} {at} no version in stage {stage!r} (stages now:"
            f" {_stages(reg, model.name)}); assign one with `xp model assign`, or name the"
            " version the points belong to (version=, --version)"
        )
    return held


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(model: str, stage: str, versions: list[str], metrics: Mapping[str, float]) -> str:
    head = f"{model}@{','.join(sorted(set(versions)))} {stage}"
    shown = " ".join(f"{k}={fmt_value(v)}" for k, v in sorted(metrics.items())[:4])
    return f"{head} {shown}".rstrip()


def fmt_value(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def log_production(
    repo: GitRepo,
    *,
    model: str,
    stage: str,
    metrics: Mapping[str, Any],
    window_end: Any = None,
    tags: Mapping[str, Any] | None = None,
    version: str | None = None,
) -> Observation:
    """Record ``metrics`` observed for ``model`` in ``stage`` over the window ending at
    ``window_end`` (default: now), against the version deployed there then."""
    registry.check_name(stage, "stage")
    if not isinstance(metrics, Mapping) or not metrics:
        raise InvalidValueError(
            "metrics must be a non-empty mapping of name -> number, e.g. {'accuracy': 0.91}"
        )
    values = {fmt.validate_key(k, "metric name"): pts.to_number(k, v) for k, v in metrics.items()}
    clean = pts.clean_tags(tags)
    when = pts.to_millis(window_end)
    reg = registry.replay(repo)
    found = find_model(reg, model)
    ver = version_for(reg, found, stage, None if window_end is None else when, version)
    batch = [pts.Point(model, ver, stage, when, k, v, clean) for k, v in values.items()]
    written = pts.append(repo, batch, summary=_summary(model, stage, [ver], values))
    return Observation(model, stage, (ver,), len(batch), written.commit, written.ref)


def read_table(path: Path) -> Any:
    """A CSV or Parquet file as a DataFrame (Parquet needs pyarrow)."""
    import pandas as pd

    if not path.is_file():
        raise InvalidValueError(f"no file {str(path)!r}; give the path of a CSV or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise missing_extra("pyarrow", "parquet", "reading Parquet") from None
        return pd.read_parquet(path)
    try:
        return pd.read_csv(path, sep="\t" if path.suffix.lower() in (".tsv", ".tab") else ",")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidValueError(f"cannot read {path} as CSV: {exc}") from None


def import_points(
    repo: GitRepo,
    *,
    model: str,
    stage: str,
    path: str | Path,
    version: str | None = None,
    time_column: str | None = None,
) -> Observation:
    """Monitoring points from a table of production logs, in one commit.

    Wide form: a time column (``window_end``, ``timestamp``, ``time``... or ``time_column``),
    one column per metric (``metrics.`` prefix optional), ``tags.<name>`` columns, and an
    optional ``version`` column. Long form: ``metric`` and ``value`` columns instead. Empty
    cells are skipped; a cell that is not a number stops the import, naming row and column.
    """
    registry.check_name(stage, "stage")
    reg = registry.replay(repo)
    found = find_model(reg, model)
    file = Path(path)
    frame = read_table(file)
    columns = [str(c) for c in frame.columns]
    tcol = time_column or next((c for c in TIME_COLUMNS if c in columns), None)
    if tcol is None or tcol not in columns:
        raise InvalidValueError(
            f"{file.name}: no time column (looked for {time_column or ', '.join(TIME_COLUMNS)});"
            f" its columns: {', '.join(columns)}; name one with --time-column"
        )
    long_form = "metric" in columns and "value" in columns
    tag_cols = [c for c in columns if c.startswith("tags.")]
    skip = {tcol, "version", *tag_cols, *(["metric", "value"] if long_form else [])}
    metric_cols = [] if long_form else [c for c in columns if c not in skip]
    if not long_form and not metric_cols:
        raise InvalidValueError(f"{file.name}: no metric columns besides {tcol!r}")
    batch: list[pts.Point] = []
    versions: list[str] = []
    records = frame.to_dict("records")
    row_versions: dict[tuple[int, str | None], str] = {}
    first: dict[str, float] = {}
    for n, row in enumerate(records, start=2):  # line 1 is the header
        where = f"{file.name} row {n}"
        when = pts.to_millis(_cell_time(row[tcol], where), f"{where}: {tcol}")
        named = row.get("version") if "version" in columns else None
        named = None if _empty(named) else str(named)
        key = (when // 1000, named or version)
        ver = row_versions.get(key)
        if ver is None:
            ver = version_for(reg, found, stage, when, named or version)
            row_versions[key] = ver
        tags = pts.clean_tags({c[5:]: str(row[c]) for c in tag_cols if not _empty(row[c])} or None)
        pairs = (
            [(str(row["metric"]), row["value"])]
            if long_form
            else [(c[8:] if c.startswith("metrics.") else c, row[c]) for c in metric_cols]
        )
        for name, cell in pairs:
            if _empty(cell):
                continue
            fmt.validate_key(name, f"{where}: metric name")
            value = (
                pts.parse_number(f"{name} ({where})", cell)
                if isinstance(cell, str)
                else pts.to_number(f"{name} ({where})", cell)
            )
            batch.append(pts.Point(model, ver, stage, when, name, value, tags))
            first.setdefault(name, value)
        versions.append(ver)
    if not batch:
        raise InvalidValueError(f"{file.name}: no values to import (every metric cell is empty)")
    summary = _summary(model, stage, versions, first) + f" ({len(batch)} points from {file.name})"
    written = pts.append(repo, batch, summary=summary)
    return Observation(
        model, stage, tuple(sorted(set(versions))), len(batch), written.commit, written.ref
    )


def _empty(cell: Any) -> bool:
    if cell is None:
        return True
    if isinstance(cell, float) and math.isnan(cell):
        return True
    return isinstance(cell, str) and not cell.strip()


def _cell_time(cell: Any, where: str) -> Any:
    if _empty(cell):
        raise InvalidValueError(f"{where}: the time is empty; every row needs one")
    return cell
