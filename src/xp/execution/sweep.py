"""Sweeps: ``xp run -p lr=0.1,0.01 -p depth=3,5 [-j N] [--random K] -- CMD``.

The workspace is snapshotted once, at the start; every point of the grid then runs in its own
temporary checkout of that snapshot (``xp.worktree``) with its overrides written into the
params file there. So the user's files are never modified, parallel points never see each
other's files, and each point records exactly the code it ran. Each point is a run of its
own, tagged ``xp.sweep: <sweep id>`` (the id of the sweep's first point run is not known in
advance, so the sweep id is a fresh run-style id) and ``xp.sweep.point: <i>/<n>``.

A point whose command fails or crashes is recorded as such and the others go on; Ctrl-C
stops every running point (recorded ``killed``) and starts no new one. A point that fails
before its run exists (its checkout cannot be made, its run cannot start) is tried once more
after a pause, then listed with the error: it is never silently missing from the sweep.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xp import format as fmt
from xp import fsutil
from xp.errors import InvalidValueError, RepositoryError, XPError
from xp.execution import overrides as ov
from xp.execution.run_command import Interrupts, LaunchResult, check_command, run_to_end, start
from xp.gitstore.repo import GitRepo
from xp.tracking.run import Run

SWEEP_TAG = "xp.sweep"
POINT_TAG = "xp.sweep.point"
RETRIES = 1  # more tries for a point that failed before its run existed
RETRY_PAUSE = 0.5  # seconds, times the attempt
Progress = Callable[[str], None]


@dataclass
class Point:
    index: int
    values: dict[str, Any]
    result: LaunchResult | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        if self.result is not None:
            return self.result.status
        return "error" if self.error else "not run"


@dataclass
class SweepResult:
    sweep_id: str
    keys: list[str]
    points: list[Point] = field(default_factory=list)
    seed: int | None = None
    duration: float = 0.0


def check_sweep_id(text: str) -> str:
    """A sweep id given by the user (``--sweep-id``): what every task of one sweep shares,
    e.g. ``$SLURM_ARRAY_JOB_ID``; a tag value, so one short line of letters, digits, ``._-``."""
    value = text.strip()
    if not value or len(value) > 64 or not all(c.isalnum() or c in "._-" for c in value):
        raise InvalidValueError(
            f"--sweep-id {text!r}: use 1 to 64 letters, digits, '.', '_' or '-'"
            " (e.g. the job id of the array)"
        )
    return value


def choose(
    grid: list[dict[str, Any]], k: int | None, seed: int | None
) -> tuple[list[int], int | None]:
    """Indexes of the points to run: all, or ``k`` distinct ones drawn with ``seed``."""
    if k is None:
        return list(range(len(grid))), None
    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
    picked = sorted(random.Random(seed).sample(range(len(grid)), min(k, len(grid))))
    return picked, seed


def sweep(
    repo: GitRepo,
    *,
    command: list[str],
    params: list[str] | tuple[str, ...] = (),
    name: str | None = None,
    experiment: str | None = None,
    message: str | None = None,
    random_k: int | None = None,
    seed: int | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
    cwd: str | os.PathLike[str] | None = None,
    sweep_id: str | None = None,
    point: int | None = None,
    tags: bool = True,
    run_id: str | None = None,
    repeat: int = 1,
) -> SweepResult:
    """Run every point (or ``random_k`` of them), ``jobs`` at a time; never raises for a point.

    ``point=I`` runs grid point I alone (0-based, the grid's order), as one task of a sweep
    an engine xp does not drive schedules (a Slurm array, a Kubernetes indexed job): every
    task passes the same ``sweep_id``, so the points are one sweep; ``run_id`` (with ``point``)
    is the id its driver chose for that point, the same in every attempt of the task, so the
    remote, which creates a ref once, never holds two runs of one point. ``tags=False``: a single
    run that is no sweep's point (an ``xp run`` isolated from another one). ``repeat=N`` runs
    each grid point N times in a row (the grid's points for ``point`` and the tags).
    """
    from xp.config import load_config
    from xp.gitstore.commit import head
    from xp.gitstore.snapshot import snapshot

    say = progress or (lambda _line: None)
    here = Path(cwd if cwd is not None else os.getcwd()).resolve()
    check_command(command, here)
    if jobs < 1:
        raise InvalidValueError("-j must be at least 1")
    if repeat < 1:
        raise InvalidValueError("--repeat must be at least 1")
    overrides = ov.parse(list(params))
    grid = ov.points(overrides, repeat)
    if point is not None:
        if random_k is not None:
            raise InvalidValueError("--point picks one grid point; drop --random")
        if not 0 <= point < len(grid):
            raise InvalidValueError(
                f"--point {point} is outside the grid: its {len(grid)} point(s) are 0 to"
                f" {len(grid) - 1}"
            )
    if sweep_id is not None:
        sweep_id = check_sweep_id(sweep_id)
    if run_id is not None:
        _check_point_run_id(repo, run_id, point)
    indexes, seed = ([point], None) if point is not None else choose(grid, random_k, seed)
    config = load_config(repo)
    baseline = head(repo).commit
    if baseline is None:
        raise RepositoryError(
            "a sweep runs each point in a checkout of your last commit and this repository has"
            " none; commit once (git commit) and retry"
        )
    # Check every override against the files before any point runs.
    _check_overrides(repo, config.params, overrides, grid)
    tree = snapshot(repo, config.max_file_size).tree
    rel = os.path.relpath(here, repo.worktree.resolve()).replace(os.sep, "/")
    rel = "." if rel.startswith("..") else rel
    result = SweepResult(sweep_id or fmt.new_run_id(), [o.key for o in overrides], seed=seed)
    result.points = [Point(i, grid[i]) for i in indexes]
    total = len(result.points) if point is None else len(grid)
    shown = f" (random {total} of {len(grid)}, seed {seed})" if random_k is not None else ""
    say(f"xp: sweep {result.sweep_id}: {total} point(s){shown}, {min(jobs, total)} at a time")
    started = time.time()
    interrupts = Interrupts()
    lock = threading.Lock()

    def one(point: Point) -> None:
        label = ", ".join(f"{k}={v}" for k, v in point.values.items())
        for attempt in range(1, RETRIES + 2):
            if interrupts.signal is not None:
                return
            with contextlib.ExitStack() as stack:
                try:
                    begun = _start_point(
                        stack,
                        repo,
                        command,
                        rel,
                        tree,
                        baseline,
                        config.params,
                        config.data,
                        overrides,
                        point,
                        result.sweep_id if tags else None,
                        total,
                        name,
                        experiment,
                        message,
                        run_id,
                    )
                except (XPError, OSError) as exc:  # no run exists yet: safe to try again
                    point.error = str(exc) or type(exc).__name__
                    if attempt <= RETRIES:
                        with lock:
                            say(
                                f"xp: [{point.index + 1}/{len(grid)}] {label}: {point.error};"
                                " retrying"
                            )
                        time.sleep(RETRY_PAUSE * attempt)
                        continue
                    break
                point.error = None
                try:
                    point.result = run_to_end(
                        begun.run,
                        command,
                        begun.cwd,
                        begun.root,
                        begun.started,
                        begun.changes,
                        None,
                        interrupts,
                    )
                except XPError as exc:
                    point.error = str(exc)
                except Exception as exc:  # a point's own failure must not stop the others
                    point.error = f"{type(exc).__name__}: {exc}"
            break
        with lock:
            r = point.result
            done = f"{r.run_id} {r.status} (exit {r.exit_code})" if r else f"error: {point.error}"
            say(f"xp: [{point.index + 1}/{len(grid)}] {label}: {done}")

    with interrupts, ThreadPoolExecutor(max_workers=min(jobs, max(total, 1))) as pool:
        list(pool.map(one, result.points))
    result.duration = round(time.time() - started, 3)
    return result


def _check_point_run_id(repo: GitRepo, run_id: str, point: int | None) -> None:
    """A point's chosen run id: with ``--point`` only, an xp id, not a run here already."""
    from xp.gitstore.refs import find_run

    if point is None:
        raise InvalidValueError("--run-id names one point's run: give --point too")
    if not fmt.ID_RE.match(run_id):
        raise InvalidValueError(
            f"--run-id {run_id!r} is not an xp run id (14 letters and digits); leave it out"
        )
    if find_run(repo.common_dir, run_id):
        raise InvalidValueError(
            f"run {run_id} exists here already: this point ran; a new attempt needs a fresh clone"
        )


def _check_overrides(
    repo: GitRepo, files: tuple[str, ...], overrides: list[ov.Override], grid: list[dict[str, Any]]
) -> None:
    """Apply the first point to a throwaway copy of the params files: bad keys fail now."""
    import shutil
    import tempfile

    if not overrides:
        return
    with tempfile.TemporaryDirectory(dir=fsutil.private_tmp(repo.xp_dir)) as tmp:
        for rel in files:
            src = repo.worktree / rel
            if src.is_file():
                dest = Path(tmp) / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
        ov.apply(Path(tmp), files, overrides, grid[0])


@dataclass
class _Begun:
    """A point whose checkout is made and whose run exists, ready to run its command."""

    run: Run
    cwd: Path
    root: Path
    started: float
    changes: list[ov.Change]


def _start_point(
    stack: contextlib.ExitStack,
    repo: GitRepo,
    command: list[str],
    rel: str,
    tree: str,
    baseline: str,
    params_files: tuple[str, ...],
    data: tuple[str, ...],
    overrides: list[ov.Override],
    point: Point,
    sweep_id: str | None,
    total: int,
    name: str | None,
    experiment: str | None,
    message: str | None,
    run_id: str | None = None,
) -> _Begun:
    """The point's temporary checkout (closed with ``stack``), its overrides and its run;
    ``sweep_id`` None: a lone run, not tagged as a sweep's point."""
    from xp.execution.temp_checkout import temp_checkout

    safe = "".join(c if c.isalnum() else "-" for c in sweep_id or "")[:40]
    label = f"sweep-{safe}-{point.index}" if sweep_id else "run"
    wt = stack.enter_context(temp_checkout(repo, baseline, tree, label, link=data))
    changes = ov.apply(wt.worktree, params_files, overrides, point.values)
    here = wt.worktree / rel
    started = time.time()
    run_name = f"{name}-{point.index + 1}" if name and total > 1 else name
    tags = {SWEEP_TAG: sweep_id, POINT_TAG: f"{point.index + 1}/{total}"} if sweep_id else {}
    run = start(
        wt,
        command=command,
        cwd=rel,
        name=run_name,
        experiment=experiment,
        message=message,
        tags=tags,
        run_id=run_id,
    )
    cwd = here if here.is_dir() else wt.worktree
    return _Begun(run, cwd, wt.worktree, started, changes)
