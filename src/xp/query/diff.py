"""Comparing two runs (or a run and the workspace): the structured result ``xp diff`` renders.

Each side is a recorded run, a commit whose tree carries a record (``xp diff main feature``),
or the workspace: the params/metrics files named in ``.xp/config.yaml`` as they are now,
and the working tree snapshotted the way a run would record it. Code differences come
from git itself (``git diff`` between the two trees, the record folder excluded).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from xp import format as fmt
from xp.errors import RunNotFoundError
from xp.gitstore import history, trees
from xp.gitstore.commit import tree_of
from xp.gitstore.repo import GitRepo
from xp.gitstore.trees import FileDiff
from xp.query.resolve import Resolved, read_record, resolve_spec
from xp.record import values
from xp.record.model import FileEntry, Point, RunRecord, final_value

# Metrics whose name says lower is better; every other series' best value is its maximum.
_LOWER_IS_BETTER = re.compile(
    r"loss|err|rmse|mse|mae|mape|perplexity|ppl|cost|wer|cer|latency|distance|regret", re.I
)


def lower_is_better(metric: str) -> bool:
    """Whether a metric's name says lower is better (loss, error, rmse...); else higher is."""
    return _LOWER_IS_BETTER.search(metric) is not None


@dataclass(frozen=True)
class Side:
    """One side of a diff."""

    label: str  # what the user typed, or "workspace"
    commit: str | None  # None for the workspace
    tree: str  # the code tree (for the workspace: a snapshot of the working tree)
    record: RunRecord | None  # None for the workspace
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    others: tuple[str, ...] = ()  # older runs of the same name (resolution note)

    @property
    def is_workspace(self) -> bool:
        return self.commit is None

    @property
    def run_id(self) -> str | None:
        return self.record.id if self.record else None

    @property
    def name(self) -> str:
        return self.record.name if self.record else "workspace"


@dataclass(frozen=True)
class ValueChange:
    """A param, metric or tag on both sides; ``None`` with ``a_has=False`` means absent."""

    key: str
    a: Any
    b: Any
    a_has: bool
    b_has: bool
    changed: bool
    delta: float | None = None  # metrics: b - a
    rel: float | None = None  # metrics: (b - a) / |a|


@dataclass(frozen=True)
class SeriesSummary:
    points: int
    last: float
    min: float
    max: float
    best: float
    best_step: int
    goal: str  # "min" or "max"


@dataclass(frozen=True)
class SeriesChange:
    key: str
    a: SeriesSummary | None
    b: SeriesSummary | None
    changed: bool


@dataclass(frozen=True)
class FileChange:
    """An artifact or data input: added, removed, changed or unchanged."""

    path: str
    status: str
    a_sha256: str | None
    b_sha256: str | None
    a_size: int | None
    b_size: int | None

    @property
    def changed(self) -> bool:
        return self.status != "unchanged"


CodeChange = FileDiff  # a code file changed between the two trees


@dataclass(frozen=True)
class RunDiff:
    a: Side
    b: Side
    same: bool  # both sides are the same commit (or both the workspace)
    params: list[ValueChange]
    metrics: list[ValueChange]
    series: list[SeriesChange]
    tags: list[ValueChange]
    inputs: list[FileChange]
    artifacts: list[FileChange]
    code: list[CodeChange]
    recorded_only: bool = False  # one side is the workspace: no tags/inputs/artifacts there
    repo: GitRepo | None = field(default=None, repr=False, compare=False)  # for ``patch()``

    def changes(self) -> RunDiff:
        """The same diff with unchanged rows left out."""
        return replace(
            self,
            params=[c for c in self.params if c.changed],
            metrics=[c for c in self.metrics if c.changed],
            series=[c for c in self.series if c.changed],
            tags=[c for c in self.tags if c.changed],
            inputs=[c for c in self.inputs if c.changed],
            artifacts=[c for c in self.artifacts if c.changed],
        )

    @property
    def empty(self) -> bool:
        d = self.changes()
        return not (d.params or d.metrics or d.series or d.tags or d.inputs or d.artifacts) and (
            not d.code
        )

    def patch(self) -> str:
        """The code diff as a patch (the record folder left out)."""
        if self.a.tree == self.b.tree or self.repo is None:
            return ""
        return trees.patch(self.repo, self.a.tree, self.b.tree, exclude=fmt.RECORD_DIR)

    def to_dict(self) -> dict[str, Any]:
        def side(s: Side) -> dict[str, Any]:
            return {
                "label": s.label,
                "run_id": s.run_id,
                "name": s.name,
                "commit": s.commit,
                "status": s.record.status if s.record else None,
            }

        out = asdict(self)
        out.pop("repo")
        out["a"], out["b"] = side(self.a), side(self.b)
        return out


