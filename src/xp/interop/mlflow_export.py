"""``xp export mlflow [URI]``: copy xp runs into an MLflow store, so nobody is locked in.

Written through MLflow's own client (``pip install "git-xp[mlflow]"``), so every store MLflow
supports works (``sqlite:///mlflow.db``, ``./mlruns``, a tracking server) in whatever schema
that MLflow version writes. Each run is exported as MLflow shows it through ``xp.mlflow``:
experiment, name, status, times, params, every metric point, tags (the system tags too),
parent links, datasets, artifacts, logged models. The MLflow run gets tags ``xp.run-id`` and
``xp.commit``, so exporting again skips runs that did not change and brings a continued run
up to date in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xp.errors import MlflowException, XPError, missing_extra
from xp.gitstore.repo import GitRepo
from xp.interop import mlflow_experiments as X
from xp.interop.mlflow_runs import TO_MLFLOW, Backend, Facts, backend_for, mlflow_tags, param_text
from xp.record.build import to_ms

RUN_ID_TAG = "xp.run-id"
COMMIT_TAG = "xp.commit"
_BATCH = 1000


@dataclass
class ExportResult:
    target: str
    runs: int = 0
    exported: int = 0
    updated: int = 0
    unchanged: int = 0
    artifacts: int = 0
    problems: list[str] = field(default_factory=list)


Progress = Callable[[int, int], None]


def default_target() -> str:
    env = os.environ.get("MLFLOW_TRACKING_URI", "")
    if env and not env.startswith("xp:"):
        return env
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


@contextlib.contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow 3 refuses its file store unless told; exporting to ./mlruns asks for it."""
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    if scheme not in ("", "file") and len(scheme) != 1:
        yield
        return
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before


def export_mlflow(
    repo: GitRepo,
    *,
    uri: str | None = None,
    runs: Sequence[str] = (),
    experiments: Sequence[str] = (),
    progress: Progress | None = None,
) -> ExportResult:
    """Export the runs ``runs`` names (default: every run here, or those of ``experiments``)
    to the MLflow store ``uri`` (default: ``MLFLOW_TRACKING_URI``, else ./mlflow.db)."""
    target = uri or default_target()
    if target.startswith("xp:"):
        raise MlflowException(
            f"{target} is xp itself; export to an MLflow store (sqlite:///mlflow.db, ./mlruns,"
            " http://host:5000)",
            "INVALID_PARAMETER_VALUE",
        )
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise missing_extra("mlflow", "mlflow", "xp export mlflow") from None
    backend = backend_for(repo.worktree)
    with _file_store_allowed(target):
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=target)
        return _export(client, backend, target, runs, experiments, progress)


def _selection(backend: Backend, runs: Sequence[str], experiments: Sequence[str]) -> list[Facts]:
    from xp.interop.mlflow_runs import facts_of_row
    from xp.query.index import open_index
    from xp.query.resolve import resolve_run

    if runs:
        ids = [resolve_run(backend.repo, spec).id for spec in runs]
        return [backend.facts(i) for i in ids]
    labels = [X.label_of(e) for e in experiments]
    with open_index(backend.repo) as index:
        rows, _ = index.select(experiments=labels)
    return [facts_of_row(r) for r in rows if r.status != "invalid"]


def _order(facts: list[Facts]) -> list[Facts]:
    """Oldest first, and every parent before its children."""
    by_id = {f.id: f for f in facts}
    out: list[Facts] = []
    seen: set[str] = set()

    def visit(f: Facts) -> None:
        if f.id in seen:
            return
        seen.add(f.id)
        if f.parent in by_id:
            visit(by_id[f.parent])
        out.append(f)

    for f in sorted(facts, key=lambda f: (f.start or 0, f.id)):
        visit(f)
    return out


def _existing(client: Any) -> dict[str, tuple[str, str]]:
    """xp run id -> (MLflow run id, exported commit) of runs this export made before."""
    from mlflow.entities import ViewType

    out: dict[str, tuple[str, str]] = {}
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not ids:
        return out
    token = None
    while True:
        page = client.search_runs(
            ids,
            f"tags.`{RUN_ID_TAG}` IS NOT NULL",
            run_view_type=ViewType.ALL,
            max_results=50000,
            page_token=token,
        )
        for run in page:
            tags = run.data.tags
            out[tags[RUN_ID_TAG]] = (run.info.run_id, tags.get(COMMIT_TAG, ""))
        token = page.token
        if not token:
            return out


def _export(
    client: Any,
    backend: Backend,
    target: str,
    runs: Sequence[str],
    experiments: Sequence[str],
    progress: Progress | None,
) -> ExportResult:
    result = ExportResult(target)
    chosen = _order(_selection(backend, runs, experiments))
    result.runs = len(chosen)
    existing = _existing(client)
    exported: dict[str, str] = {k: v[0] for k, v in existing.items()}
    experiment_ids: dict[str, str] = {}
    for done, f in enumerate(chosen, start=1):
        try:
            outcome = _export_run(client, backend, f, existing, exported, experiment_ids, result)
            setattr(result, outcome, getattr(result, outcome) + 1)
        except (XPError, OSError, ValueError) as exc:
            result.problems.append(f"run {f.id}: {str(exc).splitlines()[0]}")
        except Exception as exc:  # MLflow's own errors: report the run, go on with the rest
            if type(exc).__name__ != "MlflowException":
                raise
            result.problems.append(f"run {f.id}: {str(exc).splitlines()[0]}")
        if progress is not None:
            progress(done, result.runs)
    return result


def _commit_of(backend: Backend, run_id: str) -> str:
    found = backend._committed(run_id)
    return found[0] if found else ""


