"""TensorBoard import/export through the CLI, with event files written by PyTorch's writer and
by xp: the round trip keeps every scalar exactly."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

import xp
from tests.helpers import invoke, user_error

pytestmark = pytest.mark.framework
pytest.importorskip("tensorboard")


def _runs() -> list[xp.ActiveRun]:
    return [xp.get_run(r.id) for r in xp.list_runs()]  # type: ignore[misc]


def test_round_trip_keeps_every_scalar_exactly(repo: Path, tmp_path: Path) -> None:
    """xp -> TensorBoard (64-bit) -> xp: every value, step and millisecond equal."""
    rng = random.Random(0)
    values = [rng.gauss(0, 1) for _ in range(200)] + [1e-300, -0.0, 16777217.0, math.pi, 3]
    with xp.start_run(name="src", params={"lr": 0.1, "layers": 2, "opt": "adam", "on": True}):
        for i, v in enumerate(values):
            xp.log_metric("train/loss", v, step=i * 3)
        xp.log_metric("nan", math.nan, step=1)
        xp.log_metric("nan", math.inf, step=2)
        xp.log_metric("final", 0.1)
    src = _runs()[0]
    result = invoke("export", "tensorboard", "src", "-o", str(tmp_path / "tb"))
    assert result.exit_code == 0, result.output
    result = invoke("import", "tensorboard", str(tmp_path / "tb"))
    assert result.exit_code == 0, result.output
    back = next(r for r in _runs() if r.id != src.id)
    assert back.name == "src"
    for key in ("train/loss",):
        assert back.record.series[key] == src.record.series[key]
    assert back.record.series["nan"][1] == src.record.series["nan"][1]
    assert math.isnan(back.record.series["nan"][0][1])
    assert back.metrics["final"] == 0.1
    assert back.params == {"lr": 0.1, "layers": 2.0, "opt": "adam", "on": True}
    assert back.tags["tensorboard.dtype"] == "float64"


def test_pytorch_files_import_once_and_float32_round_trips(repo: Path, tmp_path: Path) -> None:
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    import numpy as np

    logdir = tmp_path / "logs"
    writer = torch_tb.SummaryWriter(str(logdir / "exp1"))
    for i in range(5):
        writer.add_scalar("Loss/train", 1 / (i + 1), i, walltime=1_700_000_000.123 + i)
    writer.add_image("sample", np.full((3, 4, 5), 200, dtype=np.uint8), 2)
    writer.add_histogram("weights", np.arange(100.0), 1)
    writer.add_text("note", "hello", 0)
    writer.add_hparams({"lr": 0.1, "opt": "adam"}, {"hparam/acc": 0.9}, run_name="hp")
    writer.close()
    assert invoke("import", "tensorboard", str(logdir)).exit_code == 0
    again = invoke("import", "tensorboard", str(logdir))
    assert "imported before" in again.output
    (run,) = _runs()
    assert run.name == "exp1"
    series = run.record.series["Loss/train"]
    assert [v for _s, v, _t in series] == [float(np.float32(1 / (i + 1))) for i in range(5)]
    assert [t for _s, _v, t in series] == [1_700_000_000_123 + 1000 * i for i in range(5)]
    assert run.params == {"lr": 0.1, "opt": "adam"}
    assert run.metrics["hparam/acc"] == float(np.float32(0.9))
    kinds = {e.key: e.kind for e in run.record.media}
    assert kinds == {"sample": "image", "weights": "histogram", "note/text_summary": "text"}
    assert xp.read_artifact(run, "media/note/text_summary/0.txt") == b"hello"
    assert run.tags["tensorboard.dtype"] == "float32"
    # back out: float32 tags are written as float32 again, so the values read back the same
    out = tmp_path / "out"
    assert invoke("export", "tensorboard", run.id, "-o", str(out)).exit_code == 0
    assert invoke("import", "tensorboard", str(out)).exit_code == 0
    copy = next(r for r in _runs() if r.id != run.id)
    assert copy.record.series["Loss/train"] == series
    assert {e.key for e in copy.record.media} == set(kinds)


def test_float32_export_counts_what_changes(repo: Path, tmp_path: Path) -> None:
    with xp.start_run(name="r"):
        xp.log_metric("exact", 0.5, step=0)
        xp.log_metric("inexact", 0.1, step=0)
    result = invoke("export", "tensorboard", "r", "-o", str(tmp_path / "o"), "--float32")
    assert result.exit_code == 0
    assert "1 values changed" in result.stderr


def test_bad_input_is_one_line(repo: Path, tmp_path: Path) -> None:
    assert "not a folder" in user_error(invoke("import", "tensorboard", str(tmp_path / "none")))
    (tmp_path / "empty").mkdir()
    assert "no events.out.tfevents" in user_error(
        invoke("import", "tensorboard", str(tmp_path / "empty"))
    )
    assert "no run" in user_error(invoke("export", "tensorboard", "nope", "-o", str(tmp_path)))
