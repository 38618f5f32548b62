"""The ``xp.*`` reading and registry functions: each finds the repository from ``path``
(default: the current directory) and calls the library verb with it.

Only these public conveniences (and the fluent API in ``xp.tracking.fluent``) take ``path=``;
every library verb takes the repository object itself, keyword-only options after it.
Loaded lazily by ``xp/__init__.py`` so ``import xp`` stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from xp.gitstore.repo import find_repo

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from xp.production.alerts import CheckResult
    from xp.production.observe import Observation
    from xp.production.perf import Perf
    from xp.production.status import RollbackResult, StageStatus
    from xp.query.diff import RunDiff
    from xp.query.resolve import RunEntry, RunView
    from xp.record.media import MediaEntry
    from xp.sharing.registry import Model, TagResult, Version

PathLike = str | os.PathLike[str] | None


def get_run(spec: str, path: PathLike = None) -> RunView:
    """Load a run by id, id prefix, name, ref or any commit-ish whose tree has a run record."""
    from xp.query.resolve import load_run

    return load_run(find_repo(path), spec)


def list_runs(path: PathLike = None) -> list[RunEntry]:
    """Every run in the repo (local and fetched), newest first: ``.id``, ``.ref``, ``.commit``."""
    from xp.query.resolve import list_run_entries

    return list_run_entries(find_repo(path))


def search_runs(
    filter_string: str | None = None,
    order_by: Sequence[str] | str | None = None,
    max_results: int | None = None,
    experiment: str | Sequence[str] | None = None,
    path: PathLike = None,
) -> pd.DataFrame:
    """Runs as a DataFrame with MLflow's column names (see ``xp.query.search.search_runs``)."""
    from xp.query import search

    return search.search_runs(
        find_repo(path),
        filter_string=filter_string,
        order_by=order_by,
        max_results=max_results,
        experiment=experiment,
    )


def get_series(run: str | RunView, metric: str, path: PathLike = None) -> pd.DataFrame:
    """One metric's steps as a DataFrame: step, value, timestamp (UTC datetime)."""
    view = get_run(run, path) if isinstance(run, str) else run
    return view.series(metric)


def diff(a: str | None = None, b: str | None = None, path: PathLike = None) -> RunDiff:
    """Compare run ``a`` with run ``b`` (default: the latest run on HEAD vs the workspace).

    ``a`` and ``b`` follow the resolution rule of docs/runs.md: id, id prefix, name, ref,
    commit-ish whose tree carries a record, or ``workspace``.
    """
    from xp.query.diff import diff_runs

    return diff_runs(find_repo(path), a=a, b=b)


def read_artifact(run: str | RunView, artifact: str, path: PathLike = None) -> bytes:
    """The bytes of one artifact of a run, from the cache or else the artifact remote."""
    from xp.sharing.get import read_artifact as read

    view = get_run(run, path) if isinstance(run, str) else run
    return read(find_repo(path), commit=view.commit, path=artifact)


def load_table(
    run: str | RunView, key: str, step: int | None = None, path: PathLike = None
) -> pd.DataFrame:
    """A table logged with ``log_table`` as a DataFrame: the one at ``step``, or the last."""
    from xp.tracking.media import decode_table

    entry = _media_entry(run, key, "table", step, path)
    view = get_run(run, path) if isinstance(run, str) else run
    data = read_artifact(view, entry.path, path)
    return decode_table(data, str(entry.info.get("format") or entry.path.rsplit(".", 1)[-1]))


def get_media(
    run: str | RunView, key: str | None = None, kind: str | None = None, path: PathLike = None
) -> list[MediaEntry]:
    """The run's media index (images, figures, tables, histograms, texts), by key and step."""
    view = get_run(run, path) if isinstance(run, str) else run
    entries = sorted(view.record.media, key=lambda e: e.sort_key)
    return [
        e for e in entries if (key is None or e.key == key) and (kind is None or e.kind == kind)
    ]


