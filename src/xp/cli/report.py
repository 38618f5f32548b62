"""``xp report RUN... -o report.html``: the runs in one self-contained HTML file (charts,
tables, code diff, images) to attach to a pull request or send by mail."""

from __future__ import annotations

from pathlib import Path

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.config import human_size
from xp.fsutil import atomic_write


@click.command()
@click.argument("runs", nargs=-1)
@click.option(
    "-w",
    "--where",
    metavar="EXPR",
    help="Also the recorded runs this filter selects, as `xp show --where` (newest first).",
)
@click.option(
    "-s",
    "--sort",
    "sort",
    multiple=True,
    metavar="KEY",
    help="Order of the --where runs: 'metrics.acc', '-metrics.acc' (repeatable).",
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="At most this many --where runs.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write ('-' for stdout).",
)
@click.option("--title", help="The report's title [default: xp report: <run names>].")
@click.option("--no-history", is_flag=True, help="Leave out the metric's history on the branch.")
def report(
    runs: tuple[str, ...],
    where: str | None,
    sort: tuple[str, ...],
    limit: int,
    output: Path,
    title: str | None,
    no_history: bool,
) -> None:
    """Write RUNS (ids, id prefixes or names) as one HTML file: their params, metrics and
    tags side by side, metric charts, the code diff of the first two, images and text
    artifacts. It opens offline in any browser; the same runs give the same bytes.

    --where adds the recorded runs a filter selects; with neither, the newest runs.
    """
    from xp.ui.report import make_report

    repo = open_repo()
    made = make_report(
        repo,
        runs=list(runs),
        where=where,
        sort=list(sort),
        limit=limit,
        title=title,
        history=not no_history,
    )
    if str(output) == "-":
        render.echo(made.html.decode("utf-8"), nl=False, exact=True)
        return
    atomic_write(output, made.html)
    render.echo(f"{output}: {len(made.runs)} runs, {human_size(len(made.html))}")
