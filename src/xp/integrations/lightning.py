"""PyTorch Lightning: ``XPLogger``, a Lightning ``Logger``.

    trainer = Trainer(logger=XPLogger(), callbacks=[ModelCheckpoint(monitor="val_loss")])

Hyperparameters (``save_hyperparameters()``) become params, nested ones flattened with
``.``; every ``self.log(...)`` value is a metric at Lightning's step (``trainer.global_step``),
``epoch`` included, as MLflow's and W&B's loggers do. Checkpoints become artifacts
``checkpoints/<file>.ckpt``: each one as it is saved with ``log_model="all"``, the ones left
at the end (best, last, top k) with ``log_model=True``; tags ``checkpoint.best`` and
``checkpoint.last`` name them and the metric ``best_model_score`` holds the monitored score.

The run is the active one, or one the logger starts (its id is the logger's ``version``, so
checkpoints land in ``lightning_logs/<run id>/checkpoints``, a folder Lightning users already
ignore). A run the logger started stays open after ``fit`` so that ``trainer.test()`` logs
into it too; it ends at exit, at ``xp.end_run()``, or when the next ``XPLogger`` starts its own
run; a failed or interrupted ``fit`` ends it at once as ``failed`` or ``killed``.

Works with both packages, ``lightning`` and ``pytorch_lightning``: ``XPLogger`` subclasses the
one already imported (``lightning`` when both or neither are).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

from xp.integrations.common import Session, end_lingering, linger, metrics_of, params_of


def __getattr__(name: str) -> Any:
    if name == "XPLogger":
        return _logger_class(_package())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _package() -> str:
    if "lightning.pytorch" in sys.modules or "pytorch_lightning" not in sys.modules:
        try:
            import lightning.pytorch  # noqa: F401

            return "lightning.pytorch"
        except ImportError:
            pass
    return "pytorch_lightning"


@functools.cache
def _logger_class(package: str) -> type:
    import importlib

    loggers = importlib.import_module(f"{package}.loggers")
    utilities = importlib.import_module(f"{package}.utilities")
    base: Any = loggers.Logger
    rank_zero_only = utilities.rank_zero_only
    rank_zero_experiment = importlib.import_module(f"{package}.loggers.logger").rank_zero_experiment
    helpers = importlib.import_module(
        "lightning.fabric.utilities.logger"
        if package == "lightning.pytorch"
        else "lightning_fabric.utilities.logger"
    )

    class XPLogger(base):
        """Logs hyperparameters, metrics and checkpoints of a Lightning run into xp."""

        def __init__(
            self,
            run: Any = None,
            *,
            log_model: bool | str = True,
            prefix: str = "",
            name: str = "lightning_logs",
            save_dir: str | os.PathLike[str] | None = None,
        ) -> None:
            super().__init__()
            if log_model not in (True, False, "all"):
                raise ValueError(f"log_model must be True, False or 'all', got {log_model!r}")
            self.session = Session("lightning", run=run)
            self._log_model = log_model
            self._prefix = prefix
            self._name = name
            self._save_dir = None if save_dir is None else os.fspath(save_dir)
            self._logged: dict[str, float] = {}  # checkpoint path -> mtime when logged
            self._checkpoint_callback: Any = None
            self._version: str | None = None

        # -- Logger's contract -----------------------------------------------------------
        @property
        def name(self) -> str:
            return self._name

        @property
        def version(self) -> str:
            """The run's id (kept after the run ends: checkpoint folders are named by it)."""
            if self._version is None:
                self._version = str(self._run().id)
            return self._version

        @property
        def save_dir(self) -> str | None:
            return self._save_dir

        @property
        @rank_zero_experiment
        def experiment(self) -> Any:
            """The xp run (its ``log_*`` methods work as ``xp.log_*``)."""
            return self._run()

        def _run(self) -> Any:
            if not self.session.started:
                end_lingering()  # an earlier logger's run is over: this is a new training
            run = self.session.run
            if self._version is None:
                self._version = str(run.id)
            return run

        @rank_zero_only
        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            def convert() -> dict[str, Any]:
                values = helpers._convert_params(params)
                values = helpers._sanitize_callable_params(values)
                return params_of(values)

            self._run()
            values = self.session.call("hyperparameters", convert)
            if values:
                self.session.log_params(values)

        @rank_zero_only
        def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
            self._run()
            prefix = f"{self._prefix}{self.LOGGER_JOIN_CHAR}" if self._prefix else ""
            self.session.log_metrics(metrics_of(metrics, prefix), step)

        @rank_zero_only
        def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
            if self._log_model == "all" or (
                self._log_model is True and getattr(checkpoint_callback, "save_top_k", 1) == -1
            ):
                self.session.call("checkpoints", self._log_checkpoints, checkpoint_callback)
            elif self._log_model is True:
                self._checkpoint_callback = checkpoint_callback

        @rank_zero_only
        def finalize(self, status: str) -> None:
            if not self.session.started:
                return
            callback, self._checkpoint_callback = self._checkpoint_callback, None
            if callback is not None:
                self.session.call("checkpoints", self._log_checkpoints, callback)
            if status in ("success", "finished"):
                linger(self.session)  # open for trainer.test(); see the module's docstring
                return
            # Lightning calls finalize("failed") inside its except block: Ctrl-C shows there.
            interrupted = sys.exc_info()[0] is KeyboardInterrupt
            self.session.end("killed" if interrupted else "failed")

        # -- checkpoints -------------------------------------------------------------------
        def _log_checkpoints(self, callback: Any) -> None:
            run = self.session.run
            paths = {
                str(p)
                for p in (
                    callback.best_model_path,
                    callback.last_model_path,
                    *getattr(callback, "best_k_models", {}),
                )
                if p
            }
            for path in sorted(paths):
                if not os.path.isfile(path):
                    continue
                mtime = os.stat(path).st_mtime
                if self._logged.get(path) == mtime:
                    continue
                run.log_artifact(path, f"checkpoints/{os.path.basename(path)}", external=True)
                self._logged[path] = mtime
            for tag, path in (
                ("checkpoint.best", callback.best_model_path),
                ("checkpoint.last", callback.last_model_path),
            ):
                if path and path in self._logged:
                    run.set_tag(tag, f"checkpoints/{os.path.basename(path)}")
            score = getattr(callback, "best_model_score", None)
            if score is not None:
                self.session.log_metrics(metrics_of({"best_model_score": score}), None)

    return XPLogger
