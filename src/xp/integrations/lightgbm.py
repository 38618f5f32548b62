"""LightGBM: the ``XPCallback`` callback and ``autolog()``.

Per iteration, each validation set's metrics as ``<data>-<metric>`` (MLflow's names:
``train-l2``, ``valid-auc``; ``lgb.cv`` gives ``-mean``/``-stdv``) at the 0-based iteration.
LightGBM has no end-of-training hook, so the end is ``XPCallback.finish(booster)`` (done for
you by ``autolog()``): with early stopping, ``stopped_iteration`` (the number of iterations
run, MLflow's count), ``best_iteration`` (1-based, LightGBM's) and the best iteration's values
one step after the last; ``feature_importance_split.json`` / ``_gain.json``; ``model.txt``.

    cb = XPCallback()
    bst = lgb.train(params, train, valid_sets=[valid], callbacks=[cb])
    cb.finish(bst)
"""

from __future__ import annotations

import functools
import inspect
import threading
from time import time
from types import ModuleType
from typing import Any

from xp.integrations import boosting
from xp.integrations.common import (
    Patches,
    Session,
    metric_key,
    number,
    params_of,
)

_NOT_PARAMS = {
    "params",
    "train_set",
    "valid_sets",
    "valid_names",
    "fobj",
    "feval",
    "init_model",
    "learning_rates",
    "callbacks",
}
_patches = Patches()
_settings = {"log_models": True, "enabled": False}


def _results(items: Any) -> dict[str, float | int]:
    """One iteration's ``evaluation_result_list`` (``EvalResult`` in 4.7, tuples before)."""
    out: dict[str, float | int] = {}
    for item in items or ():
        if hasattr(item, "dataset_name"):
            data, metric = item.dataset_name, item.metric_name
            value, std = item.metric_value, item.metric_std_dev
        elif len(item) >= 5:  # lgb.cv before 4.7: ("valid", "valid l2", mean, bigger, std)
            data, metric, value, std = item[0], str(item[1]).split(" ")[-1], item[2], item[4]
        else:
            data, metric, value, std = item[0], item[1], item[2], None
        key = metric_key(f"{data}-{metric}")
        num = number(value)
        if std is None:
            if num is not None:
                out[key] = num
            continue
        std_num = number(std)
        if num is not None:
            out[f"{key}-mean"] = num
        if std_num is not None:
            out[f"{key}-stdv"] = std_num
    return out


class XPCallback:
    """A LightGBM callback (``callbacks=[XPCallback()]``); call ``finish(booster)`` after
    training for early stopping, importances and the model."""

    order = 20  # after LightGBM's log_evaluation (10), before early_stopping (30)
    before_iteration = False

    def __init__(
        self,
        run: Any = None,
        *,
        log_model: bool = True,
        log_params: bool = True,
        _session: Session | None = None,
    ) -> None:
        self.session = _session or Session("lightgbm", run=run, name="lightgbm")
        self._ends_run = _session is None
        self.log_model = log_model
        self.log_params = log_params and _session is None
        # each iteration's evaluation_result_list as LightGBM gave it: made into metrics
        # only for the best iteration, at the end
        self.history: list[Any] = []
        self._keys: dict[tuple[Any, Any], str] = {}  # names of items logged as they are
        # (results, iteration, time) of each iteration, logged from _drained on by _drain
        self._held: list[tuple[Any, int, float]] = []
        self._drained = 0
        self._draining = threading.RLock()
        self._deferred: Any = None  # the run whose flushes drain this callback
        self._finished = False

    def __call__(self, env: Any) -> None:
        if self.log_params and env.iteration == env.begin_iteration:
            self.session.log_params(params_of(dict(env.params or {})))
        items = env.evaluation_result_list
        self.history.append(items)
        if items:  # made into points in bulk, by the run's flush (Run.defer): not in the loop
            self._held.append((items, env.iteration, time()))
            run = self._deferred
            if run is None or run.status != "running":  # first, or that run ended meanwhile
                run = self.session.run
                try:
                    run.defer(self._drain)
                except Exception:  # not an xp Run, or ended: log now
                    self._drain()
                else:
                    self._deferred = run

    def _drain(self) -> None:
        """Log the iterations held since the last drain, each at its own step and time.
        Drains from the flusher thread and the training thread take turns (the run's end
        waits for a flush under way); one re-entered from a log call goes on where the outer
        one is, so no iteration is logged twice."""
        with self._draining:
            held, end = self._held, len(self._held)
            # the run the iterations were held for, even once the session let go of it
            into = self._deferred if self._deferred is not None else self.session.run
            while self._drained < end:
                i = self._drained
                self._drained = i + 1
                self._log_items(into, *held[i])
            run = self._deferred
            if self._finished and run is not None and self._drained == len(held):
                self._deferred = None  # all logged: the run forgets this callback
                run.undefer(self._drain)

    def _log_items(self, run: Any, items: Any, step: int, when: float) -> None:
        keys = self._keys
        metrics: dict[str, float | int] = {}  # one call: one step, one time
        for item in items:  # keys made once per name
            try:
                key = keys.get((item[0], item[1]))
            except (TypeError, IndexError):  # not a tuple: _results knows what it is
                key = None
            if key is None or (len(item) > 4 and item[4] is not None):
                for other, num in self._other(item).items():
                    if other in metrics:
                        metrics = self._log(run, metrics, step, when)
                    metrics[other] = num
                continue
            value = item[2]
            if type(value) is not float:  # LightGBM's numpy.float64: a float subclass
                value = float(value) if isinstance(value, float) else number(value)
                if value is None:
                    continue
            if key in metrics:  # two results of one name: both points are kept
                metrics = self._log(run, metrics, step, when)
            metrics[key] = value
        if metrics:
            self._log(run, metrics, step, when)

    def _log(
        self, run: Any, metrics: dict[str, float | int], step: int, when: float
    ) -> dict[str, float | int]:
        """Log ``metrics`` at ``step`` in one call; if one cannot be logged (the run logs
        none of them then), each on its own, so only that one is missing (and said)."""
        try:
            run.log_metrics_at(metrics, step, when)
        except Exception:
            for key, value in metrics.items():
                try:
                    run.log_metric(key, value, step)
                except Exception as exc:
                    self.session.warn(f"metric {key!r}", exc)
        return {}

    def _other(self, item: Any) -> dict[str, float | int]:
        """An item whose name is new, or with a standard deviation (``lgb.cv``)."""
        metrics = _results((item,))
        if isinstance(item, tuple) and (
            len(item) < 5 or (hasattr(item, "dataset_name") and item[4] is None)
        ):
            self._keys[(item[0], item[1])] = metric_key(f"{item[0]}-{item[1]}")
        return metrics

    def finish(self, booster: Any = None) -> None:
        """Log what is known once training is over (with the ``Booster`` from
        ``lgb.train``; none after ``lgb.cv``), and end the run if this callback started it."""
        session = self.session
        self._finished = True  # what is held is left to the run's next flush, which is off
        # the training's path (or to the run's end, when this callback ends it)
        best = number(getattr(booster, "best_iteration", 0)) or 0
        if best > 0:
            self._drain()  # first: the best round's values go one step after the last
            rounds = len(self.history)
            index = int(best) - 1  # LightGBM counts from 1
            boosting.log_early_stopping(
                session,
                _results(self.history[index]) if 0 <= index < rounds else None,
                rounds=rounds,
                best_iteration=int(best),
                stopped_iteration=rounds,
            )
        if booster is not None and callable(getattr(booster, "feature_name", None)):
            names = session.call("feature names", booster.feature_name)
            files = {}
            for kind in ("split", "gain") if names is not None else ():
                data = session.call(f"{kind} importance", _importance, booster, names, kind)
                if data is not None:
                    files[f"feature_importance_{kind}.json"] = data
            if files:
                boosting.log_jsons(session, files)
            if self.log_model:
                boosting.log_model_file(session, booster.save_model, "model.txt")
        if self._ends_run:
            session.end("finished")


