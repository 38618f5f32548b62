"""``xp model perf``: each version's training and validation figures next to what it did in
production (last, mean, trend), per stage and metric; and the same as JSON for a model page.

A production metric ``m`` is compared with the version's run: its *validation* figure is the
first of ``val_m``, ``val/m``, ``validation_m``, ``validation/m``, ``valid_m``, ``eval_m``,
``eval/m``, ``test_m``, ``test/m``, then ``m`` itself (what most scripts log at the end);
its *training* figure the first of ``train_m``, ``train/m``, ``training_m``, ``training/m``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from xp.errors import InvalidValueError
from xp.gitstore.repo import GitRepo
from xp.production import points as pts
from xp.production.observe import find_model
from xp.sharing import registry
from xp.sharing.registry import Version

DAY_MS = 86_400_000
VALIDATION_KEYS = (
    "val_{}",
    "val/{}",
    "validation_{}",
    "validation/{}",
    "valid_{}",
    "eval_{}",
    "eval/{}",
    "test_{}",
    "test/{}",
    "{}",
)
TRAINING_KEYS = ("train_{}", "train/{}", "training_{}", "training/{}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_MS = {"s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}


def parse_since(text: str | None, now_ms: int | None = None) -> int | None:
    """``30d``, ``12h``, ``90m``, ``2w`` back from now, or an ISO 8601 time -> milliseconds."""
    if text is None:
        return None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    match = _DURATION.match(text)
    if match:
        return now - int(float(match[1]) * _UNIT_MS[match[2].lower()])
    try:
        return pts.parse_time(text, "--since")
    except InvalidValueError:
        raise InvalidValueError(
            f"--since {text!r}: write a duration like 30d, 12h, 90m or 2w, or a time like"
            " 2026-11-01"
        ) from None


def reference(metrics: dict[str, Any], metric: str, keys: tuple[str, ...]) -> tuple[str, float]:
    """(run metric name, value) of the first of ``keys`` the run has; ("", nan) if none."""
    for pattern in keys:
        key = pattern.format(metric)
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return key, float(value)
    return "", math.nan


@dataclass(frozen=True)
class SeriesStats:
    """A production series summed up: how many points, last, mean, spread, trend per day."""

    n: int
    last: float
    last_time: int  # window_end of the last point, ms
    first_time: int
    mean: float
    min: float
    max: float
    trend_per_day: float | None  # least-squares slope; None with fewer than 2 windows

    @classmethod
    def of(cls, series: list[tuple[int, float]]) -> SeriesStats:
        """One pass over the points (sorted by window_end); the trend is the least-squares
        slope against time in days, measured from the first window (no cancellation)."""
        series = sorted(series)
        t0 = series[0][0]
        n = 0
        sx = sy = sxx = sxy = 0.0
        lo, hi = math.inf, -math.inf
        for t, v in series:
            if v != v or v in (math.inf, -math.inf):
                continue
            x = (t - t0) / DAY_MS
            n += 1
            sx += x
            sy += v
            sxx += x * x
            sxy += x * v
            lo = v if v < lo else lo
            hi = v if v > hi else hi
        den = n * sxx - sx * sx
        slope = (n * sxy - sx * sy) / den if n > 1 and den > 1e-18 * max(1.0, n * sxx) else None
        return cls(
            n=len(series),
            last=series[-1][1],
            last_time=series[-1][0],
            first_time=t0,
            mean=sy / n if n else math.nan,
            min=lo if n else math.nan,
            max=hi if n else math.nan,
            trend_per_day=slope,
        )


@dataclass(frozen=True)
class VersionPerf:
    """One version x stage x metric row of ``xp model perf``."""

    model: str
    version: str
    stage: str
    metric: str | None  # None: the version holds the stage but has no points yet
    run_id: str | None
    deployed: bool  # it holds the stage now
    training: float | None
    training_key: str
    validation: float | None
    validation_key: str
    production: SeriesStats | None
    series: tuple[tuple[int, float], ...] = field(default=(), repr=False)  # for charts


@dataclass(frozen=True)
class Perf:
    model: str
    stage: str | None
    since: int | None
    rows: list[VersionPerf]
    invalid: int = 0  # lines of fetched chains skipped as unreadable
    newer: int = 0  # chunks in a format this xp does not know, skipped
    chains: int = 0

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        rows = []
        for row in self.rows:
            item = asdict(row)
            item["series"] = (
                [{"window_end": t, "value": v} for t, v in row.series] if series else None
            )
            if not series:
                item.pop("series")
            rows.append(item)
        return {
            "model": self.model,
            "stage": self.stage,
            "since": self.since,
            "rows": rows,
            "invalid_points": self.invalid,
            "skipped_chunks": self.newer,
        }


def _run_metrics(
    repo: GitRepo, version: Version, cache: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    from xp.query.resolve import read_record

    if version.commit not in cache:
        try:
            record = read_record(repo, version.commit)
        except Exception:  # a fetched record that does not read: no reference figures
            record = None
        cache[version.commit] = dict(record.metrics) if record is not None else {}
    return cache[version.commit]


def perf(repo: GitRepo, *, name: str, stage: str | None = None, since: str | None = None) -> Perf:
    """Per version, stage and metric: training/validation figures and the production series."""
    if stage is not None:
        registry.check_name(stage, "stage")
    reg = registry.replay(repo)
    model = find_model(reg, name)
    since_ms = parse_since(since)
    groups, read = pts.read_series(repo, model=name, stage=stage, since=since_ms)
    keys: set[tuple[str, str, str | None]] = set(groups)
    for stg, ver in model.stages.items():
        if (stage is None or stg == stage) and not any(k[0] == ver and k[1] == stg for k in groups):
            keys.add((ver, stg, None))
    cache: dict[str, dict[str, Any]] = {}
    rows = []
    for ver, stg, metric in keys:
        version = model.versions.get(ver)
        metrics = _run_metrics(repo, version, cache) if version else {}
        tkey, tval = reference(metrics, metric, TRAINING_KEYS) if metric else ("", math.nan)
        vkey, vval = reference(metrics, metric, VALIDATION_KEYS) if metric else ("", math.nan)
        series = groups.get((ver, stg, metric), []) if metric else []
        rows.append(
            VersionPerf(
                model=name,
                version=ver,
                stage=stg,
                metric=metric,
                run_id=version.run_id if version else None,
                deployed=model.stages.get(stg) == ver,
                training=None if not tkey else tval,
                training_key=tkey,
                validation=None if not vkey else vval,
                validation_key=vkey,
                production=SeriesStats.of(series) if series else None,
                series=tuple(sorted(series)),
            )
        )
    rows.sort(
        key=lambda r: (
            r.stage,
            [-x if isinstance(x, int) else 0 for x in registry.semver_key(r.version)[:3]],
            r.metric or "",
        )
    )
    return Perf(name, stage, since_ms, rows, read.invalid, read.newer, read.chains)