def _media_entry(
    run: str | RunView, key: str, kind: str, step: int | None, path: PathLike
) -> MediaEntry:
    from xp.errors import RunNotFoundError

    entries = get_media(run, key, kind, path)
    if step is not None:
        entries = [e for e in entries if e.step == step]
    if not entries:
        at = f" at step {step}" if step is not None else ""
        raise RunNotFoundError(
            f"the run has no {kind} {key!r}{at}; xp.get_media(run) lists what it has"
        )
    return entries[-1]


# -- annotations: tags, notes and moves after the fact --------------------------------------------
def set_tag(key: str, value: Any, run: str | None = None, path: PathLike = None) -> None:
    """Tag the active run; with ``run=``, a finished run (a git note on its commit, docs/
    annotations.md: the commit stays as it is, the change is in ``xp log RUN``)."""
    if run is None:
        from xp.tracking import fluent

        fluent.set_tag(key, value)
        return
    from xp.sharing.annotate import tag

    tag(find_repo(path), run=run, tags={key: value})


def set_tags(tags: Mapping[str, Any], run: str | None = None, path: PathLike = None) -> None:
    """Several tags at once; with ``run=``, on a finished run (one annotation event each)."""
    if run is None:
        from xp.tracking import fluent

        fluent.set_tags(dict(tags))
        return
    from xp.sharing.annotate import tag

    tag(find_repo(path), run=run, tags=tags)


def delete_tag(key: str, run: str, path: PathLike = None) -> None:
    """Remove tag ``key`` from finished run ``run`` (recorded as an annotation event)."""
    from xp.sharing.annotate import tag

    tag(find_repo(path), run=run, remove=[key])


def note(run: str, text: str, path: PathLike = None) -> None:
    """Add a free-text note to ``run`` (``get_run(run).notes`` lists them)."""
    from xp.sharing.annotate import note as add

    add(find_repo(path), run=run, text=text)


def move_run(run: str, experiment: str, path: PathLike = None) -> None:
    """Put ``run`` in ``experiment`` (an annotation: the record keeps where it started)."""
    from xp.sharing.annotate import move

    move(find_repo(path), runs=[run], experiment=experiment)


# -- the model registry -----------------------------------------------------------------------
def register_model(
    run: str,
    name: str,
    version: str | None = None,
    artifacts: tuple[str, ...] = (),
    message: str | None = None,
    push: str | None = None,
    path: PathLike = None,
) -> TagResult:
    """Register the run's artifacts as ``name@version`` (next patch version when not given)."""
    from xp.sharing import registry

    return registry.register(
        find_repo(path),
        run=run,
        name=name,
        version=version,
        artifacts=artifacts,
        message=message,
        push=push,
    )


def assign_stage(
    name: str, version: str, stage: str, push: str | None = None, path: PathLike = None
) -> TagResult:
    """Put ``name@version`` in ``stage``; the stage's previous version leaves it."""
    from xp.sharing import registry

    return registry.assign(find_repo(path), name=name, version=version, stage=stage, push=push)


def unassign_stage(
    name: str, stage: str, push: str | None = None, path: PathLike = None
) -> TagResult:
    """Take ``stage`` away from the version that holds it."""
    from xp.sharing import registry

    return registry.unassign(find_repo(path), name=name, stage=stage, push=push)


def deregister_model(
    name: str, version: str, push: str | None = None, path: PathLike = None
) -> TagResult:
    """Withdraw ``name@version``; its stages go with it."""
    from xp.sharing import registry

    return registry.deregister(find_repo(path), name=name, version=version, push=push)


def get_model(
    spec: str, out_dir: str | Path, force: bool = False, path: PathLike = None
) -> tuple[Version, list[Path]]:
    """Write the registered artifact files of ``spec`` (``name@stage``...) into ``out_dir``."""
    from xp.sharing import registry

    return registry.get(find_repo(path), spec=spec, out_dir=out_dir, force=force)


def show_models(name: str | None = None, path: PathLike = None) -> list[Model]:
    """Models (or one model) with their versions and stages."""
    from xp.sharing import registry

    return registry.show(find_repo(path), name=name)


