"""``xp bisect``: the first commit on which a metric got worse, found by ``git bisect``.

git does the bisecting (``gitstore.bisect``, in a temporary worktree of its own, so the
user's work tree and any bisection of theirs stay untouched); xp only judges each commit git
proposes. A commit is judged from the runs whose baseline it is (finished, with the metric,
recorded from a clean work tree unless ``include_dirty``; several are averaged). Only where no
such run exists does xp run ``command`` there, as ``xp run`` would: checked out clean in the
temporary worktree, the config's data paths linked in, recorded as a run tagged
``xp.bisect``, so the next bisection over the same range reuses it. A commit that can be
measured neither way is skipped (``git bisect skip``).

"Worse" means above a threshold for a lower-is-better metric (loss, error, rmse...; below
for the others): ``threshold`` as given, else the good commit's value moved by ``worse_by``
(``5%`` or an absolute amount), else half way between the good and the bad commit's values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xp.errors import BisectError, InvalidValueError
from xp.execution.run_command import Sink, run_to_end, start
from xp.gitstore import bisect as git_bisect
from xp.gitstore import history, worktree
from xp.gitstore.repo import GitRepo
from xp.gitstore.trees import FileDiff, rev_parse_commit
from xp.query.diff import RunDiff, code_changes, compare, lower_is_better, side
from xp.query.index import RunRow
from xp.query.resolve import read_record
from xp.query.search import select_runs

TAG = "xp.bisect"  # on runs bisect executed: the bad..good range it was measuring


@dataclass(frozen=True)
class Measure:
    """One commit as bisect judged it."""

    commit: str
    value: float | None  # None: no run and nothing to run (skipped)
    runs: tuple[str, ...]  # ids of the runs the value comes from
    executed: bool  # True when bisect ran the command here
    verdict: str  # good, bad or skip
    note: str = ""


@dataclass(frozen=True)
class BisectResult:
    metric: str
    goal: str  # "min" (lower is better) or "max"
    threshold: float
    good: Measure
    bad: Measure
    steps: list[Measure]  # the commits git proposed, in order (endpoints not counted)
    first_bad: str | None  # None when only skipped commits are left: see candidates
    candidates: tuple[str, ...] = ()
    subject: str = ""
    parent: str | None = None
    parent_value: float | None = None
    runs: list[RunRow] = field(default_factory=list)  # the first bad commit's runs
    diff: RunDiff | None = None  # its best run against its parent's, when both have one
    code: list[FileDiff] = field(default_factory=list)  # code changed from its parent
    ignored_dirty: int = 0  # runs left out for uncommitted changes

    @property
    def executed(self) -> int:
        """How many runs bisect had to execute (endpoints included)."""
        return sum(m.executed for m in (self.good, self.bad, *self.steps))


def parse_worse_by(text: str) -> tuple[float, bool]:
    """``5%`` -> (0.05, relative); ``0.02`` -> (0.02, absolute)."""
    raw = text.strip()
    relative = raw.endswith("%")
    try:
        amount = float(raw[:-1] if relative else raw)
    except ValueError:
        raise InvalidValueError(
            f"--worse-by {text!r} must be a number or a percentage, e.g. 5% or 0.02"
        ) from None
    if not math.isfinite(amount) or amount < 0:
        raise InvalidValueError(f"--worse-by {text!r} must be zero or more")
    return (amount / 100 if relative else amount), relative


class _Judge:
    """Measures commits: existing runs first, the command where there are none."""

    def __init__(
        self,
        repo: GitRepo,
        *,
        metric: str,
        where: str | None,
        include_dirty: bool,
        command: Sequence[str],
        sink: Sink | None,
        label: str,
    ) -> None:
        self.repo = repo
        self.column = f"metrics.{metric}"
        self.metric = metric
        self.where = where
        self.include_dirty = include_dirty
        self.command = list(command)
        self.sink = sink
        self.label = label
        self.ignored_dirty = 0
        self.wt: GitRepo | None = None

    def rows(self, commit: str) -> list[RunRow]:
        clause = f"baseline = '{commit}'"
        where = f"({self.where}) and {clause}" if self.where else clause
        rows = select_runs(self.repo, where=where, limit=None, status=("finished",)).rows
        out = []
        for row in rows:
            value = row.values.get(self.column)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            if not self.include_dirty:
                record = read_record(self.repo, row.commit)
                if record is None or record.meta.get("dirty"):
                    self.ignored_dirty += 1
                    continue
            out.append(row)
        return out

    def measure(self, commit: str) -> tuple[float | None, tuple[str, ...], bool, str]:
        dirty_before = self.ignored_dirty
        rows = self.rows(commit)
        if rows:
            values = [float(r.values[self.column]) for r in rows]
            return sum(values) / len(values), tuple(r.run_id for r in rows), False, ""
        if not self.command or self.wt is None:
            if self.ignored_dirty > dirty_before:
                return (
                    None,
                    (),
                    False,
                    "its runs had uncommitted changes; --include-dirty uses them",
                )
            return None, (), False, "no run here"
        return self._execute(commit)

    def _execute(self, commit: str) -> tuple[float | None, tuple[str, ...], bool, str]:
        from xp.artifacts import cache
        from xp.config import load_config
        from xp.execution.temp_checkout import link_in

        assert self.wt is not None
        worktree.checkout_clean(self.wt, commit)
        kinds = cache.settings(self.repo).links
        for rel in load_config(self.repo).data:
            link_in(self.repo.worktree / rel, self.wt.worktree, rel, kinds)
        started = time.time()
        run = start(
            self.wt,
            command=self.command,
            cwd=".",
            name=f"bisect-{commit[:7]}",
            experiment=None,
            message=None,
            tags={TAG: self.label},
        )
        result = run_to_end(
            run, self.command, self.wt.worktree, self.wt.worktree, started, [], self.sink
        )
        value = result.metrics.get(self.metric)
        if result.status != "finished":
            return None, (result.run_id,), True, f"the command {result.status}"
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None, (result.run_id,), True, f"the command logged no {self.metric}"
        return float(value), (result.run_id,), True, ""


def bisect(
    repo: GitRepo,
    *,
    metric: str,
    good: str,
    bad: str = "HEAD",
    threshold: float | None = None,
    worse_by: str | None = None,
    goal: str | None = None,
    command: Sequence[str] = (),
    where: str | None = None,
    include_dirty: bool = False,
    first_parent: bool = False,
    sink: Sink | None = None,
    on_step: Callable[[Measure], None] | None = None,
) -> BisectResult:
    """The first commit between ``good`` and ``bad`` on which ``metric`` is worse."""
    from xp.execution.temp_checkout import temp_worktree

    if threshold is not None and worse_by is not None:
        raise InvalidValueError("give --threshold or --worse-by, not both")
    if goal not in (None, "min", "max"):
        raise InvalidValueError(f"--goal must be min or max, got {goal!r}")
    good_sha = _commit(repo, good, "--good")
    bad_sha = _commit(repo, bad, "--bad")
    if good_sha == bad_sha or not history.is_ancestor(repo, good_sha, bad_sha):
        raise BisectError(
            f"--good {good} is not an ancestor of --bad {bad}; bisect looks for the change"
            " between an older good commit and a newer bad one"
        )
    known = select_runs(repo, limit=0).keys
    if f"metrics.{metric}" not in known and not command:
        raise BisectError(
            f"no run has a metric {metric!r}, and no command was given to measure it;"
            " add `-- CMD` (e.g. -- python train.py) or check the name with `xp show`"
        )
    lower = lower_is_better(metric) if goal is None else goal == "min"
    label = f"{good_sha[:12]}..{bad_sha[:12]}"
    judge = _Judge(
        repo,
        metric=metric,
        where=where,
        include_dirty=include_dirty,
        command=command,
        sink=sink,
        label=label,
    )
    with temp_worktree(repo, bad_sha, "bisect") as wt:
        judge.wt = wt
        g_value, g_runs, g_exec, g_note = judge.measure(good_sha)
        b_value, b_runs, b_exec, b_note = judge.measure(bad_sha)
        for what, spec, value, note in (
            ("good", good, g_value, g_note),
            ("bad", bad, b_value, b_note),
        ):
            if value is None:
                raise BisectError(
                    f"cannot measure {metric} on the {what} commit {spec} ({note});"
                    f" record a run there, or give the command to run: `xp bisect ... -- CMD`"
                )
        assert g_value is not None
        assert b_value is not None
        limit = _threshold(g_value, b_value, lower, threshold, worse_by)

        def worse(value: float) -> bool:
            return value > limit if lower else value < limit

        good_m = Measure(good_sha, g_value, g_runs, g_exec, "good")
        bad_m = Measure(bad_sha, b_value, b_runs, b_exec, "bad")
        if worse(g_value):
            raise BisectError(
                f"{metric} on the good commit {good} is {g_value:.6g}, already worse than"
                f" {limit:.6g}; pick an older --good or another threshold"
            )
        if not worse(b_value):
            raise BisectError(
                f"{metric} on the bad commit {bad} is {b_value:.6g}, not worse than"
                f" {limit:.6g}: nothing to find; lower --worse-by or set --threshold"
            )
        steps: list[Measure] = []
        try:
            step = git_bisect.start(wt, bad=bad_sha, good=good_sha, first_parent=first_parent)
            while step.next is not None:
                value, runs, executed, note = judge.measure(step.next)
                verdict = "skip" if value is None else ("bad" if worse(value) else "good")
                measured = Measure(step.next, value, runs, executed, verdict, note)
                steps.append(measured)
                if on_step is not None:
                    on_step(measured)
                step = git_bisect.mark(wt, step.next, verdict)
        finally:
            git_bisect.reset(wt)
    result = BisectResult(
        metric=metric,
        goal="min" if lower else "max",
        threshold=limit,
        good=good_m,
        bad=bad_m,
        steps=steps,
        first_bad=step.first_bad,
        candidates=step.candidates,
        ignored_dirty=judge.ignored_dirty,
    )
    return _explain(repo, result, judge) if step.first_bad else result


def _commit(repo: GitRepo, spec: str, option: str) -> str:
    sha = rev_parse_commit(repo, spec)
    if sha is None:
        raise InvalidValueError(f"{option} {spec!r} names no commit; give a branch, tag or sha")
    return sha


def _threshold(
    good: float, bad: float, lower: bool, threshold: float | None, worse_by: str | None
) -> float:
    if threshold is not None:
        if not math.isfinite(threshold):
            raise InvalidValueError("--threshold must be a finite number")
        return threshold
    if worse_by is not None:
        amount, relative = parse_worse_by(worse_by)
        step = abs(good) * amount if relative else amount
        return good + step if lower else good - step
    return (good + bad) / 2


def _explain(repo: GitRepo, result: BisectResult, judge: _Judge) -> BisectResult:
    """The first bad commit's subject, runs, its parent's value and the diff between them."""
    from dataclasses import replace

    first = result.first_bad
    assert first is not None
    info = history.commit_info(repo, first)
    parent = history.first_parent_of(repo, first)
    runs = judge.rows(first)
    parent_runs = judge.rows(parent) if parent else []
    measured = {m.commit: m for m in (result.good, result.bad, *result.steps)}
    parent_value = measured[parent].value if parent in measured else None
    if parent_value is None and parent_runs:
        parent_value = sum(float(r.values[judge.column]) for r in parent_runs) / len(parent_runs)
    diff = None
    if runs and parent_runs:
        pick = min if result.goal == "min" else max
        a = pick(parent_runs, key=lambda r: float(r.values[judge.column]))
        b = pick(runs, key=lambda r: float(r.values[judge.column]))
        diff = compare(repo, side(repo, a.run_id), side(repo, b.run_id))
    code = code_changes(repo, a=parent, b=first)[0] if parent else []
    return replace(
        result,
        subject=info.subject if info else "",
        parent=parent,
        parent_value=parent_value,
        runs=runs,
        diff=diff,
        code=code,
        ignored_dirty=judge.ignored_dirty,
    )
