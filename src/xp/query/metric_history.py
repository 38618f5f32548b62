"""A metric along a branch: per commit of its first-parent line, the value of the runs whose
baseline that commit is (``xp log --metric``, the terminal twin of the UI's history view).

Per commit the best run counts (the lowest value of a lower-is-better metric such as a loss,
else the highest) or, with ``pick="latest"``, the newest; commits without a run have none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xp.errors import InvalidValueError, RunNotFoundError
from xp.gitstore import history
from xp.gitstore.repo import GitRepo
from xp.gitstore.trees import rev_parse_commit
from xp.query.diff import lower_is_better
from xp.query.index import RunRow
from xp.query.search import select_runs


@dataclass(frozen=True)
class Point:
    commit: str
    subject: str
    time: int  # committer date, seconds since the epoch
    value: float | None  # None: no run with the metric on this commit
    run: RunRow | None  # the run the value is from
    runs: int  # runs on this commit that have the metric


@dataclass(frozen=True)
class MetricHistory:
    rev: str
    metric: str
    goal: str  # "min" or "max"
    pick: str  # "best" or "latest"
    points: list[Point]  # newest first


def metric_history(
    repo: GitRepo,
    *,
    metric: str,
    rev: str = "HEAD",
    pick: str = "best",
    where: str | None = None,
    limit: int = 20,
) -> MetricHistory:
    """``metric`` on the newest ``limit`` first-parent commits of ``rev``, newest first."""
    if pick not in ("best", "latest"):
        raise InvalidValueError(f"--pick must be best or latest, got {pick!r}")
    if limit < 1:
        raise InvalidValueError(f"-n must be 1 or more, got {limit}")
    if rev_parse_commit(repo, rev) is None:
        raise RunNotFoundError(f"no branch, tag or commit {rev!r}; list branches with `git branch`")
    column = metric if metric.startswith("metrics.") else f"metrics.{metric}"
    key = column.removeprefix("metrics.")
    keys = select_runs(repo, limit=0).keys
    if column not in keys:
        known = ", ".join(k.removeprefix("metrics.") for k in keys if k.startswith("metrics."))
        raise RunNotFoundError(f"no run has a metric {key!r}; metrics: {known or 'none yet'}")
    commits = history.first_parent(repo, rev, limit)
    by_commit: dict[str, list[RunRow]] = {}
    shas = [c.sha for c in commits]
    for i in range(0, len(shas), 200):
        clause = "baseline in (" + ", ".join(f"'{s}'" for s in shas[i : i + 200]) + ")"
        sql_where = f"({where}) and {clause}" if where and where.strip() else clause
        for row in select_runs(repo, where=sql_where, limit=None).rows:
            by_commit.setdefault(row.baseline or "", []).append(row)
    lower = lower_is_better(key)
    points = []
    for c in commits:
        candidates = [
            (float(v), r)
            for r in by_commit.get(c.sha, [])
            if isinstance(v := r.values.get(column), (int, float)) and math.isfinite(v)
        ]
        chosen = None
        if candidates:
            if pick == "latest":
                chosen = max(candidates, key=lambda t: t[1].run_id)
            else:
                chosen = (min if lower else max)(candidates, key=lambda t: t[0])
        points.append(
            Point(
                c.sha,
                c.subject,
                c.time,
                chosen[0] if chosen else None,
                chosen[1] if chosen else None,
                len(candidates),
            )
        )
    return MetricHistory(rev, key, "min" if lower else "max", pick, points)


def best_run(
    repo: GitRepo, *, commits: list[str], metric: str | None = None, where: str | None = None
) -> RunRow | None:
    """The best finished run whose baseline is one of ``commits``: by ``metric`` (lowest for
    loss-like names, else highest; runs without it left out), or the newest without one."""
    column = None if metric is None else f"metrics.{metric.removeprefix('metrics.')}"
    found: list[RunRow] = []
    for i in range(0, len(commits), 200):
        clause = "baseline in (" + ", ".join(f"'{s}'" for s in commits[i : i + 200]) + ")"
        sql_where = f"({where}) and {clause}" if where and where.strip() else clause
        found += select_runs(repo, where=sql_where, limit=None, status=("finished",)).rows
    if column is None:
        return max(found, key=lambda r: r.run_id, default=None)
    scored = [
        (float(v), r)
        for r in found
        if isinstance(v := r.values.get(column), (int, float)) and math.isfinite(v)
    ]
    if not scored:
        return None
    pick = min if lower_is_better(column.removeprefix("metrics.")) else max
    return pick(scored, key=lambda t: (t[0], t[1].run_id))[1]


@dataclass(frozen=True)
class BranchSides:
    """``BASE...TIP``: the best run of the base (where the branch forked) and of the branch."""

    base: str
    tip: str
    fork: str  # the merge base
    a: RunRow  # best run on the fork point (or the nearest ancestor that has runs)
    b: RunRow  # best run on the branch's own commits
    a_commit: str  # the commit A's runs are on


def branch_sides(
    repo: GitRepo, *, spec: str, metric: str | None = None, where: str | None = None
) -> BranchSides:
    """The two runs ``xp diff BASE...TIP`` compares (git's three-dot: from the fork point)."""
    base, _, tip = spec.partition("...")
    base, tip = base or "HEAD", tip or "HEAD"
    base_sha, tip_sha = rev_parse_commit(repo, base), rev_parse_commit(repo, tip)
    for name, sha in ((base, base_sha), (tip, tip_sha)):
        if sha is None:
            raise RunNotFoundError(f"{spec!r}: no branch, tag or commit {name!r}")
    assert base_sha is not None
    assert tip_sha is not None
    fork = history.merge_base(repo, base_sha, tip_sha)
    if fork is None:
        raise RunNotFoundError(f"{base} and {tip} share no history; compare two runs instead")
    own = history.between(repo, fork, tip_sha)
    b = best_run(repo, commits=own, metric=metric, where=where) if own else None
    if b is None:
        raise RunNotFoundError(
            f"no finished run{f' with {metric}' if metric else ''} on the commits of {tip} since"
            f" it forked from {base}; record one (xp run) and push it"
        )
    for c in history.first_parent(repo, fork, 200):
        a = best_run(repo, commits=[c.sha], metric=metric, where=where)
        if a is not None:
            return BranchSides(base, tip, fork, a, b, c.sha)
    raise RunNotFoundError(
        f"no finished run{f' with {metric}' if metric else ''} on {base} where {tip} forked"
        f" ({fork[:12]}) or in its last 200 commits; record one there"
    )
