"""scikit-learn autologging: ``xp.integrations.sklearn.autolog()`` (or ``xp.autolog()``).

Every estimator's ``fit``, ``fit_transform`` and ``fit_predict`` is wrapped, for classes
imported before and after the call and for your own subclasses of ``BaseEstimator``. Only the
outermost fit logs (a pipeline's steps and a search's candidates run plain inside it), with
MLflow's names: params from ``get_params``, tags ``estimator_name``/``estimator_class``,
``training_*`` metrics on the fit's data, the fitted model as ``model.pkl``; a search also logs
``best_<param>`` params, ``best_cv_score``, ``cv_results`` as a table, ``best_estimator.pkl``
and one child run per top candidate. XGBoost, LightGBM and CatBoost estimators are left to
their own integrations.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import pickle
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from xp.integrations.common import (
    Patches,
    Session,
    conflicts,
    forget_hooks,
    metrics_of,
    params_of,
    status_of,
    when_imported,
)

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
# Estimators whose own integration logs more (iterations, early stopping): MLflow skips them too.
OWN_INTEGRATION = ("xgboost", "lightgbm", "catboost")


@dataclass
class Settings:
    enabled: bool = False
    log_models: bool = True
    log_training_metrics: bool = True
    max_tuning_runs: int | None = 5


settings = Settings()
_patches = Patches()
_local = threading.local()  # .busy: inside an autologged fit on this thread
_hooked: list[Any] = []


def autolog(
    *,
    log_models: bool = True,
    log_training_metrics: bool = True,
    max_tuning_runs: int | None = 5,
    disable: bool = False,
) -> None:
    """Log every scikit-learn fit. ``max_tuning_runs``: child runs for the best N candidates
    of a search (None: all, 0: none). ``disable=True`` puts the original methods back."""
    if disable:
        settings.enabled = False
        forget_hooks("sklearn.base")
        _patches.undo()
        _hooked.clear()
        return
    settings.enabled = True
    settings.log_models = log_models
    settings.log_training_metrics = log_training_metrics
    settings.max_tuning_runs = max_tuning_runs
    when_imported("sklearn.base", _install)


def _install(module: ModuleType) -> None:
    base = module.BaseEstimator
    if base in _hooked:
        return
    _hooked.append(base)
    stack = list(base.__subclasses__())
    seen: set[type] = set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        _patch_class(cls)
        stack.extend(cls.__subclasses__())

    previous = base.__dict__.get("__init_subclass__")

    def init_subclass(cls: type, /, **kw: Any) -> None:
        if previous is not None:
            previous.__func__(cls, **kw)
        else:
            super(base, cls).__init_subclass__(**kw)
        _patch_class(cls)

    # Estimators defined later (a module imported after autolog, your own classes) too.
    _patches.replace(base, "__init_subclass__", classmethod(init_subclass))


def _patch_class(cls: type) -> None:
    if cls.__module__.split(".")[0] in OWN_INTEGRATION:
        return
    for name in FIT_METHODS:
        original = cls.__dict__.get(name)
        if callable(original) and not getattr(original, "_xp_patched", False):
            _patches.replace(cls, name, _wrap(original))


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "busy", False) or not settings.enabled:
            return original(self, *args, **kwargs)
        _local.busy = True
        try:
            return _logged_fit(original, self, args, kwargs)
        finally:
            _local.busy = False

    fit._xp_patched = True  # type: ignore[attr-defined]
    return fit


def is_search(estimator: Any) -> bool:
    return hasattr(estimator, "param_grid") or hasattr(estimator, "param_distributions")


def _fit_data(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """(X, y, sample_weight) as the fit call got them."""
    try:
        bound = inspect.signature(original).bind(None, *args, **kwargs).arguments
    except TypeError:
        bound = {}
    extra = bound.get("fit_params") or bound.get("params") or bound.get("kwargs") or {}
    sample_weight = bound.get("sample_weight", extra.get("sample_weight"))
    return bound.get("X"), bound.get("y", bound.get("Y")), sample_weight


def _logged_fit(original: Any, est: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    import xp

    cls = type(est)
    search = is_search(est)
    params = {}
    try:
        params = params_of(est.get_params(deep=not search))
    except Exception:  # an estimator whose get_params fails still trains
        params = {}
    # A second fit with other params in a run that has some becomes a child run of it.
    active = xp.active_run()
    nested = active is not None and conflicts(active, params)
    session = Session("sklearn", name=cls.__name__, nested=nested)
    session.log_params(params)
    session.set_tags(
        {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__qualname__}"}
    )
    try:
        result = original(est, *args, **kwargs)
    except BaseException as exc:
        session.end(status_of(exc))
        raise
    X, y, sample_weight = _fit_data(original, args, kwargs)
    if settings.log_training_metrics and X is not None:
        metrics = session.call("training metrics", training_metrics, est, X, y, sample_weight)
        session.log_metrics(metrics or {}, 0)
    if search:
        session.call("search results", _log_search, session, est)
    if settings.log_models:
        session.call("the model", _log_pickle, session, est, "model.pkl")
    session.end("finished")
    return result


def training_metrics(est: Any, X: Any, y: Any, sample_weight: Any) -> dict[str, float | int]:
    """MLflow's ``training_*`` metrics of a fitted estimator on its training data."""
    from sklearn import base, metrics

    out: dict[str, Any] = {}
    if y is None:
        return out
    kw = {} if sample_weight is None else {"sample_weight": sample_weight}

    def put(name: str, fn: Any, *a: Any, **k: Any) -> None:
        with contextlib.suppress(Exception):  # a metric that does not apply here
            out[f"training_{name}"] = fn(*a, **k)

    if base.is_classifier(est) and hasattr(est, "predict"):
        import numpy as np

        pred = est.predict(X)
        labels = np.unique(y)
        average = "binary" if len(labels) == 2 and 1 in labels else "weighted"
        put("precision_score", metrics.precision_score, y, pred, average=average, **kw)
        put("recall_score", metrics.recall_score, y, pred, average=average, **kw)
        put("f1_score", metrics.f1_score, y, pred, average=average, **kw)
        put("accuracy_score", metrics.accuracy_score, y, pred, **kw)
        if hasattr(est, "predict_proba"):
            try:
                proba = est.predict_proba(X)
            except Exception:
                proba = None
            if proba is not None:
                put("log_loss", metrics.log_loss, y, proba, labels=est.classes_, **kw)
                if proba.shape[1] == 2:
                    put("roc_auc", metrics.roc_auc_score, y, proba[:, 1], **kw)
                else:
                    put(
                        "roc_auc",
                        metrics.roc_auc_score,
                        y,
                        proba,
                        average="weighted",
                        multi_class="ovo",
                        labels=est.classes_,
                        **kw,
                    )
    elif base.is_regressor(est) and hasattr(est, "predict"):
        pred = est.predict(X)
        put("mean_squared_error", metrics.mean_squared_error, y, pred, **kw)
        put("root_mean_squared_error", metrics.root_mean_squared_error, y, pred, **kw)
        put("mean_absolute_error", metrics.mean_absolute_error, y, pred, **kw)
        put("r2_score", metrics.r2_score, y, pred, **kw)
    if hasattr(est, "score"):
        put("score", est.score, X, y, **kw)
    return metrics_of(out)


