"""``xp diff`` with production figures: when a side is a registered model version (named
``NAME@VERSION``, ``NAME@STAGE``, ``NAME@latest``, or as its run), the diff also compares
what each version did in production, per stage and metric (points, last, mean).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from xp.errors import NotFoundError
from xp.gitstore.repo import GitRepo
from xp.production import points as pts
from xp.production.perf import SeriesStats
from xp.query.diff import RunDiff, diff_runs
from xp.sharing import registry
from xp.sharing.registry import Registry, Version

_MODEL_SPEC = re.compile(rf"^(?P<name>{registry.NAME})[@#](?P<which>[^@#\s]+)$")


@dataclass(frozen=True)
class ProductionChange:
    stage: str
    metric: str
    a: SeriesStats | None
    b: SeriesStats | None

    @property
    def delta(self) -> float | None:
        """Change of the production mean, B - A."""
        if self.a is None or self.b is None:
            return None
        return self.b.mean - self.a.mean


@dataclass(frozen=True)
class VersionDiff:
    """A run diff, plus the production figures of the sides that are model versions."""

    runs: RunDiff
    a_version: str | None = None  # "name@vX.Y.Z"
    b_version: str | None = None
    production: list[ProductionChange] = field(default_factory=list)

    def to_dict(self, runs: dict[str, Any]) -> dict[str, Any]:
        out = dict(runs)
        out["a"]["model_version"] = self.a_version
        out["b"]["model_version"] = self.b_version
        out["production"] = [{**asdict(c), "delta_mean": c.delta} for c in self.production]
        return out


def _as_version(reg: Registry, repo: GitRepo, spec: str | None) -> Version | None:
    """The version ``spec`` names as a model spec, or None when it is something else."""
    if spec is None:
        return None
    match = _MODEL_SPEC.match(spec.strip())
    if match is None or match["name"] not in reg.models:
        return None
    try:
        return registry.resolve(repo, spec.strip())
    except NotFoundError:
        return None


def _by_commit(reg: Registry, commit: str | None) -> Version | None:
    if commit is None:
        return None
    for model in reg.models.values():
        found = model.by_commit(commit)
        if found is not None:
            return found
    return None


def _figures(repo: GitRepo, v: Version) -> dict[tuple[str, str], SeriesStats]:
    series, _read = pts.read_series(repo, model=v.name, version=v.version)
    return {(stage, metric): SeriesStats.of(s) for (_v, stage, metric), s in series.items()}


def diff_versions(
    repo: GitRepo, *, a: str | None = None, b: str | None = None, metric: str | None = None
) -> VersionDiff:
    """``xp diff A B``: the run diff, and production figures for sides that are versions."""
    reg = registry.replay(repo)
    va, vb = _as_version(reg, repo, a), _as_version(reg, repo, b)
    runs = diff_runs(repo, a=va.commit if va else a, b=vb.commit if vb else b, metric=metric)
    if va is not None and a is not None:
        runs = replace(runs, a=replace(runs.a, label=a))
    if vb is not None and b is not None:
        runs = replace(runs, b=replace(runs.b, label=b))
    va = va or _by_commit(reg, runs.a.commit)
    vb = vb or _by_commit(reg, runs.b.commit)
    if va is None and vb is None:
        return VersionDiff(runs)
    fa = _figures(repo, va) if va else {}
    fb = _figures(repo, vb) if vb else {}
    rows = [
        ProductionChange(stage, metric, fa.get((stage, metric)), fb.get((stage, metric)))
        for stage, metric in sorted(set(fa) | set(fb))
    ]
    return VersionDiff(
        runs,
        f"{va.name}@{va.version}" if va else None,
        f"{vb.name}@{vb.version}" if vb else None,
        rows,
    )
