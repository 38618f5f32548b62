"""``xp import tensorboard LOGDIR``: runs from another tool's files."""

from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo


@click.group("import")
def import_() -> None:
    """Make runs from other tools' files (TensorBoard event files)."""


@import_.command()
@click.argument("logdir", type=click.Path(file_okay=False))
@click.option("-e", "--experiment", help="Experiment of the new runs (default: default).")
def tensorboard(logdir: str, experiment: str | None) -> None:
    """Turn each run folder under LOGDIR (one holding events.out.tfevents.* files) into a run.

    Scalars become metrics (steps and wall times kept, float32 values widened exactly),
    hparams params, images, histograms and text media. A folder imported before and not
    changed since is skipped, so running it again is safe. Needs the tensorboard package
    (pip install "git-xp[tensorboard]").
    """
    from xp.integrations.tensorboard import import_logdir

    repo = open_repo()
    result = import_logdir(repo, logdir=logdir, experiment=experiment)
    rows = [
        [
            r.folder,
            r.run_id or "-",
            str(r.scalars),
            str(r.params),
            str(r.media),
            r.skipped or "imported",
        ]
        for r in result.runs
    ]
    render.echo(render.table(["folder", "run", "scalars", "params", "media", "status"], rows))
    done = len(result.imported)
    render.echo(f"{done} run{'s' if done != 1 else ''} imported from {result.logdir}")
