"""``xp plot RUN... --metric loss -o loss.png``: one metric of runs overlaid, as an image."""

from __future__ import annotations

import re
from pathlib import Path

import click

from xp.cli import render
from xp.cli.common import open_repo


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("-m", "--metric", required=True, help="The metric to plot, e.g. loss.")
@click.option(
    "--x",
    "x_axis",
    type=click.Choice(["step", "time", "relative"]),
    default="step",
    show_default=True,
    help="The x axis: step, wall-clock time, or seconds since each run started.",
)
@click.option(
    "--smooth",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    metavar="K",
    help="EMA smoothing weight from 0 to below 1, as TensorBoard's slider.",
)
@click.option("--log", "log_y", is_flag=True, help="Log scale for the metric.")
@click.option("--title", help="The figure's title [default: the metric].")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PNG, SVG or PDF file to write  [default: <metric>.png]",
)
def plot(
    runs: tuple[str, ...],
    metric: str,
    x_axis: str,
    smooth: float,
    log_y: bool,
    title: str | None,
    output: Path | None,
) -> None:
    """Plot METRIC of RUNS (ids, id prefixes or names) on one chart, in the UI's colours.

    In a notebook, xp.plot(runs, metric) returns the figure, which shows inline.
    """
    from xp.ui.plot import plot as make_plot
    from xp.ui.plot import save

    repo = open_repo()
    fig = make_plot(
        repo, runs=list(runs), metric=metric, x=x_axis, smooth=smooth, log_y=log_y, title=title
    )
    path = output or Path(re.sub(r"[^\w.-]+", "_", metric) + ".png")
    save(fig, path)
    render.echo(str(path))
