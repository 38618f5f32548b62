"""``xp import tensorboard LOGDIR`` / ``xp import mlflow [URI]``: runs from another tool's
files or store."""

from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.cli.progress import progress_bar
from xp.config import human_size


@click.group("import")
def import_() -> None:
    """Make runs from other tools' files or stores (TensorBoard event files, MLflow)."""


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


@import_.command("mlflow")
@click.argument("uri", required=False)
@click.option(
    "-e",
    "--experiment",
    "experiments",
    multiple=True,
    metavar="NAME",
    help="Only this MLflow experiment (repeat for more).",
)
def mlflow(uri: str | None, experiments: tuple[str, ...]) -> None:
    """Copy the runs of an MLflow store: URI is ./mlruns, sqlite:///mlflow.db or a tracking
    server (http://host:5000); default MLFLOW_TRACKING_URI, ./mlflow.db or ./mlruns.

    Params, every metric point, tags, statuses, times, parent links, datasets, logged models
    and artifacts are kept. Importing again adds nothing; a run that changed in MLflow since
    (it was running) is brought up to date. The MLflow store is only read.
    """
    from xp.interop.mlflow_import import import_mlflow

    repo = open_repo()
    with progress_bar("importing", unit="runs") as bar:
        result = import_mlflow(repo, uri=uri, experiments=experiments, progress=bar)
    render.echo(
        f"{result.source}: {result.runs} runs in {len(result.experiments)} experiments:"
        f" {result.imported} imported, {result.updated} updated, {result.unchanged} unchanged;"
        f" {result.artifacts} artifact files ({human_size(result.artifact_bytes)})"
    )
    for problem in result.problems:
        render.echo(f"xp: warning: {problem}", err=True)
    failed = result.runs - result.imported - result.updated - result.unchanged
    if failed:
        render.echo(f"xp: error: {failed} runs could not be imported (see above)", err=True)
        raise click.exceptions.Exit(1)