def _log_pickle(session: Session, obj: Any, name: str) -> None:
    with session.scratch() as folder:
        path = folder / name
        with open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        session.run.log_artifact(path, name, external=True)


def _log_search(session: Session, search: Any) -> None:
    """A search's best params and score, its results table, its best estimator and a child
    run per top candidate."""
    import xp

    run = session.run
    if hasattr(search, "best_params_"):
        session.log_params(params_of({f"best_{k}": v for k, v in search.best_params_.items()}))
    if hasattr(search, "best_score_"):
        session.log_metrics(metrics_of({"best_cv_score": search.best_score_}), 0)
    results = getattr(search, "cv_results_", None)
    if not results:
        return
    from xp.tracking.media import has_pyarrow

    name = "cv_results." + ("parquet" if has_pyarrow() else "csv")  # MLflow's cv_results.csv
    session.call("cv_results", run.log_table, _results_frame(results), name)
    if getattr(search, "best_estimator_", None) is not None and settings.log_models:
        session.call(
            "best estimator", _log_pickle, session, search.best_estimator_, "best_estimator.pkl"
        )
    limit = settings.max_tuning_runs
    if limit == 0:
        return
    rank_key = next((k for k in sorted(results) if k.startswith("rank_test_")), None)
    rows = list(range(len(results["params"])))
    if rank_key is not None:
        rows.sort(key=lambda i: int(results[rank_key][i]))
    if limit is not None:
        rows = rows[:limit]
    seed = search.estimator
    try:
        seed_params = seed.get_params(deep=True)
    except Exception:
        seed_params = {}
    cls = type(seed)
    for i in rows:
        rank = int(results[rank_key][i]) if rank_key else i + 1
        params = params_of({**seed_params, **results["params"][i]})
        numbers = {
            k: results[k][i]
            for k in results
            if not k.startswith(("param", "split")) and k != "params"
        }
        with xp.start_run(name=f"{cls.__name__}-{rank}", nested=True) as child:
            child.log_params(params)
            child.log_metrics(metrics_of(numbers), 0)
            child.set_tags(
                {
                    "xp.autolog": "sklearn",
                    "xp.search.rank": rank,
                    "estimator_name": cls.__name__,
                    "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
                }
            )


def _results_frame(results: dict[str, Any]) -> Any:
    """``cv_results_`` as a DataFrame of plain columns (masked arrays and dicts as text)."""
    import pandas as pd

    columns: dict[str, list[Any]] = {}
    for key, values in results.items():
        cells = list(values)
        if key == "params" or key.startswith("param_"):
            cells = [str(v) for v in cells]
        else:
            cells = [v.item() if hasattr(v, "item") else v for v in cells]
        columns[key] = cells
    return pd.DataFrame(columns)
