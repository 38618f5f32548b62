"""Keras 3 on the PyTorch backend: XPCallback on a tiny model trained for real."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import xp

pytestmark = [
    pytest.mark.framework,
    pytest.mark.filterwarnings("ignore:.*__array__ implementation.*:DeprecationWarning"),
]
os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")


def test_fit_logs_params_epochs_batches_summary_and_model(repo: Path) -> None:
    import numpy as np

    from xp.integrations.keras import XPCallback

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    history = model.fit(
        x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0,
        callbacks=[XPCallback(log_every_n_steps=2)],
    )  # fmt: skip
    run = xp.get_run(xp.list_runs()[0].id)
    assert run.status == "finished"
    for key, values in history.history.items():
        assert [(s, v) for s, v, _t in run.record.series[key]] == list(enumerate(values))
    assert run.params["epochs"] == 3
    assert run.params["optimizer_name"] == "adam"
    assert run.params["optimizer_learning_rate"] == pytest.approx(0.01)
    assert [s for s, _v, _t in run.record.series["batch/loss"]] == [2, 4, 6, 8]
    assert b"Total params" in xp.read_artifact(run, "model_summary.txt")
    (repo / "m.keras").write_bytes(xp.read_artifact(run, "model.keras"))
    back = keras.models.load_model(repo / "m.keras")
    assert np.allclose(back.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0))
