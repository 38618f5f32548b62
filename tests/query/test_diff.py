"""``xp diff`` and ``xp.diff``: what changed between two runs, or a run and the workspace."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import xp
import xp.cli
from tests.helpers import git
from xp.errors import InvalidValueError


def cli(*args: str) -> Result:
    return CliRunner().invoke(xp.cli.cli, list(args), env={"COLUMNS": "160"})


def one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def pair(repo: Path) -> tuple[str, str]:
    (repo / "data.csv").write_text("a,b\n1,2\n")
    (repo / "model.bin").write_bytes(b"v1")
    (repo / "gone.txt").write_text("bye")
    with xp.start_run(name="base") as a:
        xp.log_params({"lr": 0.1, "model": "cnn", "same": 1})
        for step, loss in enumerate([1.0, 0.5, 0.7]):
            xp.log_metric("loss", loss, step=step)
        xp.log_metric("acc", 0.5)
        xp.log_metric("zero", 0.0)
        xp.set_tag("team", "vision")
        xp.log_input(repo / "data.csv")
        xp.log_artifact(repo / "model.bin")
        xp.log_artifact(repo / "gone.txt")
    (repo / "train.py").write_text("print('train v2')\nprint('more')\n")
    (repo / "data.csv").write_text("a,b\n1,3\n")
    (repo / "model.bin").write_bytes(b"v2")
    (repo / "new.txt").write_text("hi")
    with xp.start_run(name="next") as b:
        xp.log_params({"lr": 0.2, "model": "cnn", "same": 1, "extra": True})
        for step, loss in enumerate([0.9, 0.3, 0.2, 0.25]):
            xp.log_metric("loss", loss, step=step)
        xp.log_metric("acc", 0.75)
        xp.log_metric("zero", 1.0)
        xp.set_tag("team", "nlp")
        xp.log_input(repo / "data.csv")
        xp.log_artifact(repo / "model.bin")
        xp.log_artifact(repo / "new.txt")
    return str(a.id), str(b.id)


def test_structured_diff_between_two_runs(pair: tuple[str, str]) -> None:
    a, b = pair
    d = xp.diff(a, b)
    assert not d.same
    params = {c.key: c for c in d.params}
    assert params["lr"].changed
    assert (params["lr"].a, params["lr"].b) == (0.1, 0.2)
    assert not params["same"].changed
    assert params["extra"].b_has
    assert not params["extra"].a_has
    metrics = {c.key: c for c in d.metrics}
    assert metrics["acc"].delta == pytest.approx(0.25)
    assert metrics["acc"].rel == pytest.approx(0.5)
    assert metrics["zero"].delta == 1.0
    assert metrics["zero"].rel is None  # no ratio from zero
    (loss,) = d.series
    assert loss.a is not None
    assert loss.b is not None
    assert (loss.a.last, loss.a.min, loss.a.max, loss.a.best, loss.a.best_step) == (
        0.7,
        0.5,
        1.0,
        0.5,
        1,
    )
    assert (loss.b.best, loss.b.best_step, loss.b.goal, loss.b.points) == (0.2, 2, "min", 4)
    assert [(t.key, t.a, t.b) for t in d.tags] == [("team", "vision", "nlp")]
    (data,) = d.inputs
    assert data.status == "changed"
    assert data.a_sha256 != data.b_sha256
    assert {f.path: f.status for f in d.artifacts} == {
        "gone.txt": "removed",
        "model.bin": "changed",
        "new.txt": "added",
    }
    code = {c.path: c for c in d.code}
    assert code["train.py"].status == "changed"
    assert (code["train.py"].added, code["train.py"].removed) == (2, 1)
    assert not any(p.startswith(".xp/") for p in code)
    assert "print('more')" in d.patch()
    assert ".xp/run" not in d.patch()


def test_cli_text_md_json_all_and_code(pair: tuple[str, str]) -> None:
    a, b = pair
    text = cli("diff", a, b)
    assert text.exit_code == 0, text.output
    out = text.stdout
    for needle in ("params", "lr", "+50.0%", "best", "0.2 @2", "team", "removed", "train.py"):
        assert needle in out, needle
    assert "same" not in out.split("metrics")[0]  # unchanged param hidden without --all
    assert "same" in cli("diff", a, b, "--all").stdout
    md = cli("diff", a, b, "--md").stdout
    assert "#### params" in md
    assert "| lr | 0.1 | 0.2 |" in md
    data = json.loads(cli("diff", a, b, "--json", "--code").stdout)
    assert data["a"]["run_id"] == a
    assert {p["key"] for p in data["params"]} == {"lr", "extra"}
    assert "print('more')" in data["patch"]
    patch = cli("diff", a, b, "--code").stdout
    assert "+print('more')" in patch


def test_default_is_latest_run_on_head_vs_workspace(pair: tuple[str, str], repo: Path) -> None:
    _a, b = pair
    (repo / "params.yaml").write_text("lr: 0.5\nmodel: cnn\n")
    (repo / "metrics.json").write_text('{"acc": 0.8}')
    d = xp.diff()
    assert d.a.run_id == b
    assert d.b.is_workspace
    assert {c.key: c.b for c in d.params if c.b_has} == {"lr": 0.5, "model": "cnn"}
    assert {c.key: c.b for c in d.metrics if c.b_has} == {"acc": 0.8}
    assert d.tags == []  # the workspace records none
    assert {c.path for c in d.code} >= {"params.yaml", "metrics.json"}
    result = cli("diff")
    assert result.exit_code == 0
    assert "workspace" in result.stdout
    assert xp.diff(b).a.run_id == b  # one argument: A vs the workspace


def test_branches_whose_tips_carry_records(pair: tuple[str, str], repo: Path) -> None:
    a, b = pair
    git(repo, "branch", "exp-a", f"refs/xp/runs/{a}")
    git(repo, "branch", "exp-b", f"refs/xp/runs/{b}")
    d = xp.diff("exp-a", "exp-b")
    assert d.a.run_id == a
    assert d.b.run_id == b
    one_line_error(cli("diff", "main", "exp-b"), "carries no run record")


def test_same_run_and_unknown_run(pair: tuple[str, str]) -> None:
    a, _b = pair
    d = xp.diff(a, a)
    assert d.same
    assert d.empty
    result = cli("diff", a, "base")
    assert result.exit_code == 0
    assert "same run" in result.stdout
    one_line_error(cli("diff", a, "no-such-run"), "no run, ref or commit 'no-such-run'")


def test_no_run_on_head_is_one_line(repo: Path) -> None:
    one_line_error(cli("diff"), "no run was recorded on HEAD")


def test_huge_nan_and_non_numeric_metrics(repo: Path) -> None:
    with xp.start_run(name="x") as a:
        xp.log_metric("big", 1e308)
        xp.log_metric("n", math.nan)
        xp.log_metric("i", 2**62)
    with xp.start_run(name="y") as b:
        xp.log_metric("big", -1e308)
        xp.log_metric("n", 1.0)
        with pytest.raises(InvalidValueError, match="64-bit"):
            xp.log_metric("i", 10**400)  # refused at the call since issue 10...
        b.state.points.append(("i", 10**400, 0, time.time()))  # ...but older xp wrote it
    d = xp.diff(str(a.id), str(b.id))
    m = {c.key: c for c in d.metrics}
    assert m["big"].delta == -math.inf
    assert m["n"].changed
    assert m["n"].delta is not None
    assert math.isnan(m["n"].delta)
    assert m["i"].delta is None  # beyond float range: shown without a change figure
    assert cli("diff", str(a.id), str(b.id)).exit_code == 0
    assert json.loads(cli("diff", str(a.id), str(b.id), "--json").stdout)["metrics"]


def test_workspace_with_non_numeric_metric_file_is_a_defined_result(repo: Path) -> None:
    with xp.start_run(name="r") as run:
        xp.log_metric("acc", 0.5)
    (repo / "metrics.json").write_text('{"acc": "high"}')
    (m,) = xp.diff(str(run.id)).metrics
    assert (m.a, m.b, m.changed, m.delta) == (0.5, "high", True, None)
    assert cli("diff", str(run.id)).exit_code == 0
