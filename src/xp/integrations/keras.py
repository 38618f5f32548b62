"""Keras 3 (any backend): ``XPCallback``, a ``keras.callbacks.Callback``.

    model.fit(x, y, epochs=10, validation_split=0.2, callbacks=[XPCallback()])

Params: ``fit``'s settings Keras hands its callbacks (``epochs``, ``steps``) and the
optimizer's config as ``optimizer_<name>`` (MLflow's names). Metrics: every epoch's logs under
Keras's names (``loss``, ``accuracy``, ``val_loss``...) at the 0-based epoch, plus
``learning_rate``; with ``log_every_n_steps=N`` also every Nth batch's running values as
``batch/<name>`` at the optimizer's iteration. Artifacts: ``model_summary.txt`` and, with
``log_model=True`` (default), the trained model as ``model.keras``. A run the callback
started ends with ``fit`` (as ``failed`` at exit when ``fit`` raised).
"""

from __future__ import annotations

import functools
from typing import Any

from xp.integrations.common import Session, metrics_of, number, params_of


def __getattr__(name: str) -> Any:
    if name == "XPCallback":
        return _callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _callback_class() -> type:
    import keras

    class XPCallback(keras.callbacks.Callback):
        """Logs a Keras ``fit``: params, epoch (and batch) metrics, summary and model."""

        def __init__(
            self,
            run: Any = None,
            *,
            log_every_n_steps: int | None = None,
            log_model: bool = True,
        ) -> None:
            super().__init__()
            self.session = Session("keras", run=run)
            self.log_every_n_steps = log_every_n_steps
            self.log_model = log_model

        def on_train_begin(self, logs: Any = None) -> None:
            session = self.session
            session.run  # noqa: B018 - start (or find) the run now, with fit
            session.log_params(params_of(dict(self.params or {})))
            optimizer = getattr(self.model, "optimizer", None)
            if optimizer is not None:
                config = session.call("optimizer config", optimizer.get_config) or {}
                session.log_params(params_of({f"optimizer_{k}": v for k, v in config.items()}))
            session.call("model summary", self._log_summary)

        def _log_summary(self) -> None:
            lines: list[str] = []
            self.model.summary(print_fn=lambda text, *a, **k: lines.append(str(text)))
            self.session.run.log_text("\n".join(lines) + "\n", "model_summary.txt")

        def _iteration(self) -> int | None:
            optimizer = getattr(self.model, "optimizer", None)
            iterations = getattr(optimizer, "iterations", None)
            if iterations is None:
                return None
            value = iterations.numpy() if hasattr(iterations, "numpy") else iterations
            num = number(value)
            return None if num is None else int(num)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            every = self.log_every_n_steps
            if not every or not logs:
                return
            step = self._iteration()
            if step is not None and step % every == 0:
                self.session.log_metrics(metrics_of(logs, "batch/"), step)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            metrics = metrics_of(logs or {})
            optimizer = getattr(self.model, "optimizer", None)
            lr = getattr(optimizer, "learning_rate", None)
            if lr is not None and "learning_rate" not in metrics:
                value = number(lr.numpy() if hasattr(lr, "numpy") else lr)
                if value is not None:
                    metrics["learning_rate"] = value
            self.session.log_metrics(metrics, epoch)

        def on_train_end(self, logs: Any = None) -> None:
            session = self.session
            if self.log_model:
                session.call("the model", self._log_model)
            session.end("finished")

        def _log_model(self) -> None:
            with self.session.scratch() as folder:
                path = folder / "model.keras"
                self.model.save(path)
                self.session.run.log_artifact(path, "model.keras", external=True)

    return XPCallback