def _importance(booster: Any, names: list[Any], kind: str) -> dict[str, float | int]:
    values = booster.feature_importance(importance_type=kind)
    return {str(n): number(v) or 0 for n, v in zip(names, values, strict=True)}


def autolog(*, log_models: bool = True, disable: bool = False) -> None:
    """Log every ``lightgbm.train`` and scikit-learn-API ``fit``; ``disable=True`` undoes it."""
    boosting.switch_autolog(
        "lightgbm", _settings, _patches, _install, log_models=log_models, disable=disable
    )


def _install(module: ModuleType) -> None:
    import lightgbm.engine
    import lightgbm.sklearn

    if getattr(lightgbm.engine.train, "_xp_patched", False):
        return
    train = _wrap_train(lightgbm.engine.train)
    for owner in (lightgbm, lightgbm.engine, lightgbm.sklearn):
        if getattr(owner, "train", None) is not None:
            _patches.replace(owner, "train", train)
    boosting.patch_fits(_patches, lightgbm.sklearn, lightgbm.sklearn.LGBMModel, _wrap_fit)


def _wrap_train(original: Any) -> Any:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def train(*args: Any, **kwargs: Any) -> Any:
        if not _settings["enabled"]:
            return original(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        params = dict(arguments.get("params") or {})
        params.update({k: v for k, v in arguments.items() if k not in _NOT_PARAMS})
        outer = boosting.current_session()  # an autologged fit's: it logged the params

        def call(session: Session) -> Any:
            if outer is None:
                session.log_params(params_of(params))
            cb = XPCallback(log_model=bool(_settings["log_models"]), _session=session)
            arguments["callbacks"] = [*(arguments.get("callbacks") or []), cb]
            booster = original(**arguments)
            session.call("the summary", cb.finish, booster)
            return booster

        return boosting.run_owned("lightgbm", "lightgbm", call)

    train._xp_patched = True  # type: ignore[attr-defined]
    return train


def _wrap_fit(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _settings["enabled"] or boosting.current_session() is not None:
            return original(self, *args, **kwargs)
        cls = type(self)
        try:
            params = params_of(self.get_params())
        except Exception:
            params = {}
        tags = {
            "estimator_name": cls.__name__,
            "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
        }
        return boosting.run_owned(
            "lightgbm",
            cls.__name__,
            lambda session: original(self, *args, **kwargs),
            params=params,
            tags=tags,
        )

    fit._xp_patched = True  # type: ignore[attr-defined]
    return fit
