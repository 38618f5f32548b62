"""Hugging Face transformers: XPCallback and report_to="xp" on a tiny BERT built from a config
(no download) trained for real on random tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import xp

pytestmark = [
    pytest.mark.framework,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # sentry_sdk via comet_ml, if any
]
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


class Tokens(torch.utils.data.Dataset):  # type: ignore[misc]
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 100, (n, 8), generator=g)
        self.y = torch.randint(0, 2, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, Any]:
        mask = torch.ones(8, dtype=torch.long)
        return {"input_ids": self.x[i], "attention_mask": mask, "labels": self.y[i]}


def _trainer(repo: Path, **kw: Any) -> Any:
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    callbacks = kw.pop("callbacks", None)
    args = transformers.TrainingArguments(
        output_dir=str(repo / "outputs"), num_train_epochs=2, per_device_train_batch_size=8,
        logging_steps=2, eval_strategy="epoch", use_cpu=True, disable_tqdm=True,
        **{"save_strategy": "no", "report_to": "none", **kw},
    )  # fmt: skip
    return transformers.Trainer(
        model=transformers.BertForSequenceClassification(config),
        args=args,
        train_dataset=Tokens(32, 0),
        eval_dataset=Tokens(16, 1),
        callbacks=callbacks,
    )


def test_callback_logs_what_the_trainer_logs(repo: Path) -> None:
    from xp.integrations.transformers import XPCallback

    trainer = _trainer(repo, callbacks=[XPCallback()], run_name="tiny-bert")
    trainer.train()
    metrics = trainer.evaluate()  # after train(): the same run
    xp.end_run()
    run = xp.get_run("tiny-bert")
    history = trainer.state.log_history
    losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
    assert [(s, v) for s, v, _t in run.record.series["loss"]] == losses
    assert run.metrics["eval_loss"] == pytest.approx(metrics["eval_loss"])
    assert (
        run.metrics["train_runtime"]
        == next(h for h in history if "train_runtime" in h)["train_runtime"]
    )
    assert run.params["num_train_epochs"] == 2
    assert run.params["hidden_size"] == 16  # the model's config
    assert run.params["model/num_parameters"] == trainer.model.num_parameters()
    assert run.params["run_name"] == "tiny-bert"


def test_report_to_xp_checkpoints_and_model(repo: Path) -> None:
    import xp.integrations.transformers as xt

    assert xt.register()
    trainer = _trainer(repo, report_to="xp", save_strategy="epoch")
    (callback,) = [
        c for c in trainer.callback_handler.callbacks if type(c).__name__ == "XPCallback"
    ]
    callback.log_checkpoints = callback.log_model = True
    trainer.train()
    xp.end_run()
    run = xp.get_run(xp.list_runs()[0].id)
    paths = {a.path for a in run.artifacts}
    assert "checkpoints/checkpoint-4/model.safetensors" in paths
    assert "checkpoints/checkpoint-8/trainer_state.json" in paths
    assert {"model/config.json", "model/model.safetensors"} <= paths
    assert run.tags["xp.autolog"] == "transformers"


def test_wandb_names(repo: Path) -> None:
    from xp.integrations.transformers import XPCallback

    _trainer(repo, callbacks=[XPCallback(names="wandb")]).train()
    xp.end_run()
    metrics = xp.get_run(xp.list_runs()[0].id).metrics
    assert {"train/loss", "eval/loss", "train/epoch", "train_runtime"} <= set(metrics)
