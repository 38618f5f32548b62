"""PyTorch Lightning: XPLogger on a tiny MLP trained for real on random data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import xp

pytestmark = [
    pytest.mark.framework,
    # Lightning 2.6 with torch 2.13 (SPEC 1.4): torch's _pytree and a few-batches hint
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*log_every_n_steps.*"),
    pytest.mark.filterwarnings("ignore:.*no `val_dataloader`.*"),
]
L = pytest.importorskip("lightning")

MODULE = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import lightning as L


class Net(L.LightningModule):
    def __init__(self, hidden=8, lr=0.05, opt={"name": "adam", "betas": (0.9, 0.99)}, fail_at=-1):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def training_step(self, batch, i):
        if self.global_step == self.hparams.fail_at:
            raise RuntimeError("boom")
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    def test_step(self, batch, i):
        x, y = batch
        self.log("test_loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def loader():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)


def trainer(logger, **kw):
    kw.setdefault("max_epochs", 3)
    return L.Trainer(logger=logger, log_every_n_steps=2, accelerator="cpu", devices=1,
                     enable_progress_bar=False, enable_model_summary=False, **kw)
"""


def _module(repo: Path) -> Any:
    import importlib.util

    path = repo / "tiny_lightning.py"
    path.write_text(MODULE)
    spec = importlib.util.spec_from_file_location("tiny_lightning", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fit_then_test_logs_one_run(repo: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from xp.integrations.lightning import XPLogger

    m = _module(repo)
    logger = XPLogger()
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last=True)
    trainer = m.trainer(logger, callbacks=[checkpoint])
    trainer.fit(m.Net(), m.loader(), m.loader())
    trainer.test(trainer.lightning_module, m.loader(), verbose=False)
    assert xp.active_run() is not None  # open after fit, for test(); ends with the process
    xp.end_run()
    run = xp.get_run(logger.version)
    assert run.status == "finished"
    assert run.params == {
        "hidden": 8, "lr": 0.05, "opt.name": "adam", "opt.betas": [0.9, 0.99], "fail_at": -1
    }  # fmt: skip
    assert [s for s, _v, _t in run.record.series["train_loss_step"]] == [1, 3, 5, 7, 9, 11]
    assert [s for s, _v, _t in run.record.series["val_loss"]] == [3, 7, 11]
    assert run.metrics["test_loss"] == pytest.approx(trainer.callback_metrics["test_loss"].item())
    assert run.metrics["epoch"] == 3
    best = os.path.basename(checkpoint.best_model_path)
    assert run.tags["checkpoint.best"] == f"checkpoints/{best}"
    assert run.tags["checkpoint.last"] == "checkpoints/last.ckpt"
    assert {a.path for a in run.artifacts} == {
        f"checkpoints/{os.path.basename(p)}" for p in [*checkpoint.best_k_models, "last.ckpt"]
    }
    assert run.metrics["best_model_score"] == pytest.approx(checkpoint.best_model_score.item())
    assert (
        Path(checkpoint.best_model_path).parent == repo / "lightning_logs" / run.id / "checkpoints"
    )


def test_log_model_all_and_a_second_logger_ends_the_first(repo: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from xp.integrations.lightning import XPLogger

    m = _module(repo)
    first = XPLogger(log_model="all")
    m.trainer(first, max_epochs=1, callbacks=[ModelCheckpoint(monitor="val_loss")]).fit(
        m.Net(), m.loader(), m.loader()
    )
    second = XPLogger(log_model=False)
    m.trainer(second, max_epochs=1).fit(m.Net(), m.loader())
    xp.end_run()
    assert xp.get_run(first.version).status == "finished"
    assert len(xp.get_run(first.version).artifacts) == 1
    assert xp.get_run(second.version).artifacts == ()


def test_inside_an_active_run(repo: Path) -> None:
    from xp.integrations.lightning import XPLogger

    m = _module(repo)
    with xp.start_run(name="outer") as run:
        logger = XPLogger(log_model=False)
        m.trainer(logger, max_epochs=1).fit(m.Net(), m.loader())
        assert logger.version == run.id
        assert xp.active_run() is run.run
    assert "train_loss_step" in xp.get_run(run.id).metrics


def test_a_failing_fit_ends_the_run_failed(repo: Path) -> None:
    from xp.integrations.lightning import XPLogger

    m = _module(repo)
    logger = XPLogger(log_model=False)
    with pytest.raises(RuntimeError, match="boom"):
        m.trainer(logger).fit(m.Net(fail_at=2), m.loader())
    assert xp.active_run() is None
    assert xp.get_run(logger.version).status == "failed"


def test_ctrl_c_ends_the_run_killed(repo: Path) -> None:
    """Lightning catches the KeyboardInterrupt, finalizes its loggers and exits 1."""
    _module(repo)
    (repo / "train.py").write_text(
        textwrap.dedent(
            """
            import os, signal, warnings
            warnings.simplefilter("ignore")
            import xp
            from xp.integrations.lightning import XPLogger
            import tiny_lightning as m

            class Interrupt(m.Net):
                def training_step(self, batch, i):
                    if self.global_step == 2:
                        print(self.logger.version, flush=True)
                        os.kill(os.getpid(), signal.SIGINT)
                    return super().training_step(batch, i)

            m.trainer(XPLogger(log_model=False)).fit(Interrupt(), m.loader())
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "train.py"], cwd=repo, capture_output=True, text=True, timeout=300
    )
    run_id = proc.stdout.split()[0]
    assert proc.returncode == 1, proc.stderr
    assert xp.get_run(run_id).status == "killed"
    assert signal.SIGINT  # the signal the script sent itself
