"""The -p grammar, tried the way a user types it: YAML flow values, quoted strings, ranges,
and malformed input refused with its column."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import xp
from tests.helpers import git
from xp.cli import cli
from xp.errors import InvalidValueError
from xp.execution.overrides import parse


@pytest.mark.parametrize(
    ("arg", "values"),
    [
        ("lr=0.1,0.01", (0.1, 0.01)),
        ("layers=[64,128]", ([64, 128],)),
        ("layers=[64,128],[32]", ([64, 128], [32])),
        ('name="a,b",c', ("a,b", "c")),
        ("name='it''s'", ("it's",)),
        ("opt={lr: 0.1, betas: [0.9, 0.99]}", ({"lr": 0.1, "betas": [0.9, 0.99]},)),
        ("lr=range(0.1,1,0.1)", (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)),
        ("seed=range(3)".replace("3)", "0,3)"), (0, 1, 2)),
        ("lr=logspace(-4,-1,4)", (0.0001, 0.001, 0.01, 0.1)),
        ("w=linspace(0,1,5)", (0.0, 0.25, 0.5, 0.75, 1.0)),
        ("d=x\\,y", ("x,y",)),
        ("lr= 0.1 , 0.2 ", (0.1, 0.2)),
    ],
)
def test_values(arg: str, values: tuple[Any, ...]) -> None:
    assert parse([arg])[0].values == values


@pytest.mark.parametrize(
    ("arg", "column", "says"),
    [
        ("lr=0.1,", 8, "trailing comma"),
        ("lr=1,,2", 6, "extra comma"),
        ("lr=[1,2", 4, "never closed"),
        ('lr="abc', 4, "never closed"),
        ("lr=[1,2]x", 9, "unexpected 'x'"),
        ("lr=]", 4, "closes nothing"),
        ("lr=range(1)", 4, "2 or 3 numbers"),
        ("lr=range(1,0)", 4, "is empty"),
        ("lr=logspace(1,2,a)", 4, "takes numbers"),
        ("x=" + "9" * 10_000, 3, "too long"),
    ],
)
def test_malformed_values_name_the_column(arg: str, column: int, says: str) -> None:
    with pytest.raises(InvalidValueError) as err:
        parse([arg])
    message = str(err.value)
    assert f"column {column}:" in message
    assert says in message
    assert len(message) < 200  # one line, even for a 10,000-digit value


SCRIPT = """
import yaml, xp
p = yaml.safe_load(open("params.yaml"))
with xp.start_run():
    xp.log_param("lr", float(p["lr"]))  # the script casts what it reads
    xp.log_metric("score", float(p["lr"]) * 10)
"""


def _project(repo: Path) -> None:
    (repo / "train.py").write_text(SCRIPT)
    (repo / "params.yaml").write_text("lr: 0.1\n")
    (repo / ".xp").mkdir()
    (repo / ".xp" / "config.yaml").write_text("params: [params.yaml]\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "project")


def test_cli_refuses_a_trailing_comma_before_any_run(repo: Path) -> None:
    _project(repo)
    result = CliRunner().invoke(cli, ["run", "-p", "lr=0.1,", "--", sys.executable, "train.py"])
    assert result.exit_code == 1
    assert "column 8: a value is missing after the last ','" in result.stderr
    assert xp.list_runs() == []


def test_sweep_table_shows_what_the_script_recorded(repo: Path) -> None:
    _project(repo)
    result = CliRunner().invoke(
        cli, ["run", "-p", "lr='0.5',range(1,3)", "--", sys.executable, "train.py"]
    )
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:3]}
    # -p gave the text '0.5'; the script read it and recorded the number 0.5.
    assert "0.5 (-p '0.5')" in rows["1"]
    assert "(-p 1)" in rows["2"]  # 1 -> 1.0, as recorded
    assert " 1.0 " in rows["2"]
    assert sorted(xp.get_run(r.id).params["lr"] for r in xp.list_runs()) == [0.5, 1.0, 2.0]
