"""``xp import mlflow [URI]``: copy the runs of an MLflow store into xp runs.

Each MLflow run becomes one xp run whose id is derived from the MLflow run (its start time and
run id: docs/format.md, section 14), so importing again finds what it made: a run whose
imported content is unchanged is skipped, one that changed in MLflow since (it was still
running) is continued by a commit on top. Everything MLflow records is kept: status, times,
name, user, params, every metric point with its step and timestamp, tags, parent links,
datasets, logged models, and artifacts (into xp's cache). Nothing is ever written to the
MLflow store.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from xp import format as fmt
from xp.artifacts import cache
from xp.errors import MlflowException, XPError
from xp.gitstore import commit as gitcommit
from xp.gitstore.objects import ObjectWriter, PackWriter
from xp.gitstore.refs import create_ref, read_ref, update_ref
from xp.gitstore.repo import GitRepo
from xp.gitstore.trees import read_file
from xp.interop import mlflow_experiments as X
from xp.interop.mlflow_sources import Source, SourceRun, open_source
from xp.record import yamlio
from xp.record.build import build_record, commit_message
from xp.record.header import RunHeader
from xp.record.journal import RunState
from xp.record.model import FileEntry, final_value
from xp.record.names import auto_name

_STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
_BATCH = 200  # runs whose objects go into one pack before their refs are written
_MOVED_TO_META = ("mlflow.runName", "mlflow.user", "mlflow.parentRunId", "mlflow.note.content")


@dataclass
class ImportResult:
    source: str
    runs: int = 0  # runs the store has in the chosen experiments
    imported: int = 0  # new xp runs
    updated: int = 0  # xp runs continued because the MLflow run changed since
    unchanged: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    experiments: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per run not (fully) imported


Progress = Callable[[int, int], None]


def import_mlflow(
    repo: GitRepo,
    *,
    uri: str | None = None,
    experiments: Sequence[str] = (),
    progress: Progress | None = None,
) -> ImportResult:
    """Import the runs of the MLflow store at ``uri`` (default: ``MLFLOW_TRACKING_URI``,
    ``./mlflow.db`` or ``./mlruns``), only of ``experiments`` (names) when given."""
    source = open_source(uri)
    try:
        return _import(repo, source, experiments, progress)
    finally:
        source.close()


def _import(
    repo: GitRepo, source: Source, names: Sequence[str], progress: Progress | None
) -> ImportResult:
    result = ImportResult(source.label)
    found = source.experiments()
    chosen = [e for e in found if not names or e.name in names]
    missing = sorted(set(names) - {e.name for e in found})
    if missing:
        raise MlflowException(
            f"the MLflow store has no experiment {missing[0]!r}; it has:"
            f" {', '.join(sorted(e.name for e in found))}",
            "RESOURCE_DOES_NOT_EXIST",
        )
    labels = {e.id: X.label_of(e.name) for e in found}
    result.experiments = [e.name for e in chosen]
    _remember_experiments(repo, chosen)
    ids = [e.id for e in chosen]
    result.runs = source.count(ids)
    starts = source.starts()
    xp_ids = {mid: fmt.derived_run_id(ms, mid) for mid, ms in starts.items()}
    ctx = _Context(repo, PackWriter(repo.objects_dir), cache.cache_dir(repo))
    try:
        for done, run in enumerate(source.runs(ids), start=1):
            try:
                outcome = _import_run(ctx, run, labels, xp_ids, result)
            except (XPError, OSError, ValueError) as exc:
                outcome = "problem"
                result.problems.append(f"MLflow run {run.run_id}: {str(exc).splitlines()[0]}")
            if outcome in ("imported", "updated", "unchanged"):
                setattr(result, outcome, getattr(result, outcome) + 1)
            if len(ctx.refs) >= _BATCH:
                ctx.land(result)
            if progress is not None:
                progress(done, result.runs)
    finally:
        ctx.land(result)
    return result


def _remember_experiments(repo: GitRepo, chosen: list[Any]) -> None:
    """Tags and deletion of the MLflow experiments, in ``refs/xp/experiments``."""
    worth = [e for e in chosen if e.tags or e.lifecycle_stage == "deleted"]
    if not worth:
        return

    def change(entries: dict[str, X.ExperimentEntry]) -> str:
        for e in worth:
            label = X.label_of(e.name)
            exp_id = X.id_for_label(entries, label)
            have = entries.get(exp_id)
            entries[exp_id] = X.ExperimentEntry(
                id=exp_id,
                name=have.name if have else X.name_of(label),
                lifecycle_stage="deleted" if e.lifecycle_stage == "deleted" else "active",
                creation_time=e.creation_time,
                last_update_time=e.last_update_time,
                tags={**(have.tags if have else {}), **e.tags},
                artifact_location=have.artifact_location if have else None,
                aliases=have.aliases if have else (),
            )
        return f"xp: import experiments {', '.join(e.name for e in worth)}"

    X.update(repo, change)


@dataclass
class _Context:
    repo: GitRepo
    writer: PackWriter
    cache_dir: Any
    commits: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # sha -> parent, tree
    # runs whose objects wait in the writer: (ref, commit, expected ref value or absent, kind)
    refs: list[tuple[str, str, str | None, str]] = field(default_factory=list)

    def land(self, result: ImportResult) -> None:
        """Write the pending objects as one pack, then each run's ref (never before)."""
        self.writer.flush()
        for ref, sha, expected, kind in self.refs:
            try:
                if kind == "updated":
                    update_ref(self.repo.common_dir, ref, sha, expected)
                else:
                    create_ref(self.repo.common_dir, ref, sha)
            except XPError as exc:
                result.problems.append(f"{ref}: {str(exc).splitlines()[0]}")
                setattr(result, kind, getattr(result, kind) - 1)
        self.refs.clear()

    def workspace(self, sha: str | None) -> tuple[str | None, str]:
        """(parent, tree): the commit the MLflow run names when this repo has it, else none
        and the empty tree (the run's code is not known)."""
        key = sha or ""
        if key not in self.commits:
            if sha and gitcommit.is_commit(self.repo, sha):
                self.commits[key] = (sha, gitcommit.tree_of(self.repo, sha))
            else:
                self.commits[key] = (
                    None,
                    gitcommit.empty_tree(ObjectWriter(self.repo.objects_dir)),
                )
        return self.commits[key]


