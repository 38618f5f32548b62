"""CatBoost: the ``XPCallback`` callback and ``autolog()``.

Per iteration, each eval set's metrics as ``<data>-<metric>`` (``learn-RMSE``,
``validation-Logloss``) at the 0-based iteration (CatBoost counts from 1; xp lines the steps
up with the other frameworks). ``XPCallback.finish(model)`` (done by ``autolog()``) logs every
parameter (``get_all_params()``), ``best_iteration`` (0-based, CatBoost's ``best_iteration_``)
with the best values one step after the last, and the model as ``model.cbm``.

    cb = XPCallback()
    model = CatBoostRegressor(iterations=100).fit(X, y, eval_set=(Xv, yv), callbacks=[cb])
    cb.finish(model)
"""

from __future__ import annotations

import functools
import inspect
from types import ModuleType
from typing import Any

from xp.integrations import boosting
from xp.integrations.common import Patches, Session, params_of

_patches = Patches()
_settings = {"log_models": True, "enabled": False}


class XPCallback:
    """A CatBoost callback (``fit(..., callbacks=[XPCallback()])``); ``finish(model)`` after."""

    def __init__(
        self, run: Any = None, *, log_model: bool = True, _session: Session | None = None
    ) -> None:
        self.session = _session or Session("catboost", run=run, name="catboost")
        self._ends_run = _session is None
        self.log_model = log_model
        self.history = boosting.EvalHistory(self.session)

    def after_iteration(self, info: Any) -> bool:
        # info.metrics holds every iteration so far: the current value is the last of each
        self.history.log_round(info.metrics, int(info.iteration) - 1)
        return True  # CatBoost: True goes on, False stops

    def finish(self, model: Any) -> None:
        session = self.session
        params = session.call("params", model.get_all_params)
        if params:
            session.log_params(params_of(params))
        best = getattr(model, "best_iteration_", None)
        rounds = self.history.rounds
        if best is not None and rounds:
            boosting.log_early_stopping(
                session,
                self.history.at(int(best)),
                rounds=rounds,
                best_iteration=int(best),
                stopped_iteration=rounds - 1,
            )
        if self.log_model and hasattr(model, "save_model"):
            boosting.log_model_file(session, model.save_model, "model.cbm")
        if self._ends_run:
            session.end("finished")


def autolog(*, log_models: bool = True, disable: bool = False) -> None:
    """Log every CatBoost ``fit``; ``disable=True`` undoes it."""
    boosting.switch_autolog(
        "catboost", _settings, _patches, _install, log_models=log_models, disable=disable
    )


def _install(module: ModuleType) -> None:
    import catboost.core

    base = catboost.core.CatBoost
    if getattr(base.__dict__.get("fit"), "_xp_patched", False):
        return
    boosting.patch_fits(_patches, catboost.core, base, _wrap_fit)


def _wrap_fit(original: Any) -> Any:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _settings["enabled"] or boosting.current_session() is not None:
            return original(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        cls = type(self)
        tags = {
            "estimator_name": cls.__name__,
            "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
        }

        def call(session: Session) -> Any:
            cb = XPCallback(log_model=bool(_settings["log_models"]), _session=session)
            bound.arguments["callbacks"] = [*(bound.arguments.get("callbacks") or []), cb]
            result = original(*bound.args, **bound.kwargs)
            session.call("the summary", cb.finish, self)
            return result

        return boosting.run_owned("catboost", cls.__name__, call, tags=tags)

    fit._xp_patched = True  # type: ignore[attr-defined]
    return fit
