"""What the boosting integrations share, without any framework: each round logged out of the
framework's own eval history, and the best round read back from it at the end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xp
from xp.integrations.boosting import EvalHistory
from xp.integrations.common import Session


def test_each_round_logs_the_last_values_and_the_best_round_reads_back(repo: Path) -> None:
    run = xp.start_run().run
    history = EvalHistory(Session("test"))
    log: dict[str, dict[str, list[object]]] = {"train": {"rmse": []}, "valid@1": {"ndcg@3": []}}
    for step in range(4):
        log["train"]["rmse"].append(10.0 - step)
        log["valid@1"]["ndcg@3"].append(np.float64(step / 10))  # not a plain float
        if step >= 2:  # a name that appears late, with (mean, std) pairs as xgb.cv gives
            log.setdefault("test", {}).setdefault("mae", []).append((float(step), 0.5))
        history.log_round(log, step)
    assert history.at(1) == {"train-rmse": 9.0, "valid_at_1-ndcg_at_3": 0.1}
    assert history.at(3) == {
        "train-rmse": 7.0,
        "valid_at_1-ndcg_at_3": 0.3,
        "test-mae-mean": 3.0,
        "test-mae-std": 0.5,
    }
    assert history.at(4) is None
    assert history.at(-1) is None
    xp.end_run()
    series = xp.get_run(run.id).record.series
    assert [(s, v) for s, v, _t in series["train-rmse"]] == [
        (0, 10.0),
        (1, 9.0),
        (2, 8.0),
        (3, 7.0),
    ]
    assert [type(v) for _s, v, _t in series["valid_at_1-ndcg_at_3"]] == [float] * 4
    assert [(s, v) for s, v, _t in series["test-mae-mean"]] == [(2, 2.0), (3, 3.0)]


def test_a_failing_round_is_reported_once_and_the_next_rounds_go_on(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = xp.start_run().run
    xp.end_run()  # logging into an ended run fails: each round must still return
    history = EvalHistory(Session("test", run=run))
    log = {"valid": {"l2": [1.0]}}
    history.log_round(log, 0)
    log["valid"]["l2"].append(0.5)
    history.log_round(log, 1)  # the name's key is known now: the per-round path
    assert history.rounds == 2
    assert history.at(1) == {"valid-l2": 0.5}
    assert len([r for r in caplog.records if "metric 'valid-l2'" in r.message]) == 1
