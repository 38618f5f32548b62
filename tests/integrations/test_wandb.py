"""``import xp.wandb as wandb``: W&B's quickstart and resume patterns run unchanged, and
wandb.log's step rules are W&B's (as observed with wandb 0.31 offline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xp
import xp.wandb as wandb
from xp.errors import NoActiveRunError, ParamChangedError, RunNotFoundError


@pytest.fixture(autouse=True)
def _no_wandb_run() -> Any:
    yield
    wandb.finish()


def _latest() -> Any:
    return xp.get_run(xp.list_runs()[0].id)


QUICKSTART = """
import random
import xp.wandb as wandb

run = wandb.init(
    project="my-awesome-project",
    config={"learning_rate": 0.02, "architecture": "CNN", "dataset": "CIFAR-100", "epochs": 10},
    tags=["baseline"], group="exp-1", job_type="train", notes="first try",
)
epochs = 10
offset = random.random() / 5
for epoch in range(2, epochs):
    acc = 1 - 2 ** -epoch - random.random() / epoch - offset
    loss = 2 ** -epoch + random.random() / epoch + offset
    wandb.log({"acc": acc, "loss": loss})
run.summary["best_acc"] = 0.9
wandb.finish()
"""


def test_quickstart_runs_unchanged(repo: Path) -> None:
    (repo / "quickstart.py").write_text(QUICKSTART)
    proc = subprocess.run(
        [sys.executable, "quickstart.py"], cwd=repo, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    run = _latest()
    assert (run.experiment, run.status, run.meta["message"]) == (
        "my-awesome-project",
        "finished",
        "first try",
    )
    assert run.params == {
        "learning_rate": 0.02, "architecture": "CNN", "dataset": "CIFAR-100", "epochs": 10
    }  # fmt: skip
    assert [s for s, _v, _t in run.record.series["acc"]] == list(range(8))
    assert run.tags["baseline"] == ""
    assert (run.tags["wandb.group"], run.tags["wandb.job_type"]) == ("exp-1", "train")
    assert len(run.tags["wandb.id"]) == 8
    assert run.metrics["best_acc"] == 0.9


def test_log_keeps_wandbs_step_rules(repo: Path) -> None:
    run = wandb.init(project="p")
    wandb.log({"loss": 1.0})
    wandb.log({"loss": 0.9})
    wandb.log({"loss": 0.8})
    assert run.step == 3
    wandb.log({"extra": 7}, commit=False)  # accumulates into the pending row
    wandb.log({"loss": 0.7})  # row 3: extra and loss
    wandb.log({"loss": 0.6}, step=10)  # explicit step: commit defaults to False
    wandb.log({"acc": 0.5}, step=10)  # same row
    wandb.log({"loss": 0.4}, step=5)  # smaller step: dropped
    wandb.log({"loss": 0.5})  # no step: lands in pending row 10 and commits it
    assert run.step == 11
    wandb.log({"nested": {"a": 1, "b": {"c": 2}}, "flag": True, "none": None})
    wandb.finish()
    got = _latest()
    assert [(s, v) for s, v, _t in got.record.series["loss"]] == [
        (0, 1.0), (1, 0.9), (2, 0.8), (3, 0.7), (10, 0.5)
    ]  # fmt: skip
    assert got.record.series.get("extra") or got.metrics["extra"] == 7
    assert [(s, v) for s, v, _t in got.record.series["acc"]] == [(10, 0.5)]
    assert (got.metrics["nested/a"], got.metrics["nested/b/c"], got.metrics["flag"]) == (1, 2, 1)


def test_config_summary_media_and_finish(repo: Path) -> None:
    import argparse

    run = wandb.init(config=argparse.Namespace(lr=0.1, opt={"name": "adam"}), name="m")
    assert wandb.run is run
    assert wandb.config is run.config
    assert (wandb.config.lr, wandb.config["opt"], wandb.config.get("x", 3)) == (
        0.1,
        {"name": "adam"},
        3,
    )
    wandb.config.batch = 32
    wandb.config.setdefaults({"batch": 64, "seed": 1})
    with pytest.raises(ParamChangedError, match="allow_val_change"):
        wandb.config.update({"lr": 0.2})
    wandb.config.update({"lr": 0.2}, allow_val_change=True)
    table = wandb.Table(columns=["a", "b"])
    table.add_data(1, "x")
    wandb.log(
        {
            "img": wandb.Image(np.zeros((2, 2, 3), dtype=np.uint8), caption="c"),
            "imgs": [wandb.Image(np.ones((2, 2))), wandb.Image(np.zeros((2, 2)))],
            "table": table,
            "hist": wandb.Histogram([1, 2, 2, 3], num_bins=3),
            "text": "hello",
            "acc": 0.5,
        }
    )
    run.summary["acc"] = 0.9  # the value you set wins until the key is logged again
    assert run.summary["acc"] == 0.9
    run.define_metric("acc", summary="max")
    wandb.log({"acc": 0.7})
    assert run.summary["acc"] == 0.7
    run.summary["best"] = 0.99
    wandb.finish(exit_code=2)
    assert wandb.run is None
    with pytest.raises(NoActiveRunError):
        wandb.log({"x": 1})
    with pytest.raises(NoActiveRunError):
        wandb.config.update({"x": 1})
    got = _latest()
    assert (got.status, got.meta["exit_code"]) == ("failed", 2)
    assert got.params == {"lr": 0.2, "opt.name": "adam", "batch": 32, "seed": 1}
    assert any("'lr' changed from 0.1 to 0.2" in w for w in got.meta["warnings"])
    kinds = {(e.key, e.kind) for e in got.record.media}
    assert kinds == {
        ("img", "image"), ("imgs/0", "image"), ("imgs/1", "image"), ("table", "table"),
        ("hist", "histogram"), ("text", "text"),
    }  # fmt: skip
    assert list(xp.load_table(got, "table")["b"]) == ["x"]
    assert got.metrics["best"] == 0.99
    import json

    summary = json.loads(xp.read_artifact(got, "wandb-summary.json"))
    assert summary == {"acc": {"max": 0.7}, "best": 0.99}


def test_a_second_init_returns_the_active_run_unless_reinit(repo: Path) -> None:
    first = wandb.init(project="p")
    assert wandb.init(project="p") is first
    second = wandb.init(project="p", reinit=True)
    assert second is not first
    assert xp.get_run(xp.list_runs()[0].id).status == "finished"


def test_disabled_mode_records_nothing(repo: Path) -> None:
    with wandb.init(mode="disabled", config={"a": 1}) as run:
        wandb.log({"x": 1})
        assert wandb.config.a == 1
        run.name = "ignored"
    assert xp.list_runs() == []


RESUME = """
import os, sys
import xp.wandb as wandb