def _digest(run: SourceRun, artifacts: list[tuple[str, int]]) -> str:
    """What was imported, in short: a run whose digest is unchanged is not imported again.
    (Pickle protocol 4 of plain values: a fixed format, and fast.)"""
    doc = (
        run.status,
        run.start_time,
        run.end_time,
        run.name,
        run.user_id,
        run.lifecycle_stage,
        sorted(run.params.items()),
        sorted(run.tags.items()),
        [(k, run.metrics[k]) for k in sorted(run.metrics)],
        [sorted(d.items()) for d in run.datasets],
        [(m.id, m.status, sorted(m.tags.items()), sorted(m.params.items())) for m in run.models],
        artifacts,
    )
    return hashlib.sha256(pickle.dumps(doc, protocol=4)).hexdigest()


def _imported_digest(ctx: _Context, commit: str) -> str | None:
    """The digest an earlier import left in the run's meta.yaml (only that file is read)."""
    data = read_file(ctx.repo, commit, f"{fmt.RECORD_DIR}/{fmt.META_FILE}")
    if data is None:
        return None
    try:
        meta = yamlio.load(data, commit[:12])
    except XPError:
        return None
    imported = meta.get("imported") if isinstance(meta, dict) else None
    return str(imported.get("digest")) if isinstance(imported, dict) else None


def _import_run(
    ctx: _Context,
    run: SourceRun,
    labels: dict[str, str],
    xp_ids: dict[str, str],
    result: ImportResult,
) -> str:
    if run.problem and not run.start_time:
        raise ValueError(run.problem)
    repo = ctx.repo
    xp_id = xp_ids.get(run.run_id) or fmt.derived_run_id(run.start_time, run.run_id)
    deleted = run.lifecycle_stage == "deleted"
    ref = (fmt.DELETED_PREFIX if deleted else fmt.RUNS_PREFIX) + xp_id
    other = (fmt.RUNS_PREFIX if deleted else fmt.DELETED_PREFIX) + xp_id
    listed = run.artifacts()
    digest = _digest(run, listed)
    current = read_ref(repo.common_dir, ref)
    if current is None and read_ref(repo.common_dir, other) is not None:
        return "unchanged"  # deleted or restored in xp since: xp's decision stands
    if current is not None and _imported_digest(ctx, current) == digest:
        return "unchanged"
    if run.problem:
        result.problems.append(f"MLflow run {run.run_id}: {run.problem}; imported the rest")
    if run.artifacts_elsewhere and not listed:
        result.problems.append(
            f"MLflow run {run.run_id}: its artifacts are at {run.artifacts_elsewhere}, which xp"
            " cannot read directly; import through a tracking server (http://...) to get them"
        )
    state, status, end = _state(ctx, run, xp_id, labels, xp_ids, listed, result)
    record = build_record(state, status, end, ())
    series = {k: list(points) for k, points in run.metrics.items() if points}
    record = replace(record, series=series, metrics={k: final_value(p) for k, p in series.items()})
    record.meta["imported"] = {"from": "mlflow", "run_id": run.run_id, "digest": digest}
    parent, tree = ctx.workspace(state.header.baseline)
    root = gitcommit.compose_tree(repo, ctx.writer, tree, fmt.RECORD_DIR, record.to_files())
    commit = gitcommit.build_commit(
        repo, root, current or parent, commit_message(record), state.header.start_time, end
    )
    ctx.writer.add(commit)
    kind = "updated" if current is not None else "imported"
    ctx.refs.append((ref, commit.id.decode(), current, kind))
    return kind