# -- deployed models: monitoring, status, alerts ----------------------------------------------
def log_production(
    model: str,
    stage: str,
    metrics: Mapping[str, float],
    window_end: Any = None,
    tags: Mapping[str, Any] | None = None,
    version: str | None = None,
    path: PathLike = None,
) -> Observation:
    """Record metrics observed in production for the version of ``model`` deployed in
    ``stage`` at ``window_end`` (default: now); one commit on this clone's monitoring chain.

    ``window_end``: a datetime, an ISO 8601 string or seconds since the epoch. ``version``
    names the version outright (backfills, shadow deployments)."""
    from xp.production.observe import log_production as log

    return log(
        find_repo(path),
        model=model,
        stage=stage,
        metrics=metrics,
        window_end=window_end,
        tags=tags,
        version=version,
    )


def import_production(
    source: str | os.PathLike[str],
    model: str,
    stage: str,
    version: str | None = None,
    time_column: str | None = None,
    path: PathLike = None,
) -> Observation:
    """Monitoring points from a CSV or Parquet file of production logs (one commit)."""
    from xp.production.observe import import_points

    return import_points(
        find_repo(path),
        model=model,
        stage=stage,
        path=Path(source),
        version=version,
        time_column=time_column,
    )


def production_points(
    model: str,
    stage: str | None = None,
    version: str | None = None,
    since: str | None = None,
    path: PathLike = None,
) -> pd.DataFrame:
    """Every monitoring point of ``model`` (local and fetched) as a DataFrame: window_end (UTC),
    version, stage, metric, value, one ``tags.<name>`` column per tag, writer."""
    import pandas as pd

    from xp.production import points
    from xp.production.perf import parse_since

    found = points.read(
        find_repo(path), model=model, stage=stage, version=version, since=parse_since(since)
    )
    rows = [
        {
            "window_end": p.window_end,
            "version": p.version,
            "stage": p.stage,
            "metric": p.metric,
            "value": p.value,
            **{f"tags.{k}": v for k, v in p.tags},
            "writer": p.writer,
        }
        for p in found.points
    ]
    columns = ["window_end", "version", "stage", "metric", "value", "writer"]
    frame = pd.DataFrame(rows, columns=None if rows else columns)
    frame["window_end"] = pd.to_datetime(frame["window_end"], unit="ms", utc=True)
    return cast("pd.DataFrame", frame.sort_values(["window_end", "metric"], ignore_index=True))


def model_status(name: str | None = None, path: PathLike = None) -> list[StageStatus]:
    """Per model and stage: the version deployed, since when, by whom, and the one before."""
    from xp.production.status import status

    return status(find_repo(path), name=name)


def rollback_model(
    name: str, stage: str, push: str | None = None, path: PathLike = None
) -> RollbackResult:
    """Assign the version that held ``stage`` before the current one (a new tag)."""
    from xp.production.status import rollback

    return rollback(find_repo(path), name=name, stage=stage, push=push)


def model_performance(
    name: str, stage: str | None = None, since: str | None = None, path: PathLike = None
) -> Perf:
    """Per version, stage and metric: training/validation figures and the production series
    (``.to_dict(series=True)`` is the JSON a model page draws)."""
    from xp.production.perf import perf

    return perf(find_repo(path), name=name, stage=stage, since=since)


def check_models(
    name: str | None = None,
    since: str | None = None,
    aggregate: str = "last",
    webhook: bool = True,
    path: PathLike = None,
) -> CheckResult:
    """The thresholds of ``.xp/config.yaml`` against the deployed versions (``.breaches``)."""
    from xp.production.alerts import check

    return check(find_repo(path), name=name, since=since, aggregate=aggregate, webhook=webhook)


def plot(
    runs: str | Sequence[str],
    metric: str,
    *,
    x: str = "step",
    smooth: float = 0.0,
    log_y: bool = False,
    title: str | None = None,
    path: PathLike = None,
) -> Figure:
    """A matplotlib figure of ``metric`` for ``runs`` (ids, prefixes or names) against ``x``
    (``step``, ``time`` or ``relative``); ``smooth`` is TensorBoard's EMA weight. In a notebook
    the returned figure shows inline; ``fig.savefig("loss.png")`` writes it."""
    from xp.ui.plot import plot as make_plot

    specs = [runs] if isinstance(runs, str) else list(runs)
    return make_plot(
        find_repo(path), runs=specs, metric=metric, x=x, smooth=smooth, log_y=log_y, title=title
    )
