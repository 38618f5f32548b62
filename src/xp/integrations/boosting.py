"""What the gradient-boosting integrations (XGBoost, LightGBM, CatBoost) share: the
per-iteration metric names, MLflow's early-stopping extras, importances and the model file,
and the wrapper that makes a patched ``train``/``fit`` own its run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from xp.integrations.common import (
    Patches,
    Session,
    forget_hooks,
    metric_key,
    number,
    status_of,
    when_imported,
)

_local = threading.local()  # .session: the run of an autologged sklearn-API fit on this thread


def current_session() -> Session | None:
    """The session of an enclosing autologged call on this thread (an estimator's ``fit``
    whose inner ``train`` must log into the same run)."""
    return getattr(_local, "session", None)


def run_owned(
    framework: str,
    name: str,
    call: Callable[[Session], Any],
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Any:
    """``call(session)`` inside a session that is this thread's current one; a session this
    call started ends with the call's outcome (``failed`` when it raised)."""
    outer = current_session()
    if outer is not None:
        return call(outer)
    session = Session(framework, name=name)
    if params:
        session.log_params(params)
    if tags:
        session.set_tags(tags)
    _local.session = session
    try:
        result = call(session)
    except BaseException as exc:
        _local.session = None
        session.end(status_of(exc))
        raise
    _local.session = None
    session.end("finished")
    return result


def eval_metrics(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float | int]:
    """``{data: {metric: value}}`` -> ``{"data-metric": value}`` (MLflow's names); a
    ``(mean, std)`` pair (``xgb.cv``) gives ``-mean`` and ``-std``."""
    out: dict[str, float | int] = {}
    for data, metrics in results.items():
        for metric, value in metrics.items():
            key = metric_key(f"{data}-{metric}")
            if type(value) is float:  # the usual case, first
                out[key] = value
                continue
            if isinstance(value, tuple) and len(value) == 2:
                for suffix, part in zip(("mean", "std"), value, strict=True):
                    num = number(part)
                    if num is not None:
                        out[f"{key}-{suffix}"] = num
                continue
            num = number(value)
            if num is not None:
                out[key] = num
    return out


class EvalHistory:
    """Each round's metrics out of a history the framework keeps itself, ``{data: {metric:
    [one value per round]}}`` (XGBoost's ``evals_log``, CatBoost's ``info.metrics``): a round
    logs the last value of each list, its key made once per name; the history is read again
    only at the end (the best round's values), never copied round by round."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rounds = 0  # rounds seen by this training
        self._log: Mapping[str, Mapping[str, Any]] = {}
        self._keys: dict[tuple[str, str], str] = {}  # names whose values are plain floats

    def log_round(self, evals_log: Mapping[str, Mapping[str, Any]], step: int) -> None:
        """Log the round just done at ``step`` (the per-round path: no dict built per round)."""
        self._log = evals_log
        self.rounds += 1
        keys = self._keys
        log_metric = None
        for data, metrics in evals_log.items():
            for metric, values in metrics.items():
                if not values:
                    continue
                value = values[-1]
                key = keys.get((data, metric))
                if key is None or type(value) is not float:
                    self._log_other(data, metric, value, step)
                    continue
                if log_metric is None:
                    log_metric = self.session.run.log_metric
                try:
                    log_metric(key, value, step)
                except Exception as exc:
                    self.session.warn(f"metric {key!r}", exc)

    def _log_other(self, data: str, metric: str, value: Any, step: int) -> None:
        """A name not seen yet, or a value that is not a plain float (``xgb.cv``'s pairs)."""
        metrics = eval_metrics({data: {metric: value}})
        if type(value) is float:
            (self._keys[(data, metric)],) = metrics
        if metrics:
            self.session.log_metrics(metrics, step)

    def at(self, index: int) -> dict[str, float | int] | None:
        """Round ``index``'s values (0: this training's first round), as they were logged;
        None when this training did not run that round."""
        if not 0 <= index < self.rounds:
            return None
        rows: dict[str, dict[str, Any]] = {}
        for data, metrics in self._log.items():
            row = rows[data] = {}
            for metric, values in metrics.items():
                i = index - self.rounds + len(values)  # a list's last value is the last round's
                if i >= 0:
                    row[metric] = values[i]
        return eval_metrics(rows)


def log_early_stopping(
    session: Session,
    best: Mapping[str, float | int] | None,
    *,
    rounds: int,
    best_iteration: int,
    stopped_iteration: int,
) -> None:
    """MLflow's extras: ``stopped_iteration``, ``best_iteration`` (each framework's own
    numbering) and ``best``, the best round's values (None when that round is not among
    the ``rounds`` this training ran), logged again one step after the last, so each
    metric's final value is the best one."""
    session.log_metrics(
        {"stopped_iteration": stopped_iteration, "best_iteration": best_iteration}, 0
    )
    if best is not None:
        session.log_metrics(best, rounds)


def log_json(session: Session, data: Any, name: str) -> None:
    session.call(name, session.run.log_dict, data, name)


def log_jsons(session: Session, files: dict[str, Any]) -> None:
    """JSON artifacts ``{name: data}`` (``log_dict``'s bytes) stored in one go; if that
    fails, each on its own, so only the one that cannot be stored is missing (and said)."""
    from xp.tracking.run import json_bytes

    try:
        session.run.log_files({name: json_bytes(data) for name, data in files.items()})
    except Exception:
        for name, data in files.items():
            log_json(session, data, name)


def log_model_file(session: Session, save: Callable[[str], Any], name: str) -> None:
    """``save(path)`` into a scratch folder, then the file as artifact ``name``."""

    def write() -> None:
        with session.scratch() as folder:
            path = folder / name
            save(str(path))
            session.run.log_artifact(path, name, external=True)

    session.call("the model", write)


def switch_autolog(
    library: str,
    settings: dict[str, Any],
    patches: Patches,
    install: Callable[[ModuleType], None],
    *,
    log_models: bool,
    disable: bool,
) -> None:
    """The one on/off switch of a boosting library's autolog: its patches go in when the
    library is imported (at once if it already is) and all come out on ``disable``."""
    if disable:
        settings["enabled"] = False
        forget_hooks(library)
        patches.undo()
        return
    settings.update(enabled=True, log_models=log_models)
    when_imported(library, install)


def patch_fits(
    patches: Patches, module: ModuleType, base: type, wrap_fit: Callable[[Any], Any]
) -> None:
    """Wrap ``fit`` of every class in ``module`` that derives from ``base`` and defines it."""
    for cls in vars(module).values():
        if isinstance(cls, type) and issubclass(cls, base) and "fit" in cls.__dict__:
            patches.replace(cls, "fit", wrap_fit(cls.__dict__["fit"]))
