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


def log_early_stopping(
    session: Session,
    history: list[dict[str, float | int]],
    *,
    best_index: int,
    best_iteration: int,
    stopped_iteration: int,
) -> None:
    """MLflow's extras: ``stopped_iteration``, ``best_iteration`` (each framework's own
    numbering) and the values of ``history[best_index]`` logged again one step after the
    last, so each metric's final value is the best one."""
    session.log_metrics(
        {"stopped_iteration": stopped_iteration, "best_iteration": best_iteration}, 0
    )
    if 0 <= best_index < len(history):
        session.log_metrics(history[best_index], len(history))


def log_json(session: Session, data: Any, name: str) -> None:
    session.call(name, session.run.log_dict, data, name)


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
