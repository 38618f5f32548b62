"""``import xp.comet as comet_ml``: Comet's Experiment pattern and its resume pattern."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xp
import xp.comet as comet_ml
from xp.errors import RunNotFoundError


def _runs() -> list[Any]:
    return [xp.get_run(r.id) for r in xp.list_runs()]


QUICKSTART = """
from xp.comet import Experiment

experiment = Experiment(api_key="not-needed", project_name="general", workspace="team")
experiment.set_name("lr-0.01")
experiment.add_tags(["baseline", "cnn"])
experiment.log_parameters({"batch_size": 64, "opt": {"name": "adam", "lr": 0.01}})
experiment.log_parameters({"dropout": 0.1}, prefix="model")
for epoch in range(2):
    for step in range(epoch * 3, epoch * 3 + 3):
        experiment.log_metric("loss", 1 / (step + 1), step=step, epoch=epoch)
    experiment.log_metrics({"acc": 0.5 + epoch / 10}, prefix="val", step=step)
with open("model.bin", "wb") as fh:
    fh.write(b"weights")
experiment.log_model("my-model", "model.bin")
experiment.log_asset("model.bin", file_name="copy.bin")
experiment.log_other("seed", 42)
print(experiment.get_key())
experiment.end()
"""


def test_quickstart_runs_unchanged(repo: Path) -> None:
    (repo / "quickstart.py").write_text(QUICKSTART)
    proc = subprocess.run(
        [sys.executable, "quickstart.py"], cwd=repo, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs()
    assert proc.stdout.strip() == run.id
    assert (run.name, run.experiment, run.status) == ("lr-0.01", "general", "finished")
    assert run.params == {
        "batch_size": 64, "opt.name": "adam", "opt.lr": 0.01, "model_dropout": 0.1
    }  # fmt: skip
    assert [s for s, _v, _t in run.record.series["loss"]] == list(range(6))
    assert [(s, v) for s, v, _t in run.record.series["val_acc"]] == [(2, 0.5), (5, 0.6)]
    assert [(s, v) for s, v, _t in run.record.series["epoch"]] == [
        (0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 1)
    ]  # fmt: skip
    assert {a.path for a in run.artifacts} == {"models/my-model/model.bin", "copy.bin"}
    assert run.tags == {
        "baseline": "", "cnn": "", "seed": "42", "comet.key": run.id, "comet.workspace": "team"
    }  # fmt: skip


def test_media_offline_and_current_step(repo: Path) -> None:
    with comet_ml.OfflineExperiment(project_name="p", offline_directory="/nowhere") as exp:
        exp.set_step(7)
        exp.log_metric("m", 1.0)  # at the current step
        exp.log_image(np.zeros((4, 4, 3), dtype=np.uint8), name="sample.png")
        exp.log_image(np.zeros((3, 2, 2)), name="chw", image_channels="first", step=8)
        exp.log_histogram_3d([1.0, 2.0, 2.5], name="w")
        exp.log_table("preds.csv", [[1, "a"], [2, "b"]], headers=["n", "s"])
        exp.log_text("sample text")
        exp.log_code(code="print(1)", code_name="snippet.py")
    (run,) = _runs()
    assert run.record.series.get("m") == [(7, 1.0, run.record.series["m"][0][2])]
    media = {(e.key, e.kind, e.step) for e in run.record.media}
    assert media == {
        ("sample", "image", 7), ("chw", "image", 8), ("w", "histogram", 8),
        ("preds.csv", "table", None), ("text", "text", 8),
    }  # fmt: skip
    assert list(xp.load_table(run, "preds.csv")["s"]) == ["a", "b"]
    assert xp.read_artifact(run, "code/snippet.py") == b"print(1)"


def test_existing_experiment_continues(repo: Path) -> None:
    exp = comet_ml.Experiment(project_name="p")
    exp.log_parameter("lr", 0.1)
    exp.log_metric("loss", 1.0, step=0)
    exp.log_metric("loss", 0.5, step=1)
    key = exp.get_key()
    exp.end()
    again = comet_ml.ExistingExperiment(api_key="k", previous_experiment=key)
    assert again.get_key() == key
    again.log_metric("loss", 0.25)
    again.end()
    third = comet_ml.start(experiment_key=key, mode="get")  # chains through the key
    third.end()
    new, mid, old = _runs()
    assert mid.tags["xp.resumes"] == old.id
    assert new.tags["xp.resumes"] == mid.id
    assert [(s, v) for s, v, _t in mid.record.series.get("loss", [])] or mid.metrics == {
        "loss": 0.25
    }
    assert mid.params == {"lr": 0.1}
    with pytest.raises(RunNotFoundError):
        comet_ml.start(experiment_key="nosuchkey", mode="get")
    created = comet_ml.start(experiment_key="nosuchkey", mode="get_or_create")
    created.end()


def test_disabled_records_nothing(repo: Path) -> None:
    exp = comet_ml.Experiment(disabled=True)
    exp.log_metric("m", 1)
    exp.log_parameters({"a": 1})
    exp.end()
    assert xp.list_runs() == []


def test_every_call_on_a_disabled_experiment_is_harmless(repo: Path) -> None:
    exp = comet_ml.Experiment(disabled=True)
    for call, args in [
        (exp.log_other, ("k", 1)), (exp.log_parameter, ("k", 1)), (exp.log_metric, ("m", 1)),
        (exp.log_metrics, ({"m": 1},)), (exp.log_asset, ("nope",)),
        (exp.log_asset_folder, ("nope",)), (exp.log_model, ("m", "nope")),
        (exp.log_code, ()), (exp.log_image, (None,)), (exp.log_figure, ()),
        (exp.log_table, ("t.csv",)), (exp.log_histogram_3d, ([1],)), (exp.log_text, ("t",)),
        (exp.log_html, ("<b>",)), (exp.log_dataset_hash, ("x",)), (exp.set_name, ("n",)),
        (exp.add_tag, ("t",)),
    ]:  # fmt: skip
        call(*args)
    assert (exp.get_key(), exp.get_name(), exp.get_tags()) == ("", None, [])
    exp.end()
    assert xp.list_runs() == []


def test_assets_code_tables_and_properties(repo: Path) -> None:
    import io

    import pandas as pd

    (repo / "assets" / "deep").mkdir(parents=True)
    (repo / "assets" / "a.txt").write_text("a")
    (repo / "assets" / "deep" / "b.txt").write_text("b")
    (repo / "data.csv").write_text("x\n1\n")
    exp = comet_ml.Experiment(project_name="p")
    exp.set_epoch(3)
    assert (exp.curr_epoch, exp.url, exp.id, exp.name) == (3, None, exp.get_key(), exp.get_name())
    exp.log_asset(io.BytesIO(b"raw"), file_name="raw.bin")
    exp.log_asset(b"text body", file_name="body.txt")
    with pytest.raises(xp.XPError, match="path, bytes or a file"):
        exp.log_asset(42)
    exp.log_asset_folder(str(repo / "assets"))
    exp.log_asset_folder(str(repo / "assets"), recursive=True)
    exp.log_code(file_name=str(repo / "data.csv"))
    exp.log_table("frame.tsv", pd.DataFrame({"a": [1]}))
    exp.log_table("rows.json", [[1, 2]], headers=["a", "b"])
    exp.log_table(str(repo / "data.csv"))
    with pytest.raises(xp.XPError, match=r"writes \.csv"):
        exp.log_table("t.xlsx", [[1]])
    exp.log_parameter("opt", {"lr": 0.1})
    with pytest.raises(xp.XPError, match="must be a number"):
        exp.log_metric("m", "high")
    exp.log_html("<b>hi</b>")
    exp.log_dataset_hash(str(repo / "data.csv"))
    exp.add_tag("t")
    assert exp.get_tags() == ["t"]
    exp.end()
    exp.end()  # twice is fine
    (run,) = _runs()
    assert {a.path for a in run.artifacts} >= {
        "raw.bin", "body.txt", "assets/a.txt", "assets/deep/b.txt", "code/data.csv",
        "frame.tsv", "rows.json", "data.csv",
    }  # fmt: skip
    assert run.params == {"opt.lr": 0.1}
    assert [i.path for i in run.inputs] == ["data.csv"]
    assert xp.read_artifact(run, "rows.json") == b'[{"a":1,"b":2}]'
    with pytest.raises(xp.XPError, match="needs previous_experiment"):
        comet_ml.ExistingExperiment()
    assert comet_ml.login()
    assert comet_ml.init() is None


@pytest.mark.framework
def test_log_figure_defaults_to_the_current_matplotlib_figure(repo: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.plot([1, 2])
    with comet_ml.Experiment() as exp:
        exp.log_figure("curve.png", step=1)
    plt.close("all")
    assert [(e.key, e.step) for e in _runs()[0].record.media] == [("curve", 1)]
