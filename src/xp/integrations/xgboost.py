"""XGBoost: ``XPCallback`` (a ``TrainingCallback``) and ``autolog()``.

Per iteration, every eval set's metrics as ``<data>-<metric>`` at the boosting round (MLflow's
names: ``train-rmse``, ``valid-logloss``; ``xgb.cv`` gives ``-mean``/``-std``). After training:
with early stopping, ``stopped_iteration``, ``best_iteration`` and the best round's values one
step after the last (so each metric's final value is the best, as MLflow does), feature
importances as ``feature_importance_<type>.json`` and the model as ``model.ubj``.
``autolog()`` wraps ``xgboost.train`` (params: the booster params plus ``train``'s other
arguments) and the scikit-learn estimators' ``fit`` (params: ``get_params()``).

    bst = xgb.train(params, dtrain, evals=[(dvalid, "valid")], callbacks=[XPCallback()])
"""

from __future__ import annotations

import functools
import inspect
import json
from types import ModuleType
from typing import Any

from xp.integrations import boosting
from xp.integrations.common import (
    Patches,
    Session,
    params_of,
)

# train() arguments that are data or code, not settings (MLflow leaves out the same).
_NOT_PARAMS = {
    "params",
    "dtrain",
    "evals",
    "obj",
    "feval",
    "evals_result",
    "xgb_model",
    "callbacks",
    "learning_rates",
    "custom_metric",
}
_patches = Patches()
_settings = {"log_models": True, "enabled": False}


def __getattr__(name: str) -> Any:
    if name == "XPCallback":
        cls = _callback_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _config_params(model: Any) -> dict[str, Any]:
    """The booster's settings from ``save_config()`` (the ``*_param`` sections), numbers
    parsed: what a callback alone can know of ``params``."""
    out: dict[str, Any] = {}

    def walk(node: Any, in_param: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, dict):
                    walk(value, in_param or key.endswith("_param"))
                elif in_param and not isinstance(value, list):
                    out.setdefault(key, _parse(value))

    walk(json.loads(model.save_config()).get("learner", {}), False)
    return params_of(out)


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@functools.cache
def _callback_class() -> type:
    import xgboost

    class XPCallback(xgboost.callback.TrainingCallback):
        """Logs each round's eval metrics, early stopping, importances and the model."""

        def __init__(
            self,
            run: Any = None,
            *,
            log_model: bool = True,
            importance_types: tuple[str, ...] = ("weight",),
            log_params: bool = True,
            _session: Session | None = None,
        ) -> None:
            super().__init__()
            self.session = _session or Session("xgboost", run=run, name="xgboost")
            self._ends_run = _session is None
            self.log_model = log_model
            self.importance_types = importance_types
            self.log_params = log_params and _session is None
            self.history = boosting.EvalHistory(self.session)

        def before_training(self, model: Any) -> Any:
            if self.log_params and isinstance(model, xgboost.Booster):
                params = self.session.call("params", _config_params, model)
                self.session.log_params(params or {})
            return model

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            # evals_log holds every round so far: the current value is the last of each list
            self.history.log_round(evals_log, epoch)
            return False

        def after_training(self, model: Any) -> Any:
            session = self.session
            if isinstance(model, xgboost.Booster):  # not the packed boosters of xgb.cv
                best = session.call("best iteration", model.attr, "best_iteration")
                if best is not None:
                    rounds = self.history.rounds
                    boosting.log_early_stopping(
                        session,
                        self.history.at(int(best)),
                        rounds=rounds,
                        best_iteration=int(best),
                        stopped_iteration=rounds - 1,
                    )
                for kind in self.importance_types:
                    scores = session.call(
                        f"{kind} importance", model.get_score, importance_type=kind
                    )
                    if scores is not None:
                        boosting.log_json(session, scores, f"feature_importance_{kind}.json")
                if self.log_model:
                    boosting.log_model_file(session, model.save_model, "model.ubj")
            if self._ends_run:
                session.end("finished")
            return model

    return XPCallback


def autolog(*, log_models: bool = True, disable: bool = False) -> None:
    """Log every ``xgboost.train`` and scikit-learn-API ``fit``; ``disable=True`` undoes it."""
    boosting.switch_autolog(
        "xgboost", _settings, _patches, _install, log_models=log_models, disable=disable
    )


def _install(module: ModuleType) -> None:
    import xgboost.sklearn
    import xgboost.training

    if getattr(xgboost.training.train, "_xp_patched", False):
        return
    train = _wrap_train(xgboost.training.train)
    for owner in (xgboost, xgboost.training, xgboost.sklearn):
        if getattr(owner, "train", None) is not None:
            _patches.replace(owner, "train", train)
    boosting.patch_fits(_patches, xgboost.sklearn, xgboost.sklearn.XGBModel, _wrap_fit)


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
            cb = _callback_class()(log_model=bool(_settings["log_models"]), _session=session)
            kwargs2 = dict(arguments)
            kwargs2["callbacks"] = [*(arguments.get("callbacks") or []), cb]
            return original(**kwargs2)

        return boosting.run_owned("xgboost", "xgboost", call)

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
            "xgboost",
            cls.__name__,
            lambda session: original(self, *args, **kwargs),
            params=params,
            tags=tags,
        )

    fit._xp_patched = True  # type: ignore[attr-defined]
    return fit