# -- sides ----------------------------------------------------------------------------------
def run_side(repo: GitRepo, found: Resolved) -> Side:
    assert found.commit is not None
    from xp.query.annotations import annotate, for_commits

    record = read_record(repo, found.commit, source=found.spec)
    if record is not None:
        record = annotate(record, for_commits(repo, [found.commit]).runs.get(found.commit))
    if record is None:
        raise RunNotFoundError(
            f"{found.spec!r} ({found.commit[:12]}) carries no run record ({fmt.RECORD_DIR}/):"
            " it is a plain commit; give a run id or name, or a branch whose tip is a run"
            " (list runs with `xp show`)"
        )
    return Side(
        label=found.spec,
        commit=found.commit,
        tree=tree_of(repo, found.commit),
        record=record,
        params=dict(record.params),
        metrics=dict(record.metrics),
        others=found.others,
    )


def workspace_side(repo: GitRepo) -> Side:
    """The params/metrics files of .xp/config.yaml as they are, and a snapshot of the code."""
    from xp.config import load_config
    from xp.gitstore.snapshot import snapshot
    from xp.record.params_files import read_values

    config = load_config(repo)
    params: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    for rel in config.params:
        if (repo.worktree / rel).exists():
            params.update(read_values(repo.worktree / rel, "param"))
    for rel in config.metrics:
        if (repo.worktree / rel).exists():
            metrics.update(read_values(repo.worktree / rel, "metric"))
    tree = snapshot(repo, config.max_file_size).tree
    return Side("workspace", None, tree, None, params, metrics)


def side(repo: GitRepo, spec: str) -> Side:
    found = resolve_spec(repo, spec, allow_workspace=True)
    return workspace_side(repo) if found.is_workspace else run_side(repo, found)


def latest_on_head(repo: GitRepo, depth: int = 200) -> str:
    """The newest run whose baseline is HEAD, else the one nearest HEAD in its history."""
    from xp.query.index import open_index

    recent = history.recent(repo, "HEAD", depth)
    if recent:
        rank = {sha: i for i, sha in enumerate(recent)}
        with open_index(repo) as index:
            found = index.runs_on(recent)
        if found:
            best = min(found, key=lambda t: (rank[t[1]], _neg(t[0])))
            return str(best[0])
    raise RunNotFoundError(
        f"no run was recorded on HEAD or its last {depth} commits; name the runs to compare:"
        " `xp diff RUN [RUN]` (list runs with `xp show`)"
    )


def _neg(run_id: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in run_id)


# -- comparing ------------------------------------------------------------------------------
def _same(a: Any, b: Any) -> bool:
    if values.is_number(a) and values.is_number(b):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return bool(a == b)
    if values.is_number(a) != values.is_number(b):
        return False
    return values.text(a) == values.text(b)


def _delta(a: Any, b: Any) -> tuple[float | None, float | None]:
    """(b - a, (b - a) / |a|) for two numbers; NaN in gives NaN out; a == 0 has no ratio."""
    if not (values.is_number(a) and values.is_number(b)):
        return None, None
    try:
        delta = b - a
        fdelta = float(delta)
    except OverflowError:  # ints beyond float range
        return None, None
    if isinstance(delta, float) and math.isnan(delta) and _same(a, b):
        fdelta = 0.0  # inf vs inf
    if a == 0 or not math.isfinite(float(a)):
        return fdelta, None
    try:
        return fdelta, float(delta / abs(a))
    except (OverflowError, ZeroDivisionError):
        return fdelta, None


def compare_values(
    a: dict[str, Any], b: dict[str, Any], numeric: bool = False
) -> list[ValueChange]:
    out = []
    for key in sorted(set(a) | set(b)):
        a_has, b_has = key in a, key in b
        va, vb = a.get(key), b.get(key)
        changed = a_has != b_has or not _same(va, vb)
        delta, rel = _delta(va, vb) if numeric and a_has and b_has else (None, None)
        out.append(ValueChange(key, va, vb, a_has, b_has, changed, delta, rel))
    return out


