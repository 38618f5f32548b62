"""I1/I2: what a framework integration adds to training, next to MLflow's autolog (I1) and W&B
in offline mode (I2), on the same training: XGBoost 300 rounds and LightGBM 300 rounds on
scikit-learn's diabetes data (train and valid sets, one thread), Lightning 3 epochs of a tiny
MLP (192 steps, a metric logged every step).

Each side trains the same model without any logging and with its integration, in the same
process, best of 5 each (after a warm-up of both, alternating the two), inside a run started
beforehand (start and commit are not billed to training; no side logs a model): the figure
is the time with the integration over the time without. Each integration's end-of-training
work (importances) is included. Needs requirements/integrations-compare.txt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Context, Metric, Workload, settle, standalone, xp_project

TARGET = 1.05  # training with the integration takes at most 105 % of the time without
NEEDS = ("xgboost", "lightgbm", "lightning", "sklearn")
HINT = "pip install torch==2.13.0 && pip install -r requirements/integrations-compare.txt"


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall time and this process's CPU time (all its threads: xp's journal writer too)."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


# The CPU times of the last _pair, (plain, logged): a figure other processes on a busy
# machine hardly move, where they stretch wall times.
_last_cpu: list[float] = [0.0, 0.0]


def _pair(plain: Callable[[], Any], logged: Callable[[], Any], n: int) -> tuple[float, float]:
    """Best of ``n`` wall times for each, after an untimed warm-up of both, alternating plain
    and logged so that a change in the machine's load hits both alike."""
    plain()
    logged()
    times: tuple[list[float], list[float]] = ([], [])
    cpu: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        for i, fn in enumerate((plain, logged)):
            wall, used = _timed(fn)
            times[i].append(wall)
            cpu[i].append(used)
    _last_cpu[:] = [min(cpu[0]), min(cpu[1])]
    return min(times[0]), min(times[1])


def _relative(plain: float, logged: float) -> float:
    """Training time with the integration relative to without (1.03: 3 % more)."""
    return logged / plain


# -- the trainings ----------------------------------------------------------------------------
def _diabetes() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return X[:350], y[:350], X[350:], y[350:]


Callbacks = Callable[[], list[Any]]  # fresh callbacks for each training


def _none() -> list[Any]:
    return []


def xgb_train(rounds: int, callbacks: Callbacks = _none) -> Callable[[], Any]:
    """A training to time: the data are made once, outside the timing."""
    import xgboost as xgb

    Xt, yt, Xv, yv = _diabetes()
    dtrain, dvalid = xgb.DMatrix(Xt, label=yt), xgb.DMatrix(Xv, label=yv)
    params = {"objective": "reg:squarederror", "max_depth": 4, "eta": 0.05, "nthread": 1}

    def train() -> Any:
        return xgb.train(
            params, dtrain, rounds, evals=[(dtrain, "train"), (dvalid, "valid")],
            verbose_eval=False, callbacks=callbacks(),
        )  # fmt: skip

    return train


def lgb_train(rounds: int, callbacks: Callbacks = _none) -> Callable[[], Any]:
    import lightgbm as lgb

    Xt, yt, Xv, yv = _diabetes()
    params = {"objective": "regression", "num_leaves": 15, "learning_rate": 0.05,
              "verbose": -1, "num_threads": 1}  # fmt: skip

    def train() -> Any:
        dtrain, dvalid = lgb.Dataset(Xt, yt), lgb.Dataset(Xv, yv)
        return lgb.train(
            params, dtrain, rounds, valid_sets=[dtrain, dvalid], valid_names=["train", "valid"],
            callbacks=callbacks(),
        )  # fmt: skip

    return train


def lightning_fit(epochs: int, logger_factory: Callable[[], Any]) -> Callable[[], Any]:
    import warnings

    warnings.filterwarnings("ignore")
    import lightning as L
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.set_num_threads(1)

    class Net(L.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

        def training_step(self, batch: Any, i: int) -> Any:
            x, y = batch
            loss = nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.Adam(self.parameters(), lr=0.01)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 4, generator=g)
    loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)

    def fit() -> None:
        trainer = L.Trainer(
            max_epochs=epochs, logger=logger_factory(), log_every_n_steps=1,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            accelerator="cpu", devices=1,
        )  # fmt: skip
        trainer.fit(Net(), loader)

    return fit


def _sizes(ctx: Context) -> tuple[int, int, int]:
    return ctx.size(300, 30), ctx.size(3, 1), ctx.size(5, 2)


