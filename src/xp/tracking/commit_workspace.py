"""``xp commit``: record the workspace as it is, from its params and metrics files."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xp.config import load_config
from xp.errors import InvalidValueError
from xp.gitstore.repo import GitRepo
from xp.record import yamlio
from xp.record.params_files import read_values
from xp.tracking.run import Run


def _number(key: str, value: Any, source: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValueError(
            f"{source}: metric {key!r} is {value!r}, not a number; move it to params or tags"
        )
    return value


def parse_assignments(items: tuple[str, ...] | list[str], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InvalidValueError(f"--{what} {item!r} must look like KEY=VALUE, e.g. lr=0.01")
        out[key.strip()] = yamlio.scalar(value)
    return out


@dataclass
class CaptureResult:
    run: Run
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float | int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def commit_workspace(
    repo: GitRepo,
    *,
    name: str | None = None,
    message: str | None = None,
    experiment: str | None = None,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    artifacts: tuple[str, ...] = (),
    data: tuple[str, ...] = (),
) -> CaptureResult:
    """Read everything first, so a bad file fails before a run exists; then log and commit."""
    config = load_config(repo)
    top = repo.worktree
    missing: list[str] = []
    all_params: dict[str, Any] = {}
    for rel in config.params:
        if (top / rel).exists():
            all_params.update(read_values(top / rel, "param"))
        elif rel != "params.yaml":
            missing.append(rel)
    all_params.update(params or {})
    all_metrics: dict[str, float | int] = {}
    for rel in config.metrics:
        if (top / rel).exists():
            for key, value in read_values(top / rel, "metric").items():
                all_metrics[key] = _number(key, value, rel)
        elif rel != "metrics.json":
            missing.append(rel)
    for key, value in (metrics or {}).items():
        all_metrics[key] = _number(key, value, "--metric")
    configured = [p for p in (*config.artifacts, *config.data) if not (top / p).exists()]
    missing += configured
    art_paths = [top / p for p in config.artifacts if p not in configured]
    art_paths += [Path(os.path.abspath(p)) for p in artifacts]
    data_paths = [top / p for p in config.data if p not in configured]
    data_paths += [Path(os.path.abspath(p)) for p in data]
    for p in art_paths + data_paths:
        if not p.exists():
            raise InvalidValueError(f"{p} does not exist; check the path")

    run = Run(
        repo, name=name, experiment=experiment, message=message, config=config, reuse_snapshot=False
    )
    try:
        for key, value in all_params.items():
            run.log_param(key, value)
        for key, value in all_metrics.items():
            run.log_metric(key, value)
        for p in art_paths:
            run.log_artifact(p)
        for p in data_paths:
            run.log_input(p)
        for rel in missing:
            run.warn(f"{rel} is named in .xp/config.yaml but does not exist")
    except BaseException:
        run.abort()
        raise
    run.finish("finished")
    return CaptureResult(
        run=run,
        params=all_params,
        metrics={k: v for k, v in all_metrics.items() if not math.isnan(v)},
        missing=missing,
    )
