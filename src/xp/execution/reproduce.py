"""``xp reproduce RUN [--check]``: run a recorded run again, on its own code, and compare.

The recorded command runs in a temporary checkout of the run's baseline with the run's
tree (its code and params files exactly as they were; the record folder left out) and, where
the run logged data inputs, that data: from the cache when it was logged with
``cache=True``, else linked from the workspace when the file there still has the recorded
hash (a warning otherwise). The new run is tagged ``xp.reproduces: <original id>``.

The check compares the original's final metrics with the new run's, numpy's ``isclose``
rule with the original as reference: ``|new - old| <= atol + rtol * |old|``. NaN matches NaN
(a run that diverged to NaN and does so again has reproduced), an infinity matches only the
same infinity, a metric the new run lacks is a mismatch, and one only the new run has is
listed without failing the check, and metrics named by an ``ignore`` glob (timings such as
``train_seconds`` never reproduce) are shown but not judged. A reproduction whose command
fails fails the check.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from xp.artifacts import cache
from xp.errors import ExecutionError, InvalidValueError
from xp.execution.run_command import LaunchResult, Sink, run_to_end, start
from xp.gitstore.repo import GitRepo
from xp.record.model import FileEntry, RunRecord

DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8
TAG = "xp.reproduces"


@dataclass(frozen=True)
class Comparison:
    metric: str
    original: float | None
    reproduced: float | None
    ok: bool
    note: str = ""


@dataclass
class ReproduceResult:
    original: str
    run: LaunchResult
    comparisons: list[Comparison] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.run.status == "finished" and all(c.ok for c in self.comparisons)


def close(old: float, new: float, rtol: float, atol: float) -> bool:
    if math.isnan(old) or math.isnan(new):
        return math.isnan(old) and math.isnan(new)
    if math.isinf(old) or math.isinf(new):
        return old == new
    return abs(new - old) <= atol + rtol * abs(old)


def compare(
    old: dict[str, float],
    new: dict[str, float],
    rtol: float,
    atol: float,
    ignore: tuple[str, ...] = (),
) -> list[Comparison]:
    """One row per metric; names matching an ``ignore`` glob (e.g. ``*_seconds``) pass."""
    from fnmatch import fnmatchcase

    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if any(fnmatchcase(key, pat) for pat in ignore):
            out.append(Comparison(key, a, b, True, "ignored"))
        elif a is None:
            out.append(Comparison(key, None, b, True, "new metric"))
        elif b is None:
            out.append(Comparison(key, a, None, False, "not logged by the reproduction"))
        else:
            out.append(Comparison(key, a, b, close(float(a), float(b), rtol, atol)))
    return out


def command_of(record: RunRecord) -> list[str]:
    """The command to re-run: ``xp run``'s, or ``python <script>`` for a script run alone."""
    cmd = [str(c) for c in record.meta.get("command") or []]
    prog = os.path.basename(cmd[0]) if cmd else ""
    if not cmd or prog in ("xp", "git-xp", "__main__.py") or cmd[1:3] == ["-m", "xp"]:
        raise ExecutionError(
            f"run {record.id} recorded no command xp can re-run (it was recorded by"
            f" {' '.join(cmd[:2]) or 'the API from an interactive session'}); record runs with"
            " `xp run -- CMD` or a script to make them reproducible"
        )
    if cmd[0].endswith(".py"):
        return [sys.executable, *cmd]
    return cmd


def _place_inputs(repo: GitRepo, checkout: Path, inputs: tuple[FileEntry, ...]) -> list[str]:
    """Recorded data into the checkout: from the cache, else the workspace if unchanged."""
    from xp.execution.temp_checkout import link_in

    warnings: list[str] = []
    cache_dir = cache.cache_dir(repo)
    for entry in inputs:
        dest = checkout / cache.clean_name(entry.path)
        if dest.exists():
            continue
        obj = cache.object_path(cache_dir, entry.sha256)
        if obj.is_file():
            if entry.kind == "dir":
                for item in cache.parse_manifest(obj.read_bytes(), entry.path):
                    part = cache.object_path(cache_dir, item.sha256)
                    if not part.is_file():
                        warnings.append(f"data input {entry.path}/{item.path} is not cached")
                        continue
                    cache.materialise(part, dest / cache.clean_name(item.path), ("copy",))
            else:
                cache.materialise(obj, dest, ("reflink", "copy"))
            continue
        src = repo.worktree / entry.path
        if not src.exists():
            warnings.append(
                f"data input {entry.path} is neither cached nor in the workspace; the command"
                " must make it"
            )
            continue
        now = cache.hash_input(src, entry.path)
        if now.sha256 != entry.sha256:
            warnings.append(
                f"data input {entry.path} changed since the run (sha256 {now.sha256[:12]}, was"
                f" {entry.sha256[:12]}) and is not cached; reproducing with today's data"
            )
        link_in(src, dest)
    return warnings


def reproduce(
    repo: GitRepo,
    *,
    run: str,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    sink: Sink | None = None,
    name: str | None = None,
    ignore: tuple[str, ...] = (),
) -> ReproduceResult:
    """Re-run ``spec`` on its recorded code and data; the comparison is in the result."""
    from xp.execution.temp_checkout import temp_checkout
    from xp.gitstore.commit import tree_of
    from xp.query.resolve import load_run

    if rtol < 0 or atol < 0:
        raise InvalidValueError("--rtol and --atol must be zero or positive")
    view = load_run(repo, run)
    record = view.record
    command = command_of(record)
    cwd = str(record.meta.get("cwd") or ".")
    baseline = record.meta.get("baseline")
    with temp_checkout(repo, baseline, tree_of(repo, view.commit), f"reproduce-{record.id}") as wt:
        warnings = _place_inputs(repo, wt.worktree, record.inputs)
        here = (wt.worktree / cwd).resolve()
        if not here.is_relative_to(wt.worktree.resolve()) or not here.is_dir():
            here = wt.worktree
        started = time.time()
        new = start(
            wt,
            command=command,
            cwd=cwd,
            name=name or f"{record.name}-repro",
            experiment=record.experiment,
            message=None,
            tags={TAG: record.id},
        )
        result = run_to_end(new, command, here, wt.worktree, started, [], sink)
    comparisons = compare(dict(record.metrics), result.metrics, rtol, atol, ignore)
    return ReproduceResult(record.id, result, comparisons, warnings + result.warnings)