# -- xp -------------------------------------------------------------------------------------
def _row(out: dict[str, float], key: str, plain: float, logged: float, steps: int) -> None:
    out.update({f"{key}_plain": plain, key: _relative(plain, logged)})
    out[f"{key}_per_step"] = (logged - plain) / steps
    cpu_plain, cpu_logged = _last_cpu
    if cpu_plain > 0:
        out[f"{key}_cpu"] = _relative(cpu_plain, cpu_logged)


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    os.chdir(repo)
    import xp
    from xp.integrations.lightgbm import XPCallback as LgbCallback
    from xp.integrations.lightning import XPLogger
    from xp.integrations.xgboost import XPCallback as XgbCallback

    rounds, epochs, n = _sizes(ctx)
    out: dict[str, float] = {}
    settle()
    with xp.start_run(name="xgboost"):
        plain, logged = _pair(
            xgb_train(rounds), xgb_train(rounds, lambda: [XgbCallback(log_model=False)]), n
        )
    _row(out, "xgb", plain, logged, rounds)
    with xp.start_run(name="lightgbm"):
        current: list[Any] = []
        train = lgb_train(rounds, lambda: current)

        def logged_lgb() -> None:
            current[:] = [LgbCallback(log_model=False)]
            current[0].finish(train())  # LightGBM's end of training: importances

        plain, logged = _pair(lgb_train(rounds), logged_lgb, n)
    _row(out, "lgb", plain, logged, rounds)
    with xp.start_run(name="lightning"):
        plain, logged = _pair(
            lightning_fit(epochs, lambda: False),
            lightning_fit(epochs, lambda: XPLogger(log_model=False)),
            n,
        )
        _row(out, "lightning", plain, logged, epochs * 64)
        if not ctx.quick:
            # Lightning's own logging machinery runs for any logger: a logger that does
            # nothing shows how much of the figure is Lightning's (kept in the JSON)
            base, null = _pair(
                lightning_fit(epochs, lambda: False), lightning_fit(epochs, _null), n
            )
            out["lightning_null_logger"] = null / base
    return out


def _null() -> Any:
    from lightning.pytorch.loggers import Logger

    class NullLogger(Logger):  # type: ignore[misc]
        name = "null"
        version = "0"

        def log_hyperparams(self, *args: Any, **kwargs: Any) -> None:
            pass

        def log_metrics(self, metrics: Any, step: Any = None) -> None:
            pass

    return NullLogger()


# -- MLflow's autolog -----------------------------------------------------------------------
def mlflow_side(ctx: Context) -> dict[str, float]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{ctx.workdir / 'mlflow.db'}")
    mlflow.MlflowClient().search_experiments()  # creates the store (migrations) untimed
    rounds, epochs, n = _sizes(ctx)
    out: dict[str, float] = {}
    settle()
    for key, make, flavor, steps in (
        ("xgb", lambda: xgb_train(rounds), mlflow.xgboost, rounds),
        ("lgb", lambda: lgb_train(rounds), mlflow.lightgbm, rounds),
        ("lightning", lambda: lightning_fit(epochs, lambda: False), mlflow.pytorch, epochs * 64),
    ):
        with mlflow.start_run():
            train = make()
            extra = {} if flavor is mlflow.pytorch else {"log_datasets": False}

            def with_autolog(
                train: Callable[[], Any] = train, flavor: Any = flavor, extra: Any = extra
            ) -> None:
                flavor.autolog(log_models=False, silent=True, **extra)
                try:
                    train()
                finally:
                    flavor.autolog(disable=True)

            plain, logged = _pair(train, with_autolog, n)
        _row(out, key, plain, logged, steps)
    return out


# -- W&B offline ----------------------------------------------------------------------------
def wandb_side(ctx: Context) -> dict[str, float]:
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DISABLE_GIT="true",
                      WANDB_DISABLE_CODE="true", WANDB_DIR=str(ctx.workdir))  # fmt: skip
    import wandb
    from lightning.pytorch.loggers import WandbLogger
    from wandb.integration.lightgbm import wandb_callback
    from wandb.integration.xgboost import WandbCallback

    rounds, epochs, n = _sizes(ctx)
    out: dict[str, float] = {}
    settle()

    def xgb_callbacks() -> list[Any]:
        return [WandbCallback(log_model=False, log_feature_importance=False)]

    with wandb.init(project="bench"):
        plain, logged = _pair(xgb_train(rounds), xgb_train(rounds, xgb_callbacks), n)
    _row(out, "xgb", plain, logged, rounds)
    with wandb.init(project="bench", reinit="finish_previous"):
        plain, logged = _pair(lgb_train(rounds), lgb_train(rounds, lambda: [wandb_callback()]), n)
    _row(out, "lgb", plain, logged, rounds)
    with wandb.init(project="bench", reinit="finish_previous"):
        plain, logged = _pair(
            lightning_fit(epochs, lambda: False),
            lightning_fit(epochs, lambda: WandbLogger(log_model=False)),
            n,
        )
    _row(out, "lightning", plain, logged, epochs * 64)
    return out


METRICS = (
    Metric("xgb", "XGBoost 300 rounds, time with the integration / without", "%", TARGET),
    Metric("lgb", "LightGBM 300 rounds, time with the integration / without", "%", TARGET),
    Metric("lightning", "Lightning 3 epochs, time with the integration / without", "%", TARGET),
    Metric("xgb_cpu", "XGBoost, process CPU time with / without", "%"),
    Metric("lgb_cpu", "LightGBM, process CPU time with / without", "%"),
    Metric("lightning_cpu", "Lightning, process CPU time with / without", "%"),
)
NOTES = (
    "training time with the integration / without, same process, best of 5 each, inside a run"
    " started beforehand, no model logged on any side (100 % = no overhead)",
    "CPU rows: the same best of 5 in the process's CPU time (every thread), which other"
    " processes on a busy machine hardly change; W&B's service process is not counted",
)

WORKLOAD = Workload(
    key="I1",
    title="integration overhead vs MLflow autolog (XGBoost, LightGBM, Lightning)",
    metrics=METRICS,
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=3,
    peer_repeat=1,
    order=70,
    notes=(*NOTES, "MLflow: mlflow.<framework>.autolog(log_models=False), sqlite store"),
    quick_notes=("quick: 30 rounds, 1 epoch, best of 2",),
    needs=NEEDS,
    needs_hint=HINT,
)

if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side, "mlflow": mlflow_side, "wandb": wandb_side})
