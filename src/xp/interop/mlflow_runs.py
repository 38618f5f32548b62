"""MLflow's tracking model over xp runs: the one backend behind ``xp.mlflow`` (MLflow's API
without MLflow) and the MLflow tracking-store plugin (``MLFLOW_TRACKING_URI=xp:``).

It speaks MLflow's semantics (string params, upper-case statuses, ``step`` 0 by default,
system tags such as ``mlflow.runName``) and keeps xp's format: a run is an xp run, logged
live through ``tracking.run.Run`` and committed as usual, so ``xp show``, ``xp diff`` and
``git push`` see the same runs whichever API logged them. Where MLflow's model and xp's
differ the mapping is fixed here:

- experiments: labels in runs, ids derived from them (``mlflow_experiments``);
- ``mlflow.runName`` / ``mlflow.parentRunId`` / ``mlflow.note.content`` / ``mlflow.user`` are
  the run's name, parent, message and user in ``meta.yaml``, shown back as tags; the other
  system tags are kept as tags only when they say more than the run already records;
- a write to a run that ended continues it (``tracking.resume``): a new commit on top;
- ``delete_run`` moves the ref to ``refs/xp/deleted/runs/`` (restorable, out of ``xp show``);
- artifacts go to xp's cache; a run's artifact URI is
  ``xp-artifacts:<work tree>/.xp/runs/<id>/artifacts``;
- statuses: xp's ``crashed`` (and an unreadable record) are MLflow's ``FAILED``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from xp import format as fmt
from xp.errors import MlflowException, RunActiveError, XPError
from xp.format import RunRef
from xp.gitstore.refs import create_ref, delete_ref, list_refs, read_ref
from xp.gitstore.repo import GitRepo
from xp.interop import mlflow_entities as E
from xp.interop import mlflow_experiments as X
from xp.interop import mlflow_search as S
from xp.interop import mlflow_validation as V
from xp.record import values as xpvalues
from xp.record.build import to_ms
from xp.record.journal import RunState, replay
from xp.record.model import FileEntry, RunRecord
from xp.tracking.run import Run, read_record

ARTIFACT_SCHEME = "xp-artifacts"
_MARK = "/.xp/runs"

TO_MLFLOW = {
    "running": "RUNNING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "killed": "KILLED",
    "crashed": "FAILED",
    "invalid": "FAILED",
}
FROM_MLFLOW = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
RUN_NAME = "mlflow.runName"
PARENT = "mlflow.parentRunId"
NOTE = "mlflow.note.content"
USER = "mlflow.user"
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
GIT_COMMIT = "mlflow.source.git.commit"
GIT_BRANCH = "mlflow.source.git.branch"
LOG_MODEL_HISTORY = "mlflow.log-model.history"
DATASET_CONTEXT = "mlflow.data.context"


def _not_found(run_id: str) -> MlflowException:
    return MlflowException(f"Run with id={run_id} not found", "RESOURCE_DOES_NOT_EXIST")


def _as_mlflow(exc: XPError) -> MlflowException:
    """An xp refusal in MLflow's clothes, keeping xp's message (it names the fix)."""
    if isinstance(exc, MlflowException):
        return exc
    code = "INVALID_PARAMETER_VALUE"
    if isinstance(exc, RunActiveError):
        code = "INVALID_STATE"
    return MlflowException(str(exc), code)


# -- artifact URIs -----------------------------------------------------------------------------
def artifact_root(repo: GitRepo) -> str:
    """Where runs' artifacts are, in MLflow's layout: ``<root>/<run id>/artifacts/<path>``.
    Written ``xp-artifacts:/abs/path`` (no empty host), the form MLflow normalises URIs to."""
    return f"{ARTIFACT_SCHEME}:{quote(str(repo.worktree))}{_MARK}"


def run_artifact_uri(repo: GitRepo, run_id: str, path: str | None = None) -> str:
    uri = f"{artifact_root(repo)}/{run_id}/artifacts"
    return f"{uri}/{path.strip('/')}" if path and path.strip("/") else uri


def parse_artifact_uri(uri: str) -> tuple[Path, str | None, str]:
    """(work tree, run id or None for the root, path inside the run) of an artifact URI
    (``xp-artifacts:/abs`` or ``xp-artifacts:///abs``)."""
    prefix = f"{ARTIFACT_SCHEME}:"
    body = uri[len(prefix) :] if uri.startswith(prefix) else ""
    if body.startswith("//"):
        body = body[2:]
    if not body.startswith("/") or _MARK not in body:
        raise MlflowException(
            f"{uri!r} is not an xp artifact URI"
            f" ({prefix}/<work tree>{_MARK}/<run id>/artifacts/<path>)",
            "INVALID_PARAMETER_VALUE",
        )
    top, _, rest = body.partition(_MARK)
    parts = [p for p in rest.split("/") if p]
    run_id = parts[0] if parts else None
    if len(parts) > 1 and parts[1] != "artifacts":
        raise MlflowException(
            f"{uri!r} is not an xp artifact URI: expected <run id>/artifacts after {_MARK}",
            "INVALID_PARAMETER_VALUE",
        )
    return Path(unquote(top)), run_id, "/".join(parts[2:])


# -- the facts of one run, whatever holds them -------------------------------------------------
Latest = tuple[float, int, int]  # value, timestamp (ms), step


@dataclass
class Facts:
    """One run as the MLflow view needs it, read from a live run, a record or an index row."""

    id: str
    name: str
    label: str
    status: str  # xp's
    start: float | None
    end: float | None
    user: str | None = None
    baseline: str | None = None
    branch: str | None = None
    parent: str | None = None
    message: str | None = None
    source: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Latest] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lifecycle: str = "active"
    datasets: list[dict[str, Any]] | None = None  # None: not read (an index row)
    models: list[dict[str, Any]] | None = None
    complete: bool = True  # False for index rows: metric times and steps are unknown


def _latest(points: Iterable[tuple[str, float, int, float]]) -> dict[str, Latest]:
    """xp's final value per metric (highest step; the last logged among equal steps)."""
    out: dict[str, Latest] = {}
    for key, value, step, ts in points:
        have = out.get(key)
        if have is None or step >= have[2]:
            out[key] = (value, to_ms(ts), step)
    return out


def facts_of_state(state: RunState, status: str, lifecycle: str = "active") -> Facts:
    h = state.header
    ctx = h.context or {}
    return Facts(
        id=h.id,
        name=h.name,
        label=h.experiment or X.DEFAULT_LABEL,
        status=status,
        start=h.start_time,
        end=None,
        user=ctx.get("user"),
        baseline=h.baseline,
        branch=h.branch,
        parent=h.parent,
        message=h.message,
        source=h.command[0] if h.command else None,
        params=dict(state.params),
        metrics=_latest(state.points),
        tags=dict(state.tags),
        lifecycle=lifecycle,
        datasets=list(state.datasets),
        models=list(state.models.values()),
    )


