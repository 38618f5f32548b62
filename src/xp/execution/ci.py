"""``xp ci``: the compute part of a pull-request check, in one step with an exit code.

1. fetch the runs (``xp pull`` from the git remote; the checkout CI made has none);
2. pick the best run where the branch forked from the base and the best run on the
   branch's own commits (``xp diff BASE...HEAD``'s sides);
3. re-run the branch's best run on its recorded code (``xp reproduce --check``);
4. compare the two; with ``max_regression``, a metric worse than the base's by more than
   that fails the check.

The templates in ``ci_templates/`` (docs/ci.md) run this and post the Markdown as a comment.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from importlib import resources

from xp.errors import InvalidValueError, XPError
from xp.execution.bisect import parse_worse_by
from xp.execution.reproduce import DEFAULT_ATOL, DEFAULT_RTOL, ReproduceResult, reproduce
from xp.execution.run_command import Sink
from xp.gitstore import remote as git_remote
from xp.gitstore.repo import GitRepo
from xp.gitstore.trees import rev_parse_commit
from xp.query.diff import RunDiff, compare, lower_is_better, side
from xp.query.metric_history import BranchSides, branch_sides
from xp.query.resolve import read_record

TEMPLATES = {"github": "github.yml", "gitlab": "gitlab-ci.yml"}


@dataclass
class CIResult:
    sides: BranchSides
    diff: RunDiff
    fetched: str | None = None  # the git remote runs were fetched from
    reproduction: ReproduceResult | None = None
    metric: str | None = None
    regression: float | None = None  # how much worse B is than A (relative or absolute)
    reasons: list[str] = field(default_factory=list)  # why the check fails
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons


def template(kind: str) -> str:
    """The CI configuration for ``github`` (Actions) or ``gitlab`` (GitLab CI)."""
    if kind not in TEMPLATES:
        raise InvalidValueError(f"no template {kind!r}; pick one of {', '.join(TEMPLATES)}")
    return (resources.files("xp.execution") / "ci_templates" / TEMPLATES[kind]).read_text()


def default_base(repo: GitRepo) -> str:
    """The base branch as the CI system names it, else ``origin/main`` or ``main``."""
    for var in ("GITHUB_BASE_REF", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME"):
        name = os.environ.get(var)
        if name:
            return f"origin/{name}"
    for candidate in ("origin/main", "origin/master", "main", "master"):
        if rev_parse_commit(repo, candidate):
            return candidate
    raise InvalidValueError("cannot tell the base branch; name it: xp ci --base origin/main")


def ci(
    repo: GitRepo,
    *,
    base: str | None = None,
    head: str = "HEAD",
    metric: str | None = None,
    remote: str | None = None,
    fetch: bool = True,
    check: bool = True,
    max_regression: str | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    ignore: tuple[str, ...] = (),
    sink: Sink | None = None,
    trust: bool = False,
) -> CIResult:
    """Fetch, pick both sides, reproduce the branch's best run, judge; see the module doc."""
    from xp.sharing.push_pull import fetch_objects, pull

    if max_regression is not None and metric is None:
        raise InvalidValueError("--max-regression needs --metric: the metric to hold")
    limit = parse_worse_by(max_regression) if max_regression is not None else None
    fetched = None
    if fetch and (remote is not None or git_remote.names(repo)):
        fetched = pull(repo, remote=remote).git_remote
    base = base or default_base(repo)
    sides = branch_sides(repo, spec=f"{base}...{head}", metric=metric)
    diff = compare(
        repo,
        replace(side(repo, sides.a.run_id), label=f"{sides.base} (best run)"),
        replace(side(repo, sides.b.run_id), label=f"{sides.tip} (best run)"),
    )
    result = CIResult(sides, diff, fetched, metric=metric)
    if check:
        record = read_record(repo, sides.b.commit)
        if record is not None and record.inputs:  # the data it was trained on, if cached
            try:
                fetch_objects(repo, commits=[sides.b.commit])
            except XPError as exc:
                result.warnings.append(f"data of run {sides.b.run_id} not fetched: {exc}")
        repro = reproduce(
            repo,
            run=sides.b.run_id,
            rtol=rtol,
            atol=atol,
            sink=sink,
            ignore=ignore,
            trust=trust,  # a fetched run's command runs only when the caller says so
        )
        result.reproduction = repro
        result.warnings += repro.warnings
        if not repro.ok:
            bad = [c.metric for c in repro.comparisons if not c.ok]
            result.reasons.append(
                f"the reproduction of {sides.b.run_id} "
                + (f"differs in {', '.join(bad)}" if bad else f"{repro.run.status}")
            )
    if metric is not None:
        key = f"metrics.{metric.removeprefix('metrics.')}"
        a, b = sides.a.values.get(key), sides.b.values.get(key)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            lower = lower_is_better(key.removeprefix("metrics."))
            worse = (b - a) if lower else (a - b)
            if limit is not None:
                amount, relative = limit
                result.regression = worse / abs(a) if relative and a else worse
                allowed = amount if not relative or a else math.inf
                if result.regression > allowed:
                    shown = f"{result.regression:.1%}" if relative else f"{worse:.6g}"
                    result.reasons.append(
                        f"{key.removeprefix('metrics.')} is {shown} worse than on {base}"
                        f" ({b:.6g} vs {a:.6g}; allowed: {max_regression})"
                    )
    return result