def _state(
    ctx: _Context,
    run: SourceRun,
    xp_id: str,
    labels: dict[str, str],
    xp_ids: dict[str, str],
    listed: list[tuple[str, int]],
    result: ImportResult,
) -> tuple[RunState, str, float]:
    from xp import __version__

    tags = dict(run.tags)
    parent_mlflow = tags.get("mlflow.parentRunId")
    parent = xp_ids.get(parent_mlflow, parent_mlflow) if parent_mlflow else None
    user = run.user_id or tags.get("mlflow.user")
    note = tags.get("mlflow.note.content")
    for key in _MOVED_TO_META:
        tags.pop(key, None)
    sha = run.tags.get("mlflow.source.git.commit")
    baseline, _tree = ctx.workspace(sha)
    start = run.start_time / 1000
    last = max((p[-1][2] for p in run.metrics.values() if p), default=run.start_time) / 1000
    end = run.end_time / 1000 if run.end_time else max(start, last)
    header = RunHeader(
        id=xp_id,
        name=run.name or auto_name(xp_id),
        start_time=start,
        experiment=labels.get(run.experiment_id, X.DEFAULT_LABEL),
        command=[],
        context={"user": user} if user else {},
        parent=parent,
        message=note or None,
        xp_version=__version__,
        baseline=baseline,
        branch=None,
        dirty=False,
        all_series=True,
    )
    state = RunState(header=header, params=dict(run.params), tags=tags)  # points: the caller
    for entry in _artifacts(ctx, run, listed, result):
        state.artifacts[entry.path] = entry
    for d in run.datasets:
        state.add_dataset(d)
    taken = {p.split("/", 1)[0] for p in state.artifacts}
    for model in run.models:
        folder, n = model.name, 1
        while folder in taken:
            n += 1
            folder = f"{model.name}-{n}"
        taken.add(folder)
        for rel, read in model.files():
            data = read()
            sha256 = cache.add_bytes(ctx.cache_dir, data)
            path = f"{folder}/{rel}"
            state.artifacts[path] = FileEntry(path=path, sha256=sha256, size=len(data))
            result.artifacts += 1
            result.artifact_bytes += len(data)
        model_id = f"m-{xp_id}-{hashlib.sha256(model.id.encode()).hexdigest()[:8]}"
        model_entry: dict[str, Any] = {
            "id": model_id,
            "name": model.name,
            "path": folder,
            "status": model.status,
            "created": model.created or run.start_time,
            "updated": model.updated or run.start_time,
            "mlflow_id": model.id,
        }
        if model.model_type:
            model_entry["model_type"] = model.model_type
        if model.tags:
            model_entry["tags"] = model.tags
        if model.params:
            model_entry["params"] = model.params
        state.models[model_id] = model_entry
    status = _STATUS.get(run.status, "crashed")  # RUNNING / SCHEDULED never ended
    return state, status, end


def _artifacts(
    ctx: _Context, run: SourceRun, listed: list[tuple[str, int]], result: ImportResult
) -> list[FileEntry]:
    out = []
    for rel, _size in listed:
        name = cache.clean_name(rel)
        if run.artifact_root is not None:
            sha256, size = cache.add_file(ctx.cache_dir, run.artifact_root / rel)
        else:
            data = run.read_artifact(rel)
            sha256, size = cache.add_bytes(ctx.cache_dir, data), len(data)
        out.append(FileEntry(path=name, sha256=sha256, size=size))
        result.artifacts += 1
        result.artifact_bytes += size
    return out