def facts_of_record(record: RunRecord, lifecycle: str = "active") -> Facts:
    from xp.record.build import parse_time

    meta = record.meta
    start = parse_time(meta.get("start_time"))
    end = parse_time(meta.get("end_time"))
    metrics: dict[str, Latest] = {}
    for key, value in record.metrics.items():
        series = record.series.get(key)
        if series:
            best = series[0]
            for point in series[1:]:
                if point[0] >= best[0]:
                    best = point
            metrics[key] = (value, best[2], best[0])
        else:
            metrics[key] = (value, to_ms(end or start or 0), 0)
    command = meta.get("command")
    return Facts(
        id=record.id,
        name=record.name,
        label=record.experiment,
        status=record.status,
        start=start,
        end=end,
        user=_text(meta.get("user")),
        baseline=_text(meta.get("baseline")),
        branch=_text(meta.get("branch")),
        parent=_text(meta.get("parent")),
        message=_text(meta.get("message")),
        source=_text(command[0]) if isinstance(command, list) and command else None,
        params=dict(record.params),
        metrics=metrics,
        tags=dict(record.tags),
        lifecycle=lifecycle,
        datasets=list(record.datasets),
        models=list(record.models),
    )


def facts_of_row(row: Any) -> Facts:
    """From a query-index row (``xp.query.index.RunRow``): enough to filter and sort."""
    params: dict[str, Any] = {}
    metrics: dict[str, Latest] = {}
    tags: dict[str, str] = {}
    end_ms = to_ms(row.end or row.start or 0)
    for key, value in row.values.items():
        kind, _, name = key.partition(".")
        if kind == "params":
            params[name] = value
        elif kind == "metrics":
            number = float(value) if xpvalues.is_number(value) else float("nan")
            metrics[name] = (number, end_ms, 0)
        elif kind == "tags":
            tags[name] = str(value)
    return Facts(
        id=row.run_id,
        name=row.name,
        label=row.experiment,
        status=row.status,
        start=row.start,
        end=row.end,
        user=row.user,
        baseline=row.baseline,
        branch=row.branch,
        parent=row.parent,
        message=row.message,
        source=row.source,
        params=params,
        metrics=metrics,
        tags=tags,
        datasets=None,
        models=None,
        complete=False,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def param_text(value: Any) -> str:
    """MLflow's text of a param: ``str(value)``, as MLflow stores what it is given."""
    return value if isinstance(value, str) else str(value)


def mlflow_tags(f: Facts) -> dict[str, str]:
    """The run's tags as MLflow shows them: its own, plus the system tags xp keeps in
    ``meta.yaml`` (stored tags win, e.g. an imported run's ``mlflow.source.name``)."""
    out = {RUN_NAME: f.name}
    if f.user:
        out[USER] = f.user
    if f.source is not None:
        out[SOURCE_NAME] = f.source
        out[SOURCE_TYPE] = "LOCAL"
    if f.baseline:
        out[GIT_COMMIT] = f.baseline
    if f.branch:
        out[GIT_BRANCH] = f.branch
    if f.parent:
        out[PARENT] = f.parent
    if f.message:
        out[NOTE] = f.message
    out.update(f.tags)
    return out


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else to_ms(seconds)


def dataset_entity(entry: dict[str, Any]) -> E.DatasetInput:
    tags = entry.get("tags") or {}
    return E.DatasetInput(
        E.Dataset(
            name=str(entry.get("name", "")),
            digest=str(entry.get("digest", "")),
            source_type=str(entry.get("source_type", "")),
            source=str(entry.get("source", "")),
            schema=_text(entry.get("schema")),
            profile=_text(entry.get("profile")),
        ),
        [E.InputTag(str(k), str(v)) for k, v in tags.items()],
    )


# -- live runs of this process -----------------------------------------------------------------
_live_lock = threading.RLock()
_live: dict[tuple[str, str], Run] = {}  # (git common dir, run id) -> run


def _key(repo: GitRepo, run_id: str) -> tuple[str, str]:
    return str(repo.common_dir), run_id


def live_run(repo: GitRepo, run_id: str) -> Run | None:
    return _live.get(_key(repo, run_id))


def live_runs(repo: GitRepo) -> list[Run]:
    with _live_lock:
        return [r for (common, _), r in _live.items() if common == str(repo.common_dir)]


def _register(run: Run) -> None:
    from xp.tracking.fluent import at_exit

    at_exit(end_live_runs)
    with _live_lock:
        _live[_key(run.repo, run.id)] = run


def _unregister(run: Run) -> None:
    with _live_lock:
        _live.pop(_key(run.repo, run.id), None)


def end_live_runs(status: str = "finished") -> None:
    """At exit, every run still live here is committed with the process's outcome
    (``finished``, ``failed`` after an uncaught exception, ``killed`` by a signal): MLflow's
    active runs, and runs a script created and never ended (``client.create_run`` without
    ``set_terminated``, which MLflow would leave RUNNING forever)."""
    with _live_lock:
        runs = list(_live.values())
    for run in runs:
        with contextlib.suppress(Exception):
            finish(run, status)


def finish(run: Run, status: str, end_time: float | None = None) -> str:
    try:
        return run.finish(status, end_time=end_time)
    finally:
        if run.status != "running":
            _unregister(run)


# -- the backend -------------------------------------------------------------------------------
_record_cache: dict[str, RunRecord] = {}  # commit sha -> record: commits never change
_backends: dict[tuple[str, str], Backend] = {}


def backend_for(path: str | os.PathLike[str] | None = None) -> Backend:
    """The backend of the repository at ``path`` (default: the working directory's); one
    per repository and process, shared by ``xp.mlflow`` and the plugin."""
    from xp.gitstore.repo import find_repo

    repo = find_repo(path)
    key = (str(repo.common_dir), str(repo.worktree))
    with _live_lock:
        found = _backends.get(key)
        if found is None:
            found = _backends[key] = Backend(repo)
        return found


class Backend:
    """MLflow's store operations on one repository (thread-safe; one per repo and process)."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self._lock = threading.RLock()
        self._run_locks: dict[str, threading.RLock] = {}  # see _holding
        self._labels: dict[str, str] = {}  # experiment id -> label, learned as we go
        from xp.tracking.recover import recover

        recover(repo)

    # -- experiments -----------------------------------------------------------------------
    def _label_stats(self) -> dict[str, X.LabelStats]:
        from xp.query.index import open_index

        out: dict[str, X.LabelStats] = {}
        with open_index(self.repo) as index:
            for label, n, first, last in index.experiments():
                out[label] = X.LabelStats(n, _ms(first), _ms(last))
        for run in live_runs(self.repo):
            label = run.header.experiment or X.DEFAULT_LABEL
            if label not in out:
                ms = _ms(run.start_time)
                out[label] = X.LabelStats(1, ms, ms)
        return out

    def experiments(self) -> dict[str, X.ExperimentEntry]:
        _sha, stored = X.stored(self.repo)
        merged = X.merge(stored, self._label_stats())
        for exp_id, entry in merged.items():
            self._labels.setdefault(exp_id, X.label_of(entry.name))
        return merged

    def _entry(self, experiment_id: str) -> X.ExperimentEntry:
        exp_id = str(experiment_id)
        entries = self.experiments()
        if exp_id not in entries:
            raise MlflowException(
                f"No Experiment with id={exp_id} exists", "RESOURCE_DOES_NOT_EXIST"
            )
        return entries[exp_id]

    def label_of_id(self, experiment_id: str) -> str:
        """The label runs of experiment ``experiment_id`` carry (fast when known)."""
        exp_id = str(experiment_id)
        if exp_id == X.DEFAULT_ID:
            return X.DEFAULT_LABEL
        label = self._labels.get(exp_id)
        if label is None:
            label = X.label_of(self._entry(exp_id).name)
        return label

    def id_of_label(self, label: str) -> str:
        for exp_id, known in self._labels.items():
            if known == label:
                return exp_id
        _sha, stored = X.stored(self.repo)
        exp_id = X.id_for_label(stored, label)
        self._labels.setdefault(exp_id, label)
        return exp_id

    def experiment(self, entry: X.ExperimentEntry) -> E.Experiment:
        return E.Experiment(
            experiment_id=entry.id,
            name=entry.name,
            artifact_location=entry.artifact_location or artifact_root(self.repo),
            lifecycle_stage=entry.lifecycle_stage,
            tags=entry.tags,
            creation_time=entry.creation_time,
            last_update_time=entry.last_update_time,
        )

    def create_experiment(
        self,
        name: Any,
        artifact_location: str | None = None,
        tags: dict[str, Any] | Iterable[Any] | None = None,
    ) -> str:
        V.check_experiment_name(name)
        tag_map = _tag_map(tags)
        for key, value in tag_map.items():
            V.check_name(key, "key", "tag")
            if len(value) > V.MAX_EXPERIMENT_TAG_VALUE_LENGTH:
                raise V._bad(
                    f"'value' exceeds the maximum length of {V.MAX_EXPERIMENT_TAG_VALUE_LENGTH}"
                    " characters"
                )
        label = X.label_of(name)
        with self._lock:
            if X.find_by_name(self.experiments().values(), name) is not None:
                raise MlflowException(
                    f"Experiment(name={name}) already exists.", "RESOURCE_ALREADY_EXISTS"
                )
            exp_id = X.derived_id(label)
            created: list[str] = []

            def change(entries: dict[str, X.ExperimentEntry]) -> str:
                taken = entries.get(exp_id)
                if taken is not None or any(label in e.labels for e in entries.values()):
                    raise MlflowException(
                        f"Experiment(name={name}) already exists.", "RESOURCE_ALREADY_EXISTS"
                    )
                now = X.now_ms()
                entries[exp_id] = X.ExperimentEntry(
                    id=exp_id,
                    name=name,
                    creation_time=now,
                    last_update_time=now,
                    tags=tag_map,
                    artifact_location=artifact_location,
                )
                created.append(exp_id)
                return f"xp: create experiment {name}"

            X.update(self.repo, change)
            self._labels[exp_id] = label
            return exp_id

    def get_experiment(self, experiment_id: Any) -> E.Experiment:
        return self.experiment(self._entry(str(experiment_id)))

    def get_experiment_by_name(self, name: str) -> E.Experiment | None:
        entry = X.find_by_name(self.experiments().values(), name)
        return None if entry is None else self.experiment(entry)

    def search_experiments(
        self,
        view_type: int = E.ViewType.ACTIVE_ONLY,
        max_results: int | None = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> E.PagedList:
        S.check_max_results(max_results)
        clauses = S.parse_experiment_filter(filter_string)
        orders = [S.experiment_order(o) for o in order_by or []]
        stages = E.LifecycleStage.view_type_to_stages(view_type)
        rows = []
        for entry in self.experiments().values():
            if entry.lifecycle_stage not in stages:
                continue
            row = S.SearchRow(
                attributes={
                    "name": entry.name,
                    "experiment_id": entry.id,
                    "creation_time": entry.creation_time,
                    "last_update_time": entry.last_update_time,
                },
                params={},
                metrics={},
                tags=entry.tags,
                payload=entry,
            )
            if S.matches(row, clauses):
                rows.append(row)
        # MLflow's default: newest first, then by id
        rows.sort(key=lambda r: _id_order(r.attributes["experiment_id"]))
        if not any(o.key == "creation_time" for o in orders):
            rows.sort(key=lambda r: -(r.attributes["creation_time"] or 0))
        for order in reversed(orders):
            rows.sort(key=S.sort_key(order), reverse=not order.ascending)
        page, token = S.paginate(rows, max_results, page_token)
        return E.PagedList([self.experiment(r.payload) for r in page], token)

    def _change_experiment(
        self, experiment_id: str, edit: Callable[[X.ExperimentEntry], X.ExperimentEntry], what: str
    ) -> None:
        entry = self._entry(experiment_id)

        def change(entries: dict[str, X.ExperimentEntry]) -> str:
            current = entries.get(entry.id, entry)
            entries[entry.id] = replace(edit(current), last_update_time=X.now_ms())
            return f"xp: {what} experiment {entry.name}"

        X.update(self.repo, change)

    def delete_experiment(self, experiment_id: Any) -> None:
        if str(experiment_id) == X.DEFAULT_ID:
            raise MlflowException(
                "Cannot delete the default experiment '0'. This is a reserved experiment.",
                "INVALID_PARAMETER_VALUE",
            )
        self._change_experiment(
            str(experiment_id), lambda e: replace(e, lifecycle_stage=X.DELETED), "delete"
        )

    def restore_experiment(self, experiment_id: Any) -> None:
        self._change_experiment(
            str(experiment_id), lambda e: replace(e, lifecycle_stage=X.ACTIVE), "restore"
        )

    def rename_experiment(self, experiment_id: Any, new_name: Any) -> None:
        V.check_experiment_name(new_name)
        if X.find_by_name(self.experiments().values(), new_name) is not None:
            raise MlflowException(
                f"Experiment(name={new_name}) already exists.", "RESOURCE_ALREADY_EXISTS"
            )

        def rename(e: X.ExperimentEntry) -> X.ExperimentEntry:
            old = X.label_of(e.name)
            aliases = e.aliases if old in e.aliases else (*e.aliases, old)
            return replace(e, name=new_name, aliases=aliases)

        self._change_experiment(str(experiment_id), rename, "rename")
        self._labels[str(experiment_id)] = X.label_of(new_name)

    def set_experiment_tag(self, experiment_id: Any, key: str, value: Any) -> None:
        V.check_name(key, "key", "tag")
        text = str(value)
        if len(text) > V.MAX_EXPERIMENT_TAG_VALUE_LENGTH:
            raise V._bad(
                f"'value' exceeds the maximum length of {V.MAX_EXPERIMENT_TAG_VALUE_LENGTH}"
                " characters"
            )
        self._change_experiment(
            str(experiment_id), lambda e: replace(e, tags={**e.tags, key: text}), "tag"
        )

    def delete_experiment_tag(self, experiment_id: Any, key: str) -> None:
        def drop(e: X.ExperimentEntry) -> X.ExperimentEntry:
            if key not in e.tags:
                raise MlflowException(
                    f"No tag with name: {key} in experiment with id {e.id}",
                    "RESOURCE_DOES_NOT_EXIST",
                )
            return replace(e, tags={k: v for k, v in e.tags.items() if k != key})

        self._change_experiment(str(experiment_id), drop, "untag")

    # -- finding runs -----------------------------------------------------------------------
    def _record(self, commit: str) -> RunRecord | None:
        record = _record_cache.get(commit)
        if record is None:
            record = read_record(self.repo, commit)
            if record is not None:
                if len(_record_cache) > 512:
                    _record_cache.clear()
                _record_cache[commit] = record
        return record

    def _committed(self, run_id: str) -> tuple[str, str] | None:
        """(commit, lifecycle) of a recorded run: local, fetched, or deleted."""
        common = self.repo.common_dir
        sha = read_ref(common, fmt.run_ref(run_id))
        deleted = read_ref(common, fmt.DELETED_PREFIX + run_id)
        if deleted is not None:
            return deleted, "deleted"
        if sha is not None:
            return sha, "active"
        for name, value in list_refs(common, fmt.REMOTES_PREFIX).items():
            ref = RunRef.parse(name)
            if ref is not None and ref.id == run_id:
                return value, "active"
        return None

    def _journal_state(self, run_id: str) -> RunState | None:
        """The state of run ``run_id`` if another process is logging it right now."""
        from xp.record.journal import SUFFIX
        from xp.tracking.recover import _base

        path = self.repo.xp_dir / "journal" / f"{run_id}{SUFFIX}"
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            return replay(data, base=_base(self.repo, data))
        except (ValueError, KeyError, TypeError, XPError):
            return None

    def facts(self, run_id: str) -> Facts:
        run_id = str(run_id)
        run = live_run(self.repo, run_id)
        if run is not None:
            return facts_of_state(run.state, "running")
        found = self._committed(run_id)
        if found is not None and found[1] == "deleted":
            record = self._record(found[0])
            if record is not None:
                return facts_of_record(record, "deleted")
        state = self._journal_state(run_id) if fmt.ID_RE.match(run_id) else None
        if state is not None:
            return facts_of_state(state, "running")
        if found is not None:
            record = self._record(found[0])
            if record is not None:
                return facts_of_record(record, found[1])
        raise _not_found(run_id)

    def run_entity(self, f: Facts) -> E.Run:
        if not f.complete:
            f = self.facts(f.id)
        info = self.run_info(f)
        metrics = [
            E.Metric(key, float(value), ts, step, run_id=f.id)
            for key, (value, ts, step) in f.metrics.items()
        ]
        data = E.RunData(
            metrics=metrics,
            params=[E.Param(k, param_text(v)) for k, v in f.params.items()],
            tags=[E.RunTag(k, v) for k, v in mlflow_tags(f).items()],
        )
        inputs = E.RunInputs([dataset_entity(d) for d in f.datasets or []])
        outputs = E.RunOutputs(
            [
                E.LoggedModelOutput(str(m["id"]), int(m.get("step") or 0))
                for m in f.models or []
                if not m.get("deleted")
            ]
        )
        return E.Run(info, data, inputs, outputs)

    def run_info(self, f: Facts) -> E.RunInfo:
        return E.RunInfo(
            run_id=f.id,
            experiment_id=self.id_of_label(f.label),
            user_id=f.tags.get(USER) or f.user or "unknown",
            status=TO_MLFLOW.get(f.status, "FAILED"),
            start_time=_ms(f.start) or 0,
            end_time=_ms(f.end),
            lifecycle_stage=f.lifecycle,
            artifact_uri=run_artifact_uri(self.repo, f.id),
            run_name=f.name,
        )

    def get_run(self, run_id: str) -> E.Run:
        V.check_run_id(run_id)
        return self.run_entity(self.facts(run_id))

    # -- searching runs ---------------------------------------------------------------------
    def search_rows(
        self,
        experiment_ids: Sequence[Any],
        filter_string: str | None = None,
        run_view_type: int = E.ViewType.ACTIVE_ONLY,
        order_by: Sequence[str] | None = None,
    ) -> list[S.SearchRow]:
        """Every run of the experiments that matches, in MLflow's order."""
        from xp.query.index import open_index

        clauses = S.parse_filter(filter_string)
        for clause in order_by or []:
            S.parse_order_by(clause)
        stages = E.LifecycleStage.view_type_to_stages(run_view_type)
        labels: set[str] = set()
        entries = None
        for exp_id in experiment_ids:
            exp_id = str(exp_id)
            if exp_id == X.DEFAULT_ID:
                labels.add(X.DEFAULT_LABEL)
                continue
            entries = entries or self.experiments()
            if exp_id in entries:
                labels.update(entries[exp_id].labels)
        if not labels:
            return []
        found: dict[str, Facts] = {}
        deleted = self._deleted_ids()
        if "active" in stages:
            with open_index(self.repo) as index:
                rows, _ = index.select(experiments=sorted(labels))
            for irow in rows:
                if irow.run_id not in deleted:
                    found[irow.run_id] = facts_of_row(irow)
        if "deleted" in stages:
            for run_id, sha in deleted.items():
                record = self._record(sha)
                if record is not None and record.experiment in labels:
                    found[run_id] = facts_of_record(record, "deleted")
        for run_id, state in self._other_live().items():
            if (state.header.experiment or X.DEFAULT_LABEL) in labels and run_id not in deleted:
                found[run_id] = facts_of_state(state, "running")
        for run in live_runs(self.repo):
            if (run.header.experiment or X.DEFAULT_LABEL) in labels and "active" in stages:
                found[run.id] = facts_of_state(run.state, "running")
        out = []
        for f in found.values():
            if f.lifecycle not in stages:
                continue
            row = self.search_row(f)
            if S.matches(row, clauses):
                out.append(row)
        return S.sort_rows(out, order_by)

    def search_row(self, f: Facts) -> S.SearchRow:
        def datasets() -> list[tuple[str, str, str | None]]:
            full = f if f.datasets is not None else self.facts(f.id)
            return [
                (
                    str(d.get("name")),
                    str(d.get("digest")),
                    _text((d.get("tags") or {}).get(DATASET_CONTEXT)),
                )
                for d in full.datasets or []
            ]

        return S.SearchRow(
            attributes={
                "run_id": f.id,
                "run_name": f.name,
                "status": TO_MLFLOW.get(f.status, "FAILED"),
                "user_id": f.tags.get(USER) or f.user or "unknown",
                "artifact_uri": run_artifact_uri(self.repo, f.id),
                "start_time": _ms(f.start),
                "end_time": _ms(f.end),
                "experiment_id": self.id_of_label(f.label),
                "lifecycle_stage": f.lifecycle,
            },
            params={k: param_text(v) for k, v in f.params.items()},
            metrics={k: float(v[0]) for k, v in f.metrics.items()},
            tags=mlflow_tags(f),
            datasets=datasets,
            payload=f,
        )

    def search_runs(
        self,
        experiment_ids: Sequence[Any],
        filter_string: str | None = "",
        run_view_type: int = E.ViewType.ACTIVE_ONLY,
        max_results: int | None = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> E.PagedList:
        S.check_max_results(max_results)
        rows = self.search_rows(experiment_ids, filter_string, run_view_type, order_by)
        page, token = S.paginate(rows, max_results, page_token)
        return E.PagedList([self.run_entity(r.payload) for r in page], token)

    def _deleted_ids(self) -> dict[str, str]:
        prefix = fmt.DELETED_PREFIX
        return {
            name[len(prefix) :]: sha
            for name, sha in list_refs(self.repo.common_dir, prefix).items()
        }

    def _other_live(self) -> dict[str, RunState]:
        """Runs other processes are logging now (their journals are locked)."""
        from xp.record.journal import SUFFIX

        journal_dir = self.repo.xp_dir / "journal"
        try:
            names = [n for n in os.listdir(journal_dir) if n.endswith(SUFFIX)]
        except OSError:
            return {}
        out = {}
        for name in names:
            run_id = name[: -len(SUFFIX)]
            if live_run(self.repo, run_id) is not None or not fmt.ID_RE.match(run_id):
                continue
            state = self._journal_state(run_id)
            if state is not None:
                out[run_id] = state
        return out

    # -- creating and ending runs -----------------------------------------------------------
    def create_run(
        self,
        experiment_id: Any,
        user_id: str | None = None,
        start_time: int | None = None,
        tags: dict[str, Any] | Iterable[Any] | None = None,
        run_name: str | None = None,
        attach: str | None = None,
    ) -> Run:
        """A live run in experiment ``experiment_id`` (MLflow's ``create_run``)."""
        exp_id = str(experiment_id)
        label = self.label_of_id(exp_id)
        if exp_id != X.DEFAULT_ID:
            entry = self._entry(exp_id)
            if entry.lifecycle_stage != X.ACTIVE:
                raise MlflowException(
                    f"The experiment {exp_id} must be in the 'active' state. Current state is"
                    f" {entry.lifecycle_stage}.",
                    "INVALID_PARAMETER_VALUE",
                )
        tag_map = _tag_map(tags)
        name = run_name or tag_map.get(RUN_NAME) or None
        if user_id and user_id != "unknown" and USER not in tag_map:
            tag_map[USER] = user_id
        try:
            run = Run(
                self.repo,
                name=name,
                experiment=label,
                parent=tag_map.get(PARENT) or None,
                message=tag_map.get(NOTE) or None,
                start_time=None if start_time is None else start_time / 1000,
                all_series=True,
                attach=attach,
            )
        except XPError as exc:
            raise _as_mlflow(exc) from None
        _register(run)
        try:
            self._set_tags(run, tag_map)
        except BaseException:
            run.abort()
            _unregister(run)
            raise
        return run

    def update_run_info(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> E.RunInfo:
        """MLflow's ``update_run_info``: RUNNING continues an ended run; FINISHED, FAILED or
        KILLED ends it (or changes how an ended run ended), at ``end_time`` (ms; None: now);
        ``run_name`` renames it."""
        if status is not None and status not in E.RunStatus._NAMES.values():
            E.RunStatus.from_string(status)  # raises MLflow's message
        ended_at = end_time / 1000 if end_time is not None else None
        with self._holding(run_id):
            return self._update_run_info(run_id, status, ended_at, run_name)

    def _update_run_info(
        self, run_id: str, status: str | None, ended_at: float | None, run_name: str | None
    ) -> E.RunInfo:
        run = live_run(self.repo, run_id)
        if run is None:
            f = self.facts(run_id)
            self._check_active(f)
            if f.status == "running":
                raise _busy_elsewhere(run_id)
            if status is None and not run_name:
                return self.run_info(f)
            run = self.resume(run_id)
            if run_name:
                self._rename(run, run_name)
            if status in ("RUNNING", "SCHEDULED"):
                return self.run_info(self.facts(run_id))
            if status is None:  # a rename only: the session ends as the run had ended
                finish(run, _ended_status(f), f.end)
            else:
                finish(run, FROM_MLFLOW[status], ended_at)
            return self.run_info(self.facts(run_id))
        if run_name:
            self._rename(run, run_name)
        if status in FROM_MLFLOW:
            finish(run, FROM_MLFLOW[status], ended_at)
        return self.run_info(self.facts(run_id))

    def resume(self, run_id: str) -> Run:
        """Continue run ``run_id`` (ended) as a live run of this process."""
        from xp.tracking.resume import resume

        try:
            run = resume(self.repo, run_id, all_series=True)
        except XPError as exc:
            raise _as_mlflow(exc) from None
        _register(run)
        return run

    def _check_active(self, f: Facts) -> None:
        if f.lifecycle != "active":
            raise MlflowException(
                f"The run {f.id} must be in the 'active' state. Current state is {f.lifecycle}.",
                "INVALID_PARAMETER_VALUE",
            )

    @contextlib.contextmanager
    def _holding(self, run_id: str) -> Iterator[None]:
        """One thread at a time ends run ``run_id`` or logs a file to it: MLflow logs
        ``log_image(key=, step=)`` from a queue thread that ``end_run`` does not wait for,
        and a file hashed while the run ended would otherwise be refused."""
        with _live_lock:
            lock = self._run_locks.setdefault(run_id, threading.RLock())
        with lock:
            yield

    def writable(self, run_id: str) -> tuple[Run, Facts | None]:
        """The live run to write to, and when it had ended, how (to end it the same way)."""
        run = live_run(self.repo, run_id)
        if run is not None:
            return run, None
        f = self.facts(run_id)
        self._check_active(f)
        if f.status == "running":
            raise _busy_elsewhere(run_id)
        return self.resume(run_id), f

    def _done(self, run: Run, ended: Facts | None) -> None:
        """End a session opened only to write to an ended run, as the run had ended."""
        if ended is not None:
            finish(run, _ended_status(ended), ended.end)

    def delete_run(self, run_id: str) -> None:
        with self._holding(run_id):
            run = live_run(self.repo, run_id)
            if run is not None:
                finish(run, "killed")
        common = self.repo.common_dir
        found = self._committed(run_id)
        if found is None:
            raise _not_found(run_id)
        sha, lifecycle = found
        if lifecycle == "deleted":
            return
        create_ref(common, fmt.DELETED_PREFIX + run_id, sha)
        local = read_ref(common, fmt.run_ref(run_id))
        if local is not None:
            delete_ref(common, fmt.run_ref(run_id), local)

    def restore_run(self, run_id: str) -> None:
        common = self.repo.common_dir
        sha = read_ref(common, fmt.DELETED_PREFIX + run_id)
        if sha is None:
            self.facts(run_id)  # not found, or not deleted: nothing to do
            return
        if read_ref(common, fmt.run_ref(run_id)) is None:
            create_ref(common, fmt.run_ref(run_id), sha)
        delete_ref(common, fmt.DELETED_PREFIX + run_id, sha)

    # -- logging -----------------------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[E.Metric] = (),
        params: Sequence[Any] = (),
        tags: Sequence[Any] = (),
        single: bool = False,
    ) -> None:
        """Check everything in MLflow's words first, then write it all. ``single``: one
        value logged on its own, whose errors name ``value``, not ``metrics[0].value``."""

        def at(kind: str, i: int) -> str:
            return "" if single else f"{kind}[{i}]"

        checked = []
        for i, m in enumerate(metrics):
            value = V.check_metric(m.key, m.value, m.timestamp, m.step, at("metrics", i))
            checked.append((m.key, value, int(m.step), m.timestamp))
        plist = []
        for i, p in enumerate(params):
            V.check_name(p.key, V.join_path(at("params", i), "key"), "param")
            plist.append((p.key, p.value))
        V.check_unique_params([k for k, _ in plist])
        tlist = []
        for i, t in enumerate(tags):
            V.check_name(t.key, V.join_path(at("tags", i), "key"), "tag")
            tlist.append(
                (
                    t.key,
                    V.truncate(
                        V.join_path(at("tags", i), "value"), str(t.value), V.MAX_TAG_VALUE_LENGTH
                    ),
                )
            )
        run, ended = self.writable(run_id)
        try:
            with self._lock:
                self._log_params(run, plist)
                self._set_tags(run, dict(tlist))
                for key, value, step, ts in checked:
                    run.log_metric(key, value, step, ts)
        except XPError as exc:
            raise _as_mlflow(exc) from None
        finally:
            self._done(run, ended)

    def _log_params(self, run: Run, items: list[tuple[str, Any]]) -> None:
        have = run.state.params
        conflicts = []
        for key, value in items:
            text = V.truncate("Param value", param_text(value), V.MAX_PARAM_VALUE_LENGTH)
            if key in have and param_text(have[key]) != text:
                conflicts.append(
                    {"key": key, "old_value": param_text(have[key]), "new_value": text}
                )
        if len(conflicts) == 1 and len(items) == 1:
            c = conflicts[0]
            raise MlflowException(
                "Changing param values is not allowed. Param with key='{key}' was already logged"
                " with value='{old_value}' for run ID='{run}'. Attempted logging new value"
                " '{new_value}'.".format(run=run.id, **c),
                "INVALID_PARAMETER_VALUE",
            )
        if conflicts:
            raise MlflowException(
                f"Changing param values is not allowed. Params were already logged='{conflicts}'"
                f" for run ID='{run.id}'.",
                "INVALID_PARAMETER_VALUE",
            )
        for key, value in items:
            if key in have:
                continue
            text = V.truncate("Param value", param_text(value), V.MAX_PARAM_VALUE_LENGTH)
            run.log_param(key, _stored_param(value, text))

    def _set_tags(self, run: Run, tags: dict[str, Any]) -> None:
        header = run.header
        ctx = header.context or {}
        for key, raw in tags.items():
            value = V.truncate("value", str(raw), V.MAX_TAG_VALUE_LENGTH)  # MLflow's name
            if key == RUN_NAME:
                self._rename(run, value)
            elif key == PARENT:
                run.update_header(parent=value or None)
            elif key == NOTE:
                run.update_header(message=value or None)
            elif (
                key in _SYNTHESIZED
                and _synthesized(run, key) == value
                and key not in run.state.tags
            ):
                continue  # the run records it already (its user, program, commit)
            elif key == USER and value == ctx.get("user") and key not in run.state.tags:
                continue
            else:
                run.set_tag(key, value)

    def _rename(self, run: Run, name: str) -> None:
        if name and name != run.name:
            run.name = name
            run.update_header(name=name, auto_name=False)

    def log_metric(self, run_id: str, key: str, value: Any, timestamp: int, step: int) -> None:
        self.log_batch(run_id, metrics=[E.Metric(key, value, timestamp, step)], single=True)

    def delete_tag(self, run_id: str, key: str) -> None:
        run, ended = self.writable(run_id)
        try:
            f = facts_of_state(run.state, "running")
            if key not in mlflow_tags(f):
                raise MlflowException(
                    f"No tag with name: {key} in run with id {run_id}", "RESOURCE_DOES_NOT_EXIST"
                )
            if key == NOTE:
                run.update_header(message=None)
            elif key == PARENT:
                run.update_header(parent=None)
            elif key in run.state.tags:
                run.delete_tag(key)
        finally:
            self._done(run, ended)

    def get_metric_history(self, run_id: str, key: str) -> list[E.Metric]:
        run = live_run(self.repo, run_id)
        if run is not None:
            return [E.Metric(key, float(v), ms, s, run_id=run_id) for s, v, ms in run.history(key)]
        f = self.facts(run_id)
        if f.status == "running":
            state = self._journal_state(run_id)
            points = [(k, v, s, ts) for k, v, s, ts in (state.points if state else []) if k == key]
            return [E.Metric(k, float(v), to_ms(ts), s, run_id=run_id) for k, v, s, ts in points]
        found = self._committed(run_id)
        record = self._record(found[0]) if found else None
        if record is None or key not in record.metrics:
            return []
        series = record.series.get(key)
        if series:
            return [E.Metric(key, float(v), ts, s, run_id=run_id) for s, v, ts in series]
        value, ts, step = f.metrics[key]
        return [E.Metric(key, float(value), ts, step, run_id=run_id)]

    def log_inputs(self, run_id: str, datasets: Sequence[E.DatasetInput] | None = None) -> None:
        if not datasets:
            return
        run, ended = self.writable(run_id)
        try:
            for d in datasets:
                ds = d.dataset
                entry: dict[str, Any] = {
                    "name": ds.name,
                    "digest": ds.digest,
                    "source_type": ds.source_type,
                    "source": ds.source,
                }
                if ds.schema is not None:
                    entry["schema"] = ds.schema
                if ds.profile is not None:
                    entry["profile"] = ds.profile
                if d.tags:
                    entry["tags"] = {t.key: t.value for t in d.tags}
                run.log_dataset(entry)
        finally:
            self._done(run, ended)

    # -- artifacts ---------------------------------------------------------------------------
    def artifact_uri(self, run_id: str, path: str | None = None) -> str:
        return run_artifact_uri(self.repo, run_id, path)

    def _add(self, run: Run, src: Path, name: str) -> None:
        from xp.artifacts import cache

        real, top = src.resolve(), self.repo.worktree.resolve()
        try:
            if real.is_relative_to(top) and not real.is_relative_to(self.repo.git_dir.resolve()):
                run.log_artifact(src, name)
                return
            # from outside the work tree: no source to put back (and announced to `xp gc`
            # before the cache holds it, as every artifact is)
            run.log_artifact(src, cache.clean_name(name), external=True)
        except XPError as exc:
            raise _as_mlflow(exc) from None

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        src = Path(local_path)
        if not src.exists():
            raise MlflowException(
                f"{os.fspath(local_path)!r} does not exist", "INVALID_PARAMETER_VALUE"
            )
        name = _join(artifact_path, src.resolve().name)
        with self._holding(run_id):
            run, ended = self.writable(run_id)
            try:
                self._add(run, src, name)
            finally:
                self._done(run, ended)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        src = Path(local_dir)
        if not src.is_dir():
            raise MlflowException(
                f"{os.fspath(local_dir)!r} is not a folder", "INVALID_PARAMETER_VALUE"
            )
        with self._holding(run_id):
            run, ended = self.writable(run_id)
            try:
                for child in sorted(src.iterdir()):
                    self._add(run, child, _join(artifact_path, child.name))
            finally:
                self._done(run, ended)

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None:
        with self._holding(run_id):
            run, ended = self.writable(run_id)
            try:
                run.log_bytes(data, _clean(artifact_file))
            except XPError as exc:
                raise _as_mlflow(exc) from None
            finally:
                self._done(run, ended)

    def artifact_entries(self, run_id: str) -> dict[str, FileEntry]:
        run = live_run(self.repo, run_id)
        if run is not None:
            return dict(run.state.artifacts)
        f = self.facts(run_id)
        if f.status == "running":
            state = self._journal_state(run_id)
            return dict(state.artifacts) if state else {}
        found = self._committed(run_id)
        record = self._record(found[0]) if found else None
        return {a.path: a for a in record.artifacts} if record else {}

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[E.FileInfo]:
        prefix = (path or "").strip("/")
        entries = self.artifact_entries(run_id)
        if prefix in entries:
            return []  # MLflow lists nothing for a file
        out: dict[str, E.FileInfo] = {}
        lead = f"{prefix}/" if prefix else ""
        for full, entry in entries.items():
            if not full.startswith(lead):
                continue
            head, sep, _rest = full[len(lead) :].partition("/")
            child = lead + head
            out[child] = (
                E.FileInfo(child, True, None) if sep else E.FileInfo(child, False, entry.size)
            )
        return [out[k] for k in sorted(out)]

    def _object(self, run_id: str, entry: FileEntry) -> Path:
        """The cached bytes of one artifact, fetched from the artifact remote if missing."""
        from xp.artifacts import cache
        from xp.artifacts.manifests import Needed
        from xp.sharing.push_pull import download_missing

        cache_dir = cache.cache_dir(self.repo)
        obj = cache.object_path(cache_dir, entry.sha256)
        if not obj.is_file():
            with contextlib.suppress(XPError):
                download_missing(
                    self.repo,
                    items=[Needed(run_id, entry.path, entry.sha256, entry.size, "artifact")],
                )
        if not obj.is_file():
            raise MlflowException(
                f"artifact {entry.path} of run {run_id} is not in the local cache and no artifact"
                " remote has it; fetch it with `xp pull --artifacts`",
                "RESOURCE_DOES_NOT_EXIST",
            )
        return obj

    def download_artifacts(
        self, run_id: str, path: str | None = None, dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        """Copy artifact file or folder ``path`` (all with None) below ``dst_path`` (a new
        temporary folder by default); returns the local path of what was asked for."""
        from xp import fsutil

        prefix = (path or "").strip("/")
        entries = self.artifact_entries(run_id)
        chosen = {
            p: e
            for p, e in entries.items()
            if not prefix or p == prefix or p.startswith(prefix + "/")
        }
        if not chosen and prefix:
            raise MlflowException(
                f"No such file or directory: artifact {prefix!r} of run {run_id}",
                "RESOURCE_DOES_NOT_EXIST",
            )
        dst = (
            Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="xp-mlflow-"))
        )
        dst.mkdir(parents=True, exist_ok=True)
        for rel, entry in chosen.items():
            out = dst / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.exists():
                out.unlink()
            fsutil.place(self._object(run_id, entry), out, ("reflink", "copy"), writable=True)
        return str(dst / prefix) if prefix else str(dst)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        entry = self.artifact_entries(run_id).get(path.strip("/"))
        if entry is None:
            raise MlflowException(
                f"No such file: artifact {path!r} of run {run_id}", "RESOURCE_DOES_NOT_EXIST"
            )
        return self._object(run_id, entry).read_bytes()

    # -- logged models (MLflow 3) -------------------------------------------------------------
    def create_logged_model(
        self,
        experiment_id: Any,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        model_type: str | None = None,
    ) -> E.LoggedModel:
        name = name or "model"
        holder = False
        if source_run_id is None:  # xp keeps a model's files in a run: make one for it
            run = self.create_run(experiment_id, run_name=name)
            source_run_id, holder = run.id, True
        run, ended = self.writable(source_run_id)
        try:
            used = {str(m.get("path")) for m in run.state.models.values()}
            folder, n = name, 1
            while folder in used or any(p.startswith(folder + "/") for p in run.state.artifacts):
                n += 1
                folder = f"{name}-{n}"
            now = X.now_ms()
            entry: dict[str, Any] = {
                "id": f"m-{run.id}-{secrets.token_hex(4)}",
                "name": name,
                "path": folder,
                "status": "PENDING",
                "created": now,
                "updated": now,
            }
            if model_type:
                entry["model_type"] = model_type
            if tags:
                entry["tags"] = {str(k): str(v) for k, v in tags.items()}
            if params:
                entry["params"] = {str(k): str(v) for k, v in params.items()}
            if holder:
                entry["holder"] = True
            run.set_model(entry)
        finally:
            self._done(run, ended)
        return self.logged_model(source_run_id, entry)

    def logged_model(
        self, run_id: str, entry: dict[str, Any], f: Facts | None = None
    ) -> E.LoggedModel:
        f = f or self.facts(run_id)
        status = E.LoggedModelStatus.from_string(str(entry.get("status", "READY")))
        metrics = (
            [
                E.Metric(k, float(v[0]), v[1], v[2], run_id=run_id, model_id=str(entry["id"]))
                for k, v in f.metrics.items()
            ]
            if entry.get("status") == "READY"
            else []
        )
        return E.LoggedModel(
            experiment_id=self.id_of_label(f.label),
            model_id=str(entry["id"]),
            name=str(entry.get("name", "model")),
            artifact_location=run_artifact_uri(self.repo, run_id, str(entry.get("path") or "")),
            creation_timestamp=int(entry.get("created") or 0),
            last_updated_timestamp=int(entry.get("updated") or 0),
            model_type=_text(entry.get("model_type")),
            source_run_id=run_id,
            status=status,
            tags=entry.get("tags") or {},
            params=entry.get("params") or {},
            metrics=metrics,
        )

    def _model(self, model_id: str) -> tuple[str, dict[str, Any], Facts]:
        parts = model_id.split("-")
        if len(parts) == 3 and parts[0] == "m" and fmt.ID_RE.match(parts[1]):
            with contextlib.suppress(MlflowException):
                f = self.facts(parts[1])
                for entry in f.models or []:
                    if entry.get("id") == model_id and not entry.get("deleted"):
                        return parts[1], entry, f
        raise MlflowException(
            f"Logged model with ID '{model_id}' not found.", "RESOURCE_DOES_NOT_EXIST"
        )

    def get_logged_model(self, model_id: str) -> E.LoggedModel:
        run_id, entry, f = self._model(model_id)
        return self.logged_model(run_id, entry, f)

    def _edit_model(self, model_id: str, edit: Callable[[dict[str, Any]], None]) -> E.LoggedModel:
        run_id, entry, _f = self._model(model_id)
        run, ended = self.writable(run_id)
        try:
            entry = dict(run.state.models.get(model_id, entry))
            edit(entry)
            entry["updated"] = X.now_ms()
            run.set_model(entry)
        finally:
            self._done(run, ended)
        if entry.get("holder") and entry.get("status") in ("READY", "FAILED"):
            live = live_run(self.repo, run_id)
            if live is not None:
                finish(live, "finished" if entry["status"] == "READY" else "failed")
        return self.logged_model(run_id, entry)

    def finalize_logged_model(self, model_id: str, status: int | str) -> E.LoggedModel:
        text = status if isinstance(status, str) else E.LoggedModelStatus.to_string(int(status))

        def edit(entry: dict[str, Any]) -> None:
            entry["status"] = text

        return self._edit_model(model_id, edit)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        def edit(entry: dict[str, Any]) -> None:
            entry["tags"] = {
                **(entry.get("tags") or {}),
                **{str(k): str(v) for k, v in tags.items()},
            }

        self._edit_model(model_id, edit)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        def edit(entry: dict[str, Any]) -> None:
            tags = dict(entry.get("tags") or {})
            if key not in tags:
                raise MlflowException(
                    f"No tag with key {key!r} found for model with ID {model_id!r}.",
                    "RESOURCE_DOES_NOT_EXIST",
                )
            del tags[key]
            entry["tags"] = tags

        self._edit_model(model_id, edit)

    def delete_logged_model(self, model_id: str) -> None:
        def edit(entry: dict[str, Any]) -> None:
            entry["deleted"] = True

        self._edit_model(model_id, edit)

    def set_model_step(self, run_id: str, model_id: str, step: int) -> None:
        """MLflow's ``log_outputs``: the model is an output of ``run_id`` at ``step``."""
        with contextlib.suppress(MlflowException):
            source, entry, _f = self._model(model_id)
            if source == run_id and int(entry.get("step") or 0) != step:

                def edit(e: dict[str, Any]) -> None:
                    e["step"] = step

                self._edit_model(model_id, edit)

    def search_logged_models(
        self,
        experiment_ids: Sequence[Any],
        filter_string: str | None = None,
        max_results: int | None = None,
        order_by: Sequence[Any] | None = None,
        page_token: str | None = None,
    ) -> E.PagedList:
        clauses = S.parse_filter(filter_string, _MODELS)
        out = []
        for row in self.search_rows(experiment_ids, None, E.ViewType.ACTIVE_ONLY):
            f: Facts = row.payload
            models = f.models
            if models is None:
                models = self._models_of(f.id)
            for entry in models:
                if entry.get("deleted"):
                    continue
                model = self.logged_model(f.id, entry, f if f.complete else None)
                mrow = S.SearchRow(
                    attributes={
                        "name": model.name,
                        "model_id": model.model_id,
                        "source_run_id": model.source_run_id,
                        "status": E.LoggedModelStatus.to_string(model.status),
                        "model_type": model.model_type,
                        "creation_timestamp": model.creation_timestamp,
                        "last_updated_timestamp": model.last_updated_timestamp,
                        "start_time": model.creation_timestamp,
                        "run_id": model.model_id,
                    },
                    params=model.params,
                    metrics={m.key: m.value for m in model.metrics},
                    tags=model.tags,
                    payload=model,
                )
                if S.matches(mrow, clauses):
                    out.append(mrow)
        out.sort(key=lambda r: -(r.attributes["creation_timestamp"] or 0))
        page, token = S.paginate(out, max_results, page_token)
        return E.PagedList([r.payload for r in page], token)

    def _models_of(self, run_id: str) -> list[dict[str, Any]]:
        found = self._committed(run_id)
        record = self._record(found[0]) if found else None
        return list(record.models) if record else []

    def record_logged_model(self, run_id: str, model_dict: dict[str, Any]) -> None:
        """MLflow 2's model history tag (``mlflow.log-model.history``): a JSON list."""
        import json

        f = self.facts(run_id)
        history = []
        with contextlib.suppress(ValueError, TypeError):
            history = json.loads(mlflow_tags(f).get(LOG_MODEL_HISTORY, "[]"))
        history.append(model_dict)
        self.log_batch(run_id, tags=[E.RunTag(LOG_MODEL_HISTORY, json.dumps(history))])


_MODELS = S.Grammar(
    frozenset(
        {
            "name",
            "model_id",
            "source_run_id",
            "status",
            "model_type",
            "creation_timestamp",
            "last_updated_timestamp",
        }
    ),
    frozenset({"creation_timestamp", "last_updated_timestamp"}),
    frozenset({"model_id", "source_run_id", "name"}),
)
_SYNTHESIZED = {SOURCE_NAME, SOURCE_TYPE, GIT_COMMIT, GIT_BRANCH}


def _synthesized(run: Run, key: str) -> str | None:
    h = run.header
    return {
        SOURCE_NAME: h.command[0] if h.command else None,
        SOURCE_TYPE: "LOCAL" if h.command else None,
        GIT_COMMIT: h.baseline,
        GIT_BRANCH: h.branch,
    }.get(key)


def _stored_param(value: Any, text: str) -> Any:
    """What xp records for a param MLflow shows as ``text``: the value itself when xp keeps
    it with exactly that text (Python numbers, booleans, None), else the text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        plain = int(value) if isinstance(value, int) else float(value)
        if str(plain) == text:
            return plain
    return text


def _busy_elsewhere(run_id: str) -> MlflowException:
    return _as_mlflow(
        RunActiveError(
            f"run {run_id} is being logged by another process; write to it from that process,"
            " or wait for it to end"
        )
    )


def _ended_status(f: Facts) -> str:
    return f.status if f.status in FROM_MLFLOW.values() or f.status == "crashed" else "failed"


def _tag_map(tags: dict[str, Any] | Iterable[Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(getattr(t, "key", t)): str(getattr(t, "value", "")) for t in tags}


def _join(prefix: str | None, name: str) -> str:
    prefix = (prefix or "").strip("/")
    return f"{prefix}/{name}" if prefix and prefix != "." else name


def _clean(path: str) -> str:
    import posixpath

    norm = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
    if norm in ("", ".") or norm.startswith(".."):
        raise MlflowException(
            f"artifact file {path!r} must be a relative path inside the run",
            "INVALID_PARAMETER_VALUE",
        )
    return norm


def _id_order(exp_id: str) -> tuple[int, str]:
    return (0, f"{int(exp_id):030d}") if exp_id.isdigit() else (1, exp_id)
