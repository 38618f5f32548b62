"""``xp plot`` and ``xp.plot``: the overlay as PNG, SVG or PDF, the same bytes for the same runs,
the UI's colours in the order given, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib.colors
import pytest

import xp
from tests.helpers import xp_main
from tests.ui.project import Project
from xp.errors import InvalidValueError, RunNotFoundError
from xp.ui.plot import PALETTE


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def run_xp(project: Project, *args: str, cwd: Path | None = None) -> Done:
    """``xp ARGS`` through the real entry point, in this process."""
    return Done(*xp_main(*args, cwd=cwd or project.root))


def test_a_png_and_an_svg_of_three_runs(ui_project: Project, tmp_path: Path) -> None:
    png = tmp_path / "loss.png"
    done = run_xp(ui_project, "plot", "alpha", "beta", "gamma", "--metric", "loss", "-o", str(png))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(png)
    assert png.read_bytes().startswith(b"\x89PNG")
    again = tmp_path / "again.png"
    run_xp(ui_project, "plot", "alpha", "beta", "gamma", "--metric", "loss", "-o", str(again))
    assert again.read_bytes() == png.read_bytes()
    svg = tmp_path / "acc.svg"
    args = ("plot", "big", "alpha", "-m", "acc", "--x", "relative", "--smooth", "0.9", "--log")
    assert run_xp(ui_project, *args, "-o", str(svg)).returncode == 0
    assert svg.read_text().lstrip().startswith("<?xml")
    default = run_xp(ui_project, "plot", "alpha", "-m", "loss", cwd=tmp_path / "..")
    assert default.returncode == 1  # not a repository there: one line
    inside = run_xp(ui_project, "plot", "alpha", "-m", "loss")
    assert inside.stdout.strip() == "loss.png"
    assert (ui_project.root / "loss.png").exists()
    os.unlink(ui_project.root / "loss.png")


def test_the_figure_in_python(ui_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ui_project.root)
    for key, value in ui_project.env.items():
        monkeypatch.setenv(key, value)
    fig = xp.plot(["gamma", "alpha"], "metrics.loss", smooth=0.5)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["gamma", "alpha"]
    colours = [line.get_color() for line in ax.get_lines()]
    assert matplotlib.colors.to_hex(colours[0]) == PALETTE[0]  # raw, faint
    assert matplotlib.colors.to_hex(colours[2]) == PALETTE[1]
    big = xp.plot("big", "loss", x="time")
    (line,) = big.axes[0].get_lines()
    assert len(line.get_xdata()) < 20000  # thinned to what a figure shows
    assert max(line.get_ydata()) == 100.0  # with its spike
    with pytest.raises(InvalidValueError, match="x must be one of"):
        xp.plot("alpha", "loss", x="wall")
    with pytest.raises(InvalidValueError, match="EMA weight"):
        xp.plot("alpha", "loss", smooth=1.5)
    with pytest.raises(RunNotFoundError, match="none of the runs has a metric 'nope'"):
        xp.plot("alpha", "nope")


def test_bad_input_is_one_line(ui_project: Project, tmp_path: Path) -> None:
    cases = [
        (("plot", "alpha", "-m", "loss", "-o", str(tmp_path / "x.gif")), "must end in .png"),
        (("plot", "alpha", "-m", "nope"), "has a metric 'nope'"),
        (("plot", "nope-run", "-m", "loss"), "no run, ref or commit 'nope-run'"),
    ]
    for args, message in cases:
        done = run_xp(ui_project, *args)
        assert done.returncode == 1, args
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("xp: error: ")
        assert message in line
    code = (
        "import sys; sys.modules['matplotlib'] = None; import xp.cli;"
        " sys.exit(xp.cli.main(['plot', 'alpha', '-m', 'loss']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ui_project.root,
        env=ui_project.env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip().endswith('pip install "git-xp[plot]"')
