"""Hugging Face transformers: ``XPCallback``, a ``TrainerCallback``, and ``report_to="xp"``.

    trainer = Trainer(..., callbacks=[XPCallback()])
    # or, once this module is imported: TrainingArguments(..., report_to="xp")

At the start of training, the model's config and the ``TrainingArguments`` become params (what
MLflow's and W&B's callbacks log; nested values flattened with ``.``, tokens are already masked
by ``to_dict()``), plus ``model/num_parameters``. Every ``on_log`` (loss, learning rate, grad
norm, eval metrics, the end-of-training summary) becomes metrics at ``state.global_step`` under
the Trainer's names (``loss``, ``eval_loss``, ``train_runtime``; ``names="wandb"`` rewrites them
as W&B does: ``train/loss``, ``eval/loss``). At the end, the tag ``best_model_checkpoint`` and
the metric ``best_metric``; with ``log_checkpoints=True`` every saved ``checkpoint-<step>``
folder, with ``log_model=True`` the final model (``save_pretrained``) under ``model/``.

The run is the active one or one named ``args.run_name`` that the callback starts; a run it
started stays open after ``train()`` so ``trainer.evaluate()`` logs into it, and ends at exit,
``xp.end_run()`` or when the next training starts its own run.

``report_to="xp"`` works by adding ``"xp"`` to transformers' table of reporting integrations,
an extension point transformers does not document: importing this module registers it (now,
or when transformers loads its integrations). If a transformers release drops the table, pass
``callbacks=[XPCallback()]``.
"""

from __future__ import annotations

import functools
import os
from types import ModuleType
from typing import Any

from xp.integrations.common import (
    Session,
    end_lingering,
    linger,
    metric_key,
    metrics_of,
    params_of,
    when_imported,
)

_SUMMARY = ("train_runtime", "train_samples_per_second", "train_steps_per_second")


def __getattr__(name: str) -> Any:
    if name == "XPCallback":
        return _callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def wandb_name(key: str) -> str:
    """W&B's ``rewrite_logs``: ``eval_x`` -> ``eval/x``, ``test_x`` -> ``test/x``, else
    ``train/x``."""
    for prefix in ("eval_", "test_"):
        if key.startswith(prefix):
            return f"{prefix[:-1]}/{key[len(prefix) :]}"
    return f"train/{key}"


@functools.cache
def _callback_class() -> type:
    from transformers.trainer_callback import TrainerCallback

    class XPCallback(TrainerCallback):
        """Logs a Trainer's arguments, model config, logs, checkpoints and model into xp."""

        def __init__(
            self,
            run: Any = None,
            *,
            names: str = "mlflow",
            log_checkpoints: bool = False,
            log_model: bool = False,
        ) -> None:
            if names not in ("mlflow", "wandb"):
                raise ValueError(f"names must be 'mlflow' or 'wandb', got {names!r}")
            self._given = run
            self.session: Session | None = None
            self.names = names
            self.log_checkpoints = log_checkpoints
            self.log_model = log_model

        def _session(self, args: Any) -> Session:
            if self.session is None:
                end_lingering()
                name = getattr(args, "run_name", None)
                # transformers sets run_name to output_dir when not given: not a useful name
                if name and name == getattr(args, "output_dir", None):
                    name = None
                self.session = Session("transformers", run=self._given, name=name or None)
            return self.session

        def on_train_begin(
            self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
        ) -> None:
            if not state.is_world_process_zero:
                return
            session = self._session(args)

            def params() -> dict[str, Any]:
                values: dict[str, Any] = {}
                config = getattr(model, "config", None)
                if config is not None and hasattr(config, "to_dict"):
                    values.update(config.to_dict())
                values.update(args.to_dict())
                out = params_of(values)
                if model is not None and hasattr(model, "num_parameters"):
                    out["model/num_parameters"] = int(model.num_parameters())
                return out

            session.log_params(session.call("params", params) or {})

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            session = self._session(args)
            metrics = metrics_of(logs)
            if self.names == "wandb":
                metrics = {
                    (k if k in _SUMMARY else metric_key(wandb_name(k))): v
                    for k, v in metrics.items()
                }
            session.log_metrics(metrics, int(state.global_step))

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if not self.log_checkpoints or not state.is_world_process_zero:
                return
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if os.path.isdir(folder):
                session = self._session(args)
                session.log_artifact(folder, f"checkpoints/checkpoint-{state.global_step}")

        def on_train_end(
            self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
        ) -> None:
            if not state.is_world_process_zero:
                return
            session = self._session(args)
            if state.best_model_checkpoint:
                name = os.path.basename(str(state.best_model_checkpoint))
                session.set_tags({"best_model_checkpoint": name})
            if state.best_metric is not None:
                session.log_metrics(metrics_of({"best_metric": state.best_metric}), None)
            if self.log_model and model is not None and hasattr(model, "save_pretrained"):
                session.call("the model", self._save_model, session, model, kw)
            linger(session)  # open for trainer.evaluate(); see the module's docstring

        @staticmethod
        def _save_model(session: Session, model: Any, kw: dict[str, Any]) -> None:
            with session.scratch() as folder:
                model.save_pretrained(folder)
                processor = kw.get("processing_class") or kw.get("tokenizer")
                if processor is not None and hasattr(processor, "save_pretrained"):
                    processor.save_pretrained(folder)
                session.run.log_artifact(folder, "model", external=True)

    return XPCallback


def register(module: ModuleType | None = None) -> bool:
    """Make ``report_to="xp"`` name ``XPCallback``; False when this transformers has no
    table to register in (then pass ``callbacks=[XPCallback()]``)."""
    import importlib

    utils = module or importlib.import_module("transformers.integrations.integration_utils")
    table = getattr(utils, "INTEGRATION_TO_CALLBACK", None)
    if not isinstance(table, dict):
        return False
    table["xp"] = _callback_class()
    return True


def _on_import(module: ModuleType) -> None:
    register(module)


# Importing this module is asking for report_to="xp": register when transformers loads it.
when_imported("transformers.integrations.integration_utils", _on_import)
