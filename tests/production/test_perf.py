"""``xp model perf`` and production figures in ``xp diff``: training and validation figures of
each version next to its production series."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

import xp
from tests.helpers import invoke, model_version, user_error
from xp.production.perf import SeriesStats, parse_since

DAY = 86_400


def test_perf_puts_the_runs_figures_next_to_the_production_series(repo: Path) -> None:
    model_version(
        repo, "diabetes", stage="production", metrics={"accuracy": 0.93, "val_accuracy": 0.9}
    )
    model_version(repo, "diabetes", metrics={"train/accuracy": 0.99, "accuracy": 0.95})
    now = time.time()
    for day, value in enumerate((0.90, 0.88, 0.86)):  # three daily windows on v0.0.1
        xp.log_production(
            "diabetes", "production", {"accuracy": value}, window_end=now - (3 - day) * DAY
        )
    xp.assign_stage("diabetes", "v0.0.2", "production")
    xp.log_production("diabetes", "production", {"accuracy": 0.94, "latency_ms_p95": 40})

    perf = xp.model_performance("diabetes")
    rows = {(r.version, r.metric): r for r in perf.rows}
    old = rows[("v0.0.1", "accuracy")]
    assert (old.validation_key, old.validation, old.training) == ("val_accuracy", 0.9, None)
    assert old.production is not None
    assert (old.production.n, old.production.last) == (3, 0.86)
    assert old.production.mean == pytest.approx(0.88)
    assert old.production.trend_per_day == pytest.approx(-0.02)
    assert not old.deployed
    new = rows[("v0.0.2", "accuracy")]
    assert (new.training_key, new.training) == ("train/accuracy", 0.99)
    assert (new.validation_key, new.validation) == ("accuracy", 0.95)  # the plain name last
    assert new.deployed
    assert rows[("v0.0.2", "latency_ms_p95")].validation is None
    assert [r.version for r in perf.rows] == ["v0.0.2", "v0.0.2", "v0.0.1"]

    table = invoke("model", "perf", "diabetes").stdout.splitlines()
    assert table[0].split() == [
        "version", "stage", "metric", "train", "validation", "points", "last", "mean", "trend",
        "last", "window",
    ]  # fmt: skip
    assert table[3].split()[:8] == [
        "v0.0.1", "production", "accuracy", "-", "0.9", "3", "0.86", "0.88",
    ]  # fmt: skip
    assert table[3].split()[8] == "-0.02/day"
    assert table[1].startswith("v0.0.2*")
    recent = xp.model_performance("diabetes", since="36h")
    assert [(r.version, r.production.n if r.production else 0) for r in recent.rows] == [
        ("v0.0.2", 1),
        ("v0.0.2", 1),
        ("v0.0.1", 1),
    ]
    doc = json.loads(invoke("model", "perf", "diabetes", "--format", "json", "--series").stdout)
    assert doc["model"] == "diabetes"
    first = next(r for r in doc["rows"] if r["version"] == "v0.0.1")
    assert [p["value"] for p in first["series"]] == [0.9, 0.88, 0.86]
    md = invoke("model", "perf", "diabetes", "--stage", "production", "--format", "md").stdout
    assert md.startswith("| version | stage | metric |")


def test_perf_lists_the_deployed_version_without_points_and_refuses_bad_input(
    repo: Path,
) -> None:
    model_version(repo, "diabetes", stage="production", metrics={"accuracy": 0.9})
    rows = xp.model_performance("diabetes").rows
    assert [(r.version, r.stage, r.metric, r.production) for r in rows] == [
        ("v0.0.1", "production", None, None)
    ]
    assert "(no points)" in invoke("model", "perf", "diabetes").stdout
    assert "no model 'nope'" in user_error(invoke("model", "perf", "nope"))
    line = user_error(invoke("model", "perf", "diabetes", "--since", "a while"))
    assert "--since 'a while': write a duration like 30d" in line


def test_series_stats_and_since() -> None:
    stats = SeriesStats.of([(2 * 86_400_000, 3.0), (0, 1.0), (86_400_000, math.nan)])
    assert (stats.n, stats.last, stats.mean, stats.min, stats.max) == (3, 3.0, 2.0, 1.0, 3.0)
    assert stats.trend_per_day == pytest.approx(1.0)
    assert SeriesStats.of([(5, 1.0)]).trend_per_day is None
    assert parse_since("2d", now_ms=10 * 86_400_000) == 8 * 86_400_000
    assert parse_since("90m", now_ms=10_000_000) == 10_000_000 - 5_400_000
    assert parse_since("1970-01-02T00:00:00Z") == 86_400_000
    assert parse_since(None) is None


def test_diff_between_two_versions_shows_their_production_figures(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # every column; a narrow terminal drops counts first
    model_version(repo, "diabetes", stage="production", metrics={"accuracy": 0.9})
    xp.log_production("diabetes", "production", {"accuracy": 0.85})
    xp.log_production("diabetes", "production", {"accuracy": 0.87})
    model_version(repo, "diabetes", stage="production", metrics={"accuracy": 0.93})
    xp.log_production("diabetes", "production", {"accuracy": 0.91})

    out = invoke("diff", "diabetes@v0.0.1", "diabetes@production")
    assert out.exit_code == 0, out.stderr
    text = out.stdout
    assert "A  " in text
    assert "production (A = diabetes@v0.0.1, B = diabetes@v0.0.2)" in text
    row = next(line for line in text.splitlines() if line.startswith("production  accuracy"))
    assert row.split() == ["production", "accuracy", "2", "0.87", "0.86", "1", "0.91", "0.91",
                           "+0.05"]  # fmt: skip
    monkeypatch.setenv("COLUMNS", "60")
    narrow = invoke("diff", "diabetes@v0.0.1", "diabetes@production").stdout.splitlines()
    head = narrow[narrow.index("production (A = diabetes@v0.0.1, B = diabetes@v0.0.2)") + 1]
    assert "A points" not in head
    assert head.endswith("A mean  B last  B mean  mean change")
    data = json.loads(invoke("diff", "diabetes@v0.0.1", "diabetes@v0.0.2", "--json").stdout)
    assert data["a"]["model_version"] == "diabetes@v0.0.1"
    assert data["a"]["label"] == "diabetes@v0.0.1"
    assert data["production"][0]["a"]["n"] == 2
    assert data["production"][0]["delta_mean"] == pytest.approx(0.05)
    md = invoke("diff", "diabetes@v0.0.1", "diabetes@latest", "--md").stdout
    assert "#### production (A = diabetes@v0.0.1, B = diabetes@v0.0.2)" in md
    # the versions' runs, named by run id, are recognised as versions too
    run_a = xp.show_models("diabetes")[0].versions["v0.0.1"].run_id
    assert run_a is not None
    assert "production (A = diabetes@v0.0.1" in invoke("diff", run_a, "diabetes@v0.0.2").stdout
