"""``mlflow.sklearn.autolog()``: what MLflow logs for a scikit-learn ``fit``.

Every estimator class's own ``fit`` / ``fit_transform`` / ``fit_predict`` is wrapped; only
the outermost call logs (a Pipeline's steps fit inside it). With no active run, a run is
started for the fit (tag ``mlflow.autologging=sklearn``) and ended after it. Logged: params
(``get_params(deep=True)``, as text), tags ``estimator_name`` / ``estimator_class``, training
metrics on the fit data (``training_score``; classifiers: precision, recall, F1, accuracy,
log loss and ROC AUC; regressors: MSE, RMSE, MAE, R2), ``estimator.html``, the fitted model
as ``model``, the training data as an input; for a search (GridSearchCV...) ``best_*``
params, ``best_cv_score``, ``cv_results.csv``, the best estimator, and a child run for each
of the best ``max_tuning_runs`` candidates. Logging never breaks training: a failure to log
is a warning. Post-training metrics (``model.score(X_test, y_test)`` after fit) are not
logged.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

_log = logging.getLogger("xp.mlflow")
_config: dict[str, Any] | None = None
_patched: dict[tuple[type, str], Any] = {}
_local = threading.local()
_METHODS = ("fit", "fit_transform", "fit_predict")


def configure(*, disable: bool, **config: Any) -> None:
    global _config
    if disable:
        _config = None
        for (cls, name), original in _patched.items():
            setattr(cls, name, original)
        _patched.clear()
        return
    _config = config
    _patch_all()


def _classes() -> list[type]:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.utils import all_estimators

    found = [cls for _name, cls in all_estimators()]
    return [*found, Pipeline, FeatureUnion, GridSearchCV, RandomizedSearchCV]


def _patch_all() -> None:
    """Wrap each method where it is defined (GridSearchCV's fit is BaseSearchCV's)."""
    for cls in _classes():
        for name in _METHODS:
            owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
            if owner is None or owner is object or (owner, name) in _patched:
                continue
            original = owner.__dict__[name]
            _patched[(owner, name)] = original
            setattr(owner, name, _wrap(original))


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _config is None or getattr(_local, "depth", 0) > 0:
            return original(self, *args, **kwargs)
        _local.depth = 1
        try:
            return _logged_fit(original, self, args, kwargs, _config)
        finally:
            _local.depth = 0

    return fit


def _logged_fit(
    original: Any,
    estimator: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    cfg: dict[str, Any],
) -> Any:
    from xp.mlflow.tracking import fluent

    started = fluent.active_run() is None
    if started:
        fluent.start_run(tags={"mlflow.autologging": "sklearn", **cfg["extra_tags"]})
    try:
        _safely("params and tags", _log_before, estimator)
        result = original(estimator, *args, **kwargs)
        x = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        _safely("training metrics", _log_metrics, estimator, x, y, kwargs.get("sample_weight"))
        _safely("artifacts", _log_artifacts, estimator)
        if cfg["log_datasets"] and x is not None:
            _safely("the training data", _log_dataset, x, y)
        if hasattr(estimator, "cv_results_"):
            _safely("the search", _log_search, estimator, cfg)
        if cfg["log_models"]:
            _safely("the model", _log_model, estimator, x, cfg, "model")
    except BaseException:
        if started:
            fluent.end_run("KILLED" if _interrupted() else "FAILED")
        raise
    if started:
        fluent.end_run("FINISHED")
    return result


def _interrupted() -> bool:
    import sys

    return isinstance(sys.exc_info()[1], KeyboardInterrupt)


def _safely(what: str, fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:
        _log.warning("xp.mlflow autolog: could not log %s: %s", what, exc)


def _text(value: Any) -> str:
    text = str(value)
    return text[:6000]


def _log_before(estimator: Any) -> None:
    from xp.mlflow.tracking import fluent

    params = {k: _text(v) for k, v in estimator.get_params(deep=True).items()}
    have = fluent.active_run()
    existing = have.data.params if have is not None else {}
    fresh = {k: v for k, v in params.items() if k not in existing}
    for start in range(0, len(fresh), 100):
        chunk = dict(list(fresh.items())[start : start + 100])
        fluent.log_params(chunk)
    cls = type(estimator)
    fluent.set_tags(
        {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__qualname__}"}
    )


def _log_metrics(estimator: Any, x: Any, y: Any, sample_weight: Any) -> None:
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    from xp.mlflow.tracking import fluent

    out: dict[str, float] = {}
    if x is None:
        return
    if hasattr(estimator, "score") and y is not None:
        try:
            out["training_score"] = float(
                estimator.score(x, y, sample_weight=sample_weight)
                if sample_weight is not None
                else estimator.score(x, y)
            )
        except Exception as exc:
            _log.debug("training_score: %s", exc)
    if y is not None and (is_classifier(estimator) or is_regressor(estimator)):
        pred = estimator.predict(x)
        kw = {"sample_weight": sample_weight}
        if is_classifier(estimator):
            average = "weighted"
            out["training_precision_score"] = float(
                metrics.precision_score(y, pred, average=average, zero_division=0, **kw)
            )
            out["training_recall_score"] = float(
                metrics.recall_score(y, pred, average=average, zero_division=0, **kw)
            )
            out["training_f1_score"] = float(
                metrics.f1_score(y, pred, average=average, zero_division=0, **kw)
            )
            out["training_accuracy_score"] = float(metrics.accuracy_score(y, pred, **kw))
            if hasattr(estimator, "predict_proba"):
                try:
                    proba = estimator.predict_proba(x)
                    out["training_log_loss"] = float(
                        metrics.log_loss(y, proba, labels=estimator.classes_, **kw)
                    )
                    if proba.shape[1] == 2:
                        auc = metrics.roc_auc_score(y, proba[:, 1], **kw)
                    else:
                        auc = metrics.roc_auc_score(
                            y, proba, average="weighted", multi_class="ovo", **kw
                        )
                    out["training_roc_auc"] = float(auc)
                except Exception as exc:
                    _log.debug("probability metrics: %s", exc)
        else:
            mse = float(metrics.mean_squared_error(y, pred, **kw))
            out["training_mean_squared_error"] = mse
            out["training_root_mean_squared_error"] = mse**0.5
            out["training_mean_absolute_error"] = float(metrics.mean_absolute_error(y, pred, **kw))
            out["training_r2_score"] = float(metrics.r2_score(y, pred, **kw))
    if out:
        fluent.log_metrics(out)


def _log_artifacts(estimator: Any) -> None:
    from sklearn.utils import estimator_html_repr

    from xp.mlflow.tracking import fluent

    fluent.log_text(estimator_html_repr(estimator), "estimator.html")


def _log_dataset(x: Any, y: Any) -> None:
    import pandas as pd

    from xp.mlflow import data
    from xp.mlflow.tracking import fluent

    if isinstance(x, pd.DataFrame):
        frame = x.copy()
        if y is not None:
            frame["label"] = list(y)
        dataset: Any = data.from_pandas(frame, targets="label" if y is not None else None)
    else:
        dataset = data.from_numpy(x, targets=y)
    fluent.log_input(dataset, context="train")


def _log_model(estimator: Any, x: Any, cfg: dict[str, Any], name: str) -> None:
    from xp.mlflow import sklearn
    from xp.mlflow.models import infer_signature

    signature = example = None
    if x is not None and (cfg["log_model_signatures"] or cfg["log_input_examples"]):
        sample = x[:5] if not hasattr(x, "iloc") else x.iloc[:5]
        example = sample if cfg["log_input_examples"] else None
        if cfg["log_model_signatures"] and hasattr(estimator, "predict"):
            try:
                signature = infer_signature(sample, estimator.predict(sample))
            except Exception as exc:
                _log.debug("signature: %s", exc)
    sklearn.log_model(
        estimator,
        name=name,
        serialization_format=cfg["serialization_format"],
        signature=signature,
        input_example=example,
    )


def _log_search(search: Any, cfg: dict[str, Any]) -> None:
    import io

    import pandas as pd

    from xp.mlflow.tracking import fluent

    best = getattr(search, "best_params_", None) or {}
    fluent.log_params({f"best_{k}": _text(v) for k, v in best.items()})
    if hasattr(search, "best_score_"):
        fluent.log_metrics({"best_cv_score": float(search.best_score_)})
    results = pd.DataFrame(search.cv_results_)
    buf = io.StringIO()
    results.to_csv(buf, index=False)
    fluent.log_text(buf.getvalue(), "cv_results.csv")
    if cfg["log_models"] and hasattr(search, "best_estimator_"):
        _log_model(
            search.best_estimator_, None, {**cfg, "log_model_signatures": False}, "best_estimator"
        )
    limit = cfg["max_tuning_runs"]
    if limit == 0:
        return
    order = results.sort_values("rank_test_score").index
    chosen = list(order if limit is None else order[:limit])
    _log.info(
        "Logging the %d best runs, %s",
        len(chosen),
        "no runs will be omitted."
        if len(chosen) == len(results)
        else f"{len(results) - len(chosen)} runs will be omitted.",
    )
    base = {k: _text(v) for k, v in search.estimator.get_params(deep=True).items()}
    wanted = [
        c
        for c in ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")
        if c in results
    ]
    wanted += [
        c
        for c in results.columns
        if c.startswith(("mean_test_", "std_test_", "rank_test_", "mean_train_", "std_train_"))
    ]
    for i in chosen:
        row = results.loc[i]
        params = dict(base)
        params.update({k: _text(v) for k, v in row["params"].items()})
        with fluent.start_run(nested=True, tags={"mlflow.autologging": "sklearn"}):
            for start in range(0, len(params), 100):
                fluent.log_params(dict(list(params.items())[start : start + 100]))
            fluent.log_metrics({c: float(row[c]) for c in wanted})