def _experiment(client: Any, label: str, cache: dict[str, str]) -> str:
    name = X.name_of(label)
    if name not in cache:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            cache[name] = client.create_experiment(name)
        else:
            if exp.lifecycle_stage != "active":
                client.restore_experiment(exp.experiment_id)
            cache[name] = exp.experiment_id
    return cache[name]


def _export_run(
    client: Any,
    backend: Backend,
    brief: Facts,
    existing: dict[str, tuple[str, str]],
    exported: dict[str, str],
    experiment_ids: dict[str, str],
    result: ExportResult,
) -> str:
    from mlflow.entities import Metric, Param, RunTag

    commit = _commit_of(backend, brief.id)
    have = existing.get(brief.id)
    if have is not None and have[1] == commit:
        return "unchanged"
    f = backend.facts(brief.id)
    tags = dict(mlflow_tags(f))
    if f.parent:
        tags["mlflow.parentRunId"] = exported.get(f.parent, f.parent)
    tags[RUN_ID_TAG] = f.id
    tags[COMMIT_TAG] = commit
    start = to_ms(f.start or 0)
    if have is None:
        exp_id = _experiment(client, f.label, experiment_ids)
        mid = client.create_run(exp_id, start_time=start, tags=tags, run_name=f.name).info.run_id
        exported[f.id] = mid
        counts: dict[str, int] = {}
        old_params: dict[str, str] = {}
    else:
        mid = have[0]
        client.update_run(mid, status="RUNNING")
        current = client.get_run(mid)
        old_params = current.data.params
        counts = {k: len(client.get_metric_history(mid, k)) for k in f.metrics}
        client.log_batch(mid, tags=[RunTag(k, v) for k, v in tags.items()])
    params = [Param(k, param_text(v)) for k, v in f.params.items() if k not in old_params]
    for i in range(0, len(params), 100):
        client.log_batch(mid, params=params[i : i + 100])
    batch: list[Any] = []
    for key in sorted(f.metrics):
        points = backend.get_metric_history(f.id, key)[counts.get(key, 0) :]
        for m in points:
            batch.append(Metric(key, m.value, m.timestamp, m.step))
            if len(batch) == _BATCH:
                client.log_batch(mid, metrics=batch)
                batch = []
    if batch:
        client.log_batch(mid, metrics=batch)
    _datasets(client, mid, f, have is not None)
    result.artifacts += _artifacts(client, backend, mid, f)
    _models(client, backend, mid, f, experiment_ids, result, have is not None)
    status = TO_MLFLOW.get(f.status, "FAILED")
    end = to_ms(f.end or f.start or 0)
    client.set_terminated(mid, status, end_time=end)
    return "updated" if have is not None else "exported"


def _datasets(client: Any, mid: str, f: Facts, again: bool) -> None:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    if not f.datasets:
        return
    logged = set()
    if again:
        run = client.get_run(mid)
        logged = {(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs}
    inputs = [
        DatasetInput(
            Dataset(
                name=str(d.get("name")),
                digest=str(d.get("digest")),
                source_type=str(d.get("source_type")),
                source=str(d.get("source")),
                schema=d.get("schema"),
                profile=d.get("profile"),
            ),
            [InputTag(str(k), str(v)) for k, v in (d.get("tags") or {}).items()],
        )
        for d in f.datasets
        if (str(d.get("name")), str(d.get("digest"))) not in logged
    ]
    if inputs:
        client.log_inputs(mid, datasets=inputs)


def _artifacts(client: Any, backend: Backend, mid: str, f: Facts) -> int:
    entries = backend.artifact_entries(f.id)
    if not entries:
        return 0
    with tempfile.TemporaryDirectory(prefix="xp-export-") as tmp:
        backend.download_artifacts(f.id, None, tmp)
        client.log_artifacts(mid, tmp)
    return len(entries)


def _models(
    client: Any,
    backend: Backend,
    mid: str,
    f: Facts,
    experiment_ids: dict[str, str],
    result: ExportResult,
    again: bool,
) -> None:
    """MLflow 3 logged models: their files are already the run's artifacts (under their
    folder, so runs:/<id>/<folder> works); made here as MLflow's logged-model entities too."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    models = [m for m in f.models or [] if not m.get("deleted")]
    if not models:
        return
    exp_id = _experiment(client, f.label, experiment_ids)
    done: set[str] = set()
    if again:
        found = client.search_logged_models(
            experiment_ids=[exp_id], filter_string=f"source_run_id = '{mid}'"
        )
        done = {m.name for m in found}
    for entry in models:
        name = str(entry.get("name", "model"))
        if name in done:
            continue
        try:
            model = client.create_logged_model(
                experiment_id=exp_id,
                name=name,
                source_run_id=mid,
                tags=entry.get("tags") or None,
                params=entry.get("params") or None,
                model_type=entry.get("model_type"),
            )
            folder = str(entry.get("path") or "")
            with tempfile.TemporaryDirectory(prefix="xp-export-model-") as tmp:
                local = backend.download_artifacts(f.id, folder, tmp)
                repository = get_artifact_repository(model.artifact_location)
                repository.log_artifacts(local)  # type: ignore[no-untyped-call]
            status = str(entry.get("status", "READY"))
            client.finalize_logged_model(
                model.model_id, getattr(LoggedModelStatus, status, LoggedModelStatus.READY)
            )
            step = int(entry.get("step") or 0)
            client.log_outputs(mid, [LoggedModelOutput(model.model_id, step)])
        except Exception as exc:
            if not isinstance(exc, XPError) and type(exc).__name__ != "MlflowException":
                raise
            result.problems.append(f"run {f.id}: model {name} exported as artifacts only ({exc})")