def summarize_series(key: str, series: Mapping[str, list[Point]]) -> SeriesSummary | None:
    """The summary of one series of a record; a committed one is summarised from its file
    in one vectorised pass, never turned into a million Python tuples, and a big one as git
    streams it, one piece in memory (issue 18)."""
    from xp.query import series_read
    from xp.query.resolve import C_READER_MIN
    from xp.record.model import LazySeries, parse_series

    if isinstance(series, LazySeries):
        with series.stream(key) as opened:
            if opened is not None and opened[0] >= C_READER_MIN:
                fast = series_read.summarize(key, opened)
                if fast is not None:
                    return fast
        data = series.raw(key)
        if data is None:
            return None
        if len(data) >= C_READER_MIN:
            fast = _summarize_file(key, data)
            if fast is not None:
                return fast
        return summarize(key, parse_series(data, f"{series.source}:{series.path(key)}"))
    return summarize(key, series.get(key, []))


def _summarize_file(key: str, data: bytes) -> SeriesSummary | None:
    """``summarize`` of a series file in memory, parsed by pandas' C reader; None when the
    file is not the plain form xp writes (the caller parses it line by line)."""
    from xp.query import series_read

    return series_read.summarize(key, (len(data), iter([data])))


@dataclass(frozen=True)
class PieceSummary:
    """What ``summarize`` needs of some consecutive lines of a series file."""

    points: int
    first_step: int
    top_step: int  # the largest step here
    last: Any  # the value at the last point with that step
    lo: tuple[Any, int] | None  # (exact value, step) of the first smallest non-NaN value
    hi: tuple[Any, int] | None  # ... of the first largest


def piece_summary(text: bytes, frame: Any) -> PieceSummary | None:
    """``PieceSummary`` of whole lines ``text`` parsed into ``frame`` (a line a row). Values
    are read from their own lines, so an integer stays an integer, exactly."""
    import numpy as np

    steps = frame["step"].to_numpy()
    vals = frame["value"].to_numpy()
    n = len(steps)
    if not n:
        return None
    ends = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == 10)

    def value_at(i: int) -> Any:
        if vals.dtype.kind == "i":
            return int(vals[i])
        end = int(ends[i])
        line = text[text.rfind(b"\n", 0, end) + 1 : end].decode("ascii", "replace")
        field = line.split("\t")[1]
        return int(field) if field.lstrip("-").isdigit() else float(field)

    top = int(steps.max())
    last = value_at(n - 1 - int(np.argmax(steps[::-1] == top)))
    finite = ~np.isnan(vals) if vals.dtype.kind == "f" else None
    if finite is not None and not finite.any():
        return PieceSummary(n, int(steps[0]), top, last, None, None)
    lo_i = int(np.nanargmin(vals)) if finite is not None else int(np.argmin(vals))
    hi_i = int(np.nanargmax(vals)) if finite is not None else int(np.argmax(vals))

    def exact(i: int, larger: bool) -> int:
        """Doubles this large tie where the logged integers differ (2**53 and 2**53 + 1):
        the first of the exact extremes among the tied, as Python's min and max pick."""
        if vals.dtype.kind != "f" or not abs(vals[i]) >= 2**53 or math.isinf(vals[i]):
            return i
        best_j, best_v = i, value_at(i)
        for j in np.flatnonzero(vals == vals[i]).tolist():
            v = value_at(j)
            if (v > best_v) if larger else (v < best_v):
                best_j, best_v = j, v
        return best_j

    lo_i, hi_i = exact(lo_i, larger=False), exact(hi_i, larger=True)
    return PieceSummary(
        n,
        int(steps[0]),
        top,
        last,
        (value_at(lo_i), int(steps[lo_i])),
        (value_at(hi_i), int(steps[hi_i])),
    )


