"""``xp commit``: record the workspace as it is, from its params and metrics files.

A commit logs everything at once and ends at once, so without artifacts, data inputs or
system metrics it needs none of the run machinery (journal, flusher thread, spill, media):
it checks each value as the log calls do, builds the run's header and record with the
functions ``Run`` uses (``tracking.record_commit``, ``record.build``) and commits. The
record is the same one ``Run`` would write for the same values at the same moment
(tests/tracking/test_commit_workspace.py compares the trees); ``tracking.run`` is not even
imported (~10 ms of the ~100 an ``xp commit`` may take, issue 18). Artifacts and data go
through ``Run``: their cache objects are announced in its journal, which keeps them from
``xp gc`` until the run is recorded.

The snapshot's scan of the workspace (``git ls-files``, ~17 ms at 10,000 files) is started
first and runs on another core while this process imports what it records with: those
imports are made inside the functions below, after the scan has started.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xp import format as fmt
from xp.config import ProjectConfig, load_config
from xp.errors import InvalidValueError
from xp.gitstore.repo import GitRepo
from xp.gitstore.snapshot import Scan, start_scan
from xp.record import yamlio

if TYPE_CHECKING:
    from xp.record.header import RunHeader


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


@dataclass(frozen=True)
class Recorded:
    """A run ``xp commit`` recorded: what the CLI prints of it."""

    id: str
    name: str
    ref: str
    commit: str
    header: RunHeader


@dataclass
class CaptureResult:
    """The run and the values it recorded (NaN metrics left out: not worth printing)."""

    run: Recorded
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
    lean = not (artifacts or data or config.artifacts or config.data)
    scan = start_scan(repo) if lean else None  # runs while the imports below are made
    try:
        return _commit(
            repo, config, scan, name, message, experiment, params, metrics, artifacts, data
        )
    finally:
        if scan is not None:
            scan.close()


def _commit(
    repo: GitRepo,
    config: ProjectConfig,
    scan: Scan | None,
    name: str | None,
    message: str | None,
    experiment: str | None,
    params: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
    artifacts: tuple[str, ...],
    data: tuple[str, ...],
) -> CaptureResult:
    from xp.record.params_files import read_values
    from xp.tracking import record_commit

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

    if scan is None or record_commit.wants_system_metrics(None, config):
        recorded = _with_run(repo, config, name, experiment, message, art_paths, data_paths)
        run = recorded(all_params, all_metrics, missing)
    else:
        run = _record(
            repo, config, name, experiment, message, all_params, all_metrics, missing, scan
        )
    return CaptureResult(
        run=run,
        params=all_params,
        metrics={k: v for k, v in all_metrics.items() if not math.isnan(v)},
        missing=missing,
    )


def _record(
    repo: GitRepo,
    config: ProjectConfig,
    name: str | None,
    experiment: str | None,
    message: str | None,
    params: dict[str, Any],
    metrics: dict[str, float | int],
    missing: list[str],
    scan: Scan | None = None,
) -> Recorded:
    """What ``Run`` does for a run that logs ``params`` and ``metrics`` (step 0) and ends:
    the same checks in the same order, the same header, record and commit. ``scan``: the
    snapshot's scan, started early."""
    from xp.record import values
    from xp.record.build import build_record
    from xp.record.context import installed_packages
    from xp.record.journal import RunState
    from xp.record.names import auto_name
    from xp.tracking import record_commit

    if name is not None:
        fmt.validate_name(name, "run name")
    if experiment is not None:
        fmt.validate_name(experiment, "experiment name")
    message = record_commit.check_message(message)
    start = time.time()
    run_id = fmt.new_run_id(start)
    header = record_commit.new_header(
        repo,
        run_id,
        start,
        name=name or auto_name(run_id),
        experiment=experiment,
        parent=None,
        message=message,
        command=None,
        cwd=None,
        all_series=False,
        auto_name=name is None,
    )
    gc_seen = record_commit.take_snapshot(repo, config, header, reuse=False, scan=scan)
    state = RunState(header=header)
    budget = {"param": 0, "metric": 0}

    def spend(kind: str, cost: int) -> None:
        if budget[kind] + cost > record_commit.WRITE_BUDGET:
            raise InvalidValueError(
                f"the run's {kind}s would pass {record_commit.WRITE_BUDGET >> 20} MiB; log large"
                " values as artifacts (log_text, log_dict)"
            )
        budget[kind] += cost

    for key, value in params.items():  # Run.log_param
        fmt.validate_key(key, "param name")
        value = values.param_value(key, value)
        if len(state.params) >= fmt.MAX_ENTRIES:
            raise InvalidValueError(f"a run holds at most {fmt.MAX_ENTRIES:,} params")
        t = type(value)
        short = t is float or t is bool or value is None or (t is int and value.bit_length() < 64)
        spend("param", len(key) + 32 if short else record_commit.cost(key, values.text(value)))
        state.params[key] = value
    for count, (key, number) in enumerate(metrics.items()):  # Run.log_metric at step 0
        fmt.validate_metric_key(key)
        if count >= fmt.MAX_ENTRIES:
            raise InvalidValueError(
                f"a run holds at most {fmt.MAX_ENTRIES:,} metrics; {key!r} would be one more"
            )
        spend("metric", (len(key) if key.isascii() else len(key.encode())) + 40)
        if type(number) is not float:
            number = values.metric_value(key, number)
        state.points.append((key, number, 0, time.time()))
    for rel in missing:  # Run.warn
        header.warnings.append(
            fmt.escape_text(f"{rel} is named in .xp/config.yaml but does not exist")
        )
    end = time.time()
    record = build_record(state, fmt.end_status("finished"), end, installed_packages())
    commit = record_commit.commit_record(
        repo, record, header.tree or "", header.baseline, start, end, check=gc_seen, header=header
    )
    return Recorded(run_id, header.name, fmt.run_ref(run_id), commit, header)


def _with_run(
    repo: GitRepo,
    config: ProjectConfig,
    name: str | None,
    experiment: str | None,
    message: str | None,
    art_paths: list[Path],
    data_paths: list[Path],
) -> Callable[[dict[str, Any], dict[str, float | int], list[str]], Recorded]:
    """A commit with artifacts, data inputs or system metrics, through ``Run``."""
    from xp.tracking.run import Run

    run = Run(
        repo, name=name, experiment=experiment, message=message, config=config, reuse_snapshot=False
    )

    def record(
        params: dict[str, Any], metrics: dict[str, float | int], missing: list[str]
    ) -> Recorded:
        try:
            for key, value in params.items():
                run.log_param(key, value)
            for key, number in metrics.items():
                run.log_metric(key, number)
            for p in art_paths:
                run.log_artifact(p)
            for p in data_paths:
                run.log_input(p)
            for rel in missing:
                run.warn(f"{rel} is named in .xp/config.yaml but does not exist")
        except BaseException:
            run.abort()
            raise
        commit = run.finish("finished")
        return Recorded(run.id, run.name, run.ref, commit, run.header)

    return record
