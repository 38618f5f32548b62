"""What every integration shares, without any framework: key and number conversion, run
ownership, the import hook behind ``xp.autolog()``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xp
from xp.integrations.common import (
    Session,
    metric_key,
    metrics_of,
    number,
    param_value,
    params_of,
    when_imported,
)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("valid-ndcg@3", "valid-ndcg_at_3"),
        ("Loss/train", "Loss/train"),
        ("a|b", "a_b"),
        ("//a//b/", "a/b"),
        ("../x", "__/x"),
        ("", "_"),
    ],
)
def test_metric_key_makes_any_name_valid(name: str, key: str) -> None:
    assert metric_key(name) == key
    from xp import format as fmt

    fmt.validate_key(metric_key(name))


def test_numbers_come_out_plain() -> None:
    assert type(number(np.float64(0.5))) is float
    assert type(number(np.int32(3))) is int
    assert number(np.array([2.5])) == 2.5
    assert number(np.array([1, 2])) is None
    assert number(True) is None
    assert number("1") is None
    assert metrics_of({"a": np.float32(0.25), "b": "text", "c": None}) == {"a": 0.25}
    assert param_value(np.int64(4)) == 4
    assert param_value(object) == str(object)
    assert params_of({"opt": {"lr": 0.1, "betas": (0.9, 0.99)}, "x@1": None}) == {
        "opt.lr": 0.1,
        "opt.betas": [0.9, 0.99],
        "x_at_1": None,
    }


def test_a_session_logs_into_the_active_run_and_never_ends_it(repo: Path) -> None:
    with xp.start_run() as outer:
        session = Session("test")
        session.log_metrics({"m": 1}, 0)
        session.end()
        assert outer.status == "running"
    assert xp.get_run(outer.id).metrics == {"m": 1}


def test_a_session_ends_the_run_it_started(repo: Path) -> None:
    session = Session("test", name="mine")
    session.log_params({"a": 1})
    session.log_params({"a": 2})  # a framework calling again: kept, with a warning
    run = session.run
    session.end("failed")
    got = xp.get_run(run.id)
    assert (got.name, got.status, got.params) == ("mine", "failed", {"a": 1})
    assert got.tags == {"xp.autolog": "test"}
    assert any("kept 1, not 2" in w for w in got.meta["warnings"])
    assert xp.active_run() is None


def test_a_logging_failure_is_reported_and_training_goes_on(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = Session("test")
    run = session.run
    session.call("metric", run.log_metric, "bad/../key", 1.0)
    session.call("metric", run.log_metric, "bad/../key", 1.0)  # said once
    session.end()
    assert len([r for r in caplog.records if "bad/../key" in r.message]) == 1
    assert "not a clean path" in xp.get_run(run.id).meta["warnings"][0]


def test_when_imported_runs_the_hook_after_a_later_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "xp_probe_module.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[int] = []
    when_imported("xp_probe_module", lambda m: seen.append(m.VALUE))
    assert seen == []
    import xp_probe_module  # type: ignore[import-not-found]

    assert seen == [1]
    when_imported("xp_probe_module", lambda m: seen.append(m.VALUE + 1))  # imported: at once
    assert seen == [1, 2]
    del sys.modules["xp_probe_module"], xp_probe_module


def test_a_failing_hook_does_not_break_the_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "xp_probe_two.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def hook(module: object) -> None:
        raise RuntimeError("nope")

    when_imported("xp_probe_two", hook)
    import xp_probe_two  # type: ignore[import-not-found]

    assert xp_probe_two.VALUE == 2
    assert "nope" in caplog.text
    del sys.modules["xp_probe_two"]


def test_import_xp_loads_no_framework() -> None:
    code = textwrap.dedent(
        """
        import sys, xp, xp.integrations, xp.integrations.sklearn, xp.integrations.xgboost
        import xp.integrations.lightgbm, xp.integrations.lightning, xp.integrations.keras
        import xp.integrations.optuna, xp.integrations.transformers, xp.integrations.catboost
        import xp.integrations.tensorboard, xp.wandb, xp.comet
        xp.autolog()
        heavy = ["sklearn", "xgboost", "lightgbm", "catboost", "lightning", "torch", "keras",
                 "transformers", "optuna", "tensorboard", "numpy", "pandas", "PIL",
                 "matplotlib", "psutil", "pynvml", "wandb", "comet_ml"]
        print(",".join(m for m in heavy if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