def summarize(key: str, points: list[Point]) -> SeriesSummary | None:
    if not points:
        return None
    finite = [(s, v) for s, v, _ in points if not (isinstance(v, float) and math.isnan(v))]
    goal = "min" if _LOWER_IS_BETTER.search(key) else "max"
    if not finite:
        nan = math.nan
        return SeriesSummary(len(points), final_value(points), nan, nan, nan, points[0][0], goal)
    lo = min(v for _, v in finite)
    hi = max(v for _, v in finite)
    best = lo if goal == "min" else hi
    step = next(s for s, v in finite if v == best)
    return SeriesSummary(len(points), final_value(points), lo, hi, best, step, goal)


def _files(a: tuple[FileEntry, ...], b: tuple[FileEntry, ...]) -> list[FileChange]:
    da, db = {e.path: e for e in a}, {e.path: e for e in b}
    out = []
    for path in sorted(set(da) | set(db)):
        ea, eb = da.get(path), db.get(path)
        if ea is None:
            status = "added"
        elif eb is None:
            status = "removed"
        else:
            status = "unchanged" if ea.sha256 == eb.sha256 else "changed"
        out.append(
            FileChange(
                path,
                status,
                ea.sha256 if ea else None,
                eb.sha256 if eb else None,
                ea.size if ea else None,
                eb.size if eb else None,
            )
        )
    return out


def compare(repo: GitRepo, a: Side, b: Side) -> RunDiff:
    same = a.commit == b.commit if a.commit or b.commit else True
    ra, rb = a.record, b.record
    recorded = ra is not None and rb is not None
    series: list[SeriesChange] = []
    if ra is not None and rb is not None:
        for key in sorted(set(ra.series) | set(rb.series)):
            sa = summarize_series(key, ra.series)
            sb = summarize_series(key, rb.series)
            series.append(SeriesChange(key, sa, sb, not _series_same(sa, sb)))
    return RunDiff(
        a=a,
        b=b,
        same=same,
        params=compare_values(a.params, b.params),
        metrics=compare_values(a.metrics, b.metrics, numeric=True),
        series=series,
        tags=compare_values(ra.tags, rb.tags) if ra and rb else [],
        inputs=_files(ra.inputs, rb.inputs) if ra and rb else [],
        artifacts=_files(ra.artifacts, rb.artifacts) if ra and rb else [],
        code=[] if same else trees.changed_files(repo, a.tree, b.tree, exclude=fmt.RECORD_DIR),
        recorded_only=not recorded,
        repo=repo,
    )


def _series_same(a: SeriesSummary | None, b: SeriesSummary | None) -> bool:
    if a is None or b is None:
        return a is b
    return all(
        _same(getattr(a, f), getattr(b, f)) for f in ("points", "last", "min", "max", "best_step")
    )


def code_changes(repo: GitRepo, *, a: str, b: str) -> tuple[list[CodeChange], str]:
    """The code changed between commits ``a`` and ``b`` (files with line counts, and the
    patch), the record folder left out: ``xp diff --code`` without reading either record,
    so a run with a million-point series costs no more than any other."""
    tree_a, tree_b = tree_of(repo, a), tree_of(repo, b)
    if tree_a == tree_b:
        return [], ""
    files = trees.changed_files(repo, tree_a, tree_b, exclude=fmt.RECORD_DIR)
    return files, trees.patch(repo, tree_a, tree_b, exclude=fmt.RECORD_DIR)


def diff_runs(
    repo: GitRepo, *, a: str | None = None, b: str | None = None, metric: str | None = None
) -> RunDiff:
    """Compare run ``a`` with run ``b`` (default: the latest run on HEAD vs the workspace).

    ``a`` and ``b`` follow the resolution rule of docs/runs.md: id, id prefix, name, ref,
    commit-ish whose tree carries a record, or ``workspace``. ``a`` alone may be
    ``BASE...TIP``: the best run (by ``metric``, else the newest) where TIP forked from BASE
    against the best run on TIP's own commits.
    """
    if a is not None and b is None and "..." in a:
        from xp.query.metric_history import branch_sides

        sides = branch_sides(repo, spec=a, metric=metric)
        base, tip = sides.base, sides.tip
        side_a = replace(side(repo, sides.a.run_id), label=f"{base} (best run)")
        side_b = replace(side(repo, sides.b.run_id), label=f"{tip} (best run)")
        return compare(repo, side_a, side_b)
    side_a = side(repo, a if a is not None else latest_on_head(repo))
    side_b = side(repo, b if b is not None else "workspace")
    return compare(repo, side_a, side_b)