if os.path.exists("run_id.txt"):
    run_id = open("run_id.txt").read()
else:
    run_id = wandb.util.generate_id()
    open("run_id.txt", "w").write(run_id)
run = wandb.init(project="resumable", id=run_id, resume="allow", config={"lr": 0.1})
start = run.step
for step in range(start, 6):
    wandb.log({"loss": 1 / (step + 1)})
    if step == 2 and not run.resumed:
        raise RuntimeError("preempted")
wandb.finish()
"""


def test_resume_pattern_runs_unchanged(repo: Path) -> None:
    (repo / "train.py").write_text(RESUME)
    first = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True, text=True)
    assert first.returncode == 1
    second = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    new, old = (xp.get_run(r.id) for r in xp.list_runs())
    assert old.status == "failed"
    assert [s for s, _v, _t in old.record.series["loss"]] == [0, 1, 2]
    assert new.tags["xp.resumes"] == old.id
    assert new.tags["wandb.id"] == old.tags["wandb.id"] == (repo / "run_id.txt").read_text()
    assert [s for s, _v, _t in new.record.series["loss"]] == [3, 4, 5]
    assert new.params == {"lr": 0.1}
    assert (new.name, new.experiment) == (old.name, "resumable")


def test_resume_must_and_never(repo: Path) -> None:
    with pytest.raises(RunNotFoundError, match="no run has W&B id"):
        wandb.init(id="nosuchid", resume="must")
    wandb.init(id="abc12345")
    wandb.finish()
    with pytest.raises(xp.XPError, match="resume='never'"):
        wandb.init(id="abc12345", resume="never")
    run = wandb.init(resume="auto")  # nothing crashed: a new run
    assert not run.resumed


def test_inside_an_xp_run(repo: Path) -> None:
    with xp.start_run(name="outer") as outer:
        run = wandb.init(config={"a": 1})
        wandb.log({"m": 1})
        wandb.finish()
        assert outer.status == "running"  # W&B code never ends a run it did not start
        assert run.xp_run is outer.run
    assert xp.get_run(outer.id).metrics == {"m": 1}


def test_watch_logs_gradient_histograms(repo: Path) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(3, 1)
    wandb.init()
    wandb.watch(model, log="all", log_freq=1)
    model(torch.ones(2, 3)).sum().backward()
    wandb.log({"loss": 1.0})
    wandb.finish()
    keys = {e.key for e in _latest().record.media}
    assert keys == {"parameters/weight", "parameters/bias", "gradients/weight", "gradients/bias"}


def test_artifacts_and_save(repo: Path) -> None:
    (repo / "out").mkdir()
    (repo / "out" / "model.pt").write_bytes(b"w")
    wandb.init()
    artifact = wandb.Artifact("model", type="model", metadata={"acc": 0.9})
    artifact.add_file(str(repo / "out" / "model.pt"))
    wandb.log_artifact(artifact)
    wandb.save(str(repo / "out" / "*.pt"))
    wandb.finish()
    paths = {a.path for a in _latest().artifacts}
    assert paths == {"model/model.pt", "model.artifact.json", "model.pt"}


def test_config_and_summary_read_like_dicts(repo: Path) -> None:
    (repo / "config-defaults.yaml").write_text("lr:\n  value: 0.1\nbatch: 8\n")
    run = wandb.init(config="config-defaults.yaml", config_exclude_keys=["batch"])
    assert dict(run.config.items()) == {"lr": 0.1}
    assert (list(run.config), len(run.config), "lr" in run.config) == (["lr"], 1, True)
    assert list(run.config.keys()) == ["lr"]
    assert list(run.config.values()) == [0.1]
    assert repr(run.config) == "{'lr': 0.1}"
    with pytest.raises(AttributeError):
        run.config.nope  # noqa: B018
    wandb.log({"loss": 0.5})
    run.summary.update({"extra": "text"})
    assert run.summary.keys() == ["extra", "loss"]
    assert run.summary.items() == [("extra", "text"), ("loss", 0.5)]
    assert (run.summary.loss, run.summary.get("nope", 1)) == (0.5, 1)
    with pytest.raises(AttributeError):
        run.summary.nope  # noqa: B018
    assert run.dir
    assert run.url is None
    assert run.project is None
    with pytest.raises(xp.XPError, match="takes a dict"):
        wandb.log([1, 2])  # type: ignore[arg-type]
    with pytest.raises(xp.XPError, match="step must be an integer"):
        wandb.log({"a": 1}, step="x")  # type: ignore[arg-type]
    wandb.log({"obj": object(), "html": wandb.Html("<b>hi</b>")})  # an object: left out
    run.define_metric("loss", summary="min")
    run.define_metric("loss2", summary="mean")
    wandb.log({"loss2": 1.0})
    wandb.log({"loss2": 3.0})
    wandb.finish()
    with pytest.raises(NoActiveRunError, match="finished"):
        run.log({"a": 1})
    import json

    got = _latest()
    assert json.loads(xp.read_artifact(got, "wandb-summary.json")) == {
        "extra": "text", "loss": {"min": 0.5}, "loss2": {"mean": 2.0}
    }  # fmt: skip
    assert "obj" not in got.metrics
    assert xp.read_artifact(got, "media/html/1.txt") == b"<b>hi</b>"


def test_tables_from_frames_and_columns(repo: Path) -> None:
    import pandas as pd

    table = wandb.Table(dataframe=pd.DataFrame({"a": [1, 2]}))
    table.add_column("b", ["x", "y"])
    with pytest.raises(xp.XPError, match="2 columns"):
        table.add_data(1)
    with pytest.raises(xp.XPError, match="3 values for 2 rows"):
        table.add_column("c", [1, 2, 3])
    empty = wandb.Table(columns=["n"])
    empty.add_column("m", [5])
    assert empty.get_dataframe().to_dict("list") == {"n": [None], "m": [5]}
    assert table.get_dataframe().to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}
    with pytest.raises(xp.XPError):
        wandb.Histogram()
    with pytest.raises(NoActiveRunError):
        wandb.config.lr  # noqa: B018
    with pytest.raises(xp.XPError, match="dict or argparse"):
        wandb.init(config=42)


def test_resume_auto_continues_the_last_crashed_run(repo: Path) -> None:
    run = wandb.init(project="p", config={"a": {"b": 1}, "a.c": 2})
    wandb.log({"loss": 1.0})
    run.finish(exit_code=1)  # a failed run of project p
    again = wandb.init(project="p", resume="auto")
    assert again.resumed
    assert again.config.as_dict() == {"a": {"b": 1, "c": 2}}
    assert again.step == 1
    wandb.finish()
    with pytest.raises(xp.XPError, match="resume must be"):
        wandb.init(resume="sometimes")
    with pytest.raises(xp.XPError, match="needs the id"):
        wandb.init(resume="must")


def test_log_artifact_of_a_path_and_save_with_a_base(repo: Path) -> None:
    (repo / "out" / "sub").mkdir(parents=True)
    (repo / "out" / "sub" / "w.bin").write_bytes(b"w")
    wandb.init()
    wandb.log_artifact(str(repo / "out"), name="outputs", type="dataset")
    wandb.save(str(repo / "out" / "sub" / "*.bin"), base_path=str(repo / "out"))
    wandb.define_metric("x", step_metric="epoch")
    assert wandb.login()
    wandb.finish()
    paths = {a.path for a in _latest().artifacts}
    assert paths == {"outputs/sub/w.bin", "sub/w.bin"}
