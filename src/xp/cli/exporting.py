"""``xp export tensorboard RUN... -o DIR`` / ``xp export mlflow [URI]``: runs as another
tool's files, or into its store."""

from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.cli.progress import progress_bar


@click.group("export")
def export() -> None:
    """Write runs as other tools' files or into their stores (TensorBoard, MLflow)."""


@export.command()
@click.argument("runs", nargs=-1, required=True)
@click.option(
    "-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
    help="Folder to write into (one sub-folder per run); point TensorBoard's --logdir at it.",
)  # fmt: skip
@click.option(
    "--float32",
    is_flag=True,
    help="Write classic 32-bit scalars (for readers that know no other) instead of exact"
    " 64-bit ones; values that change are counted.",
)
def tensorboard(runs: tuple[str, ...], out_dir: str, float32: bool) -> None:
    """Write RUNS as TensorBoard event files: metrics with their steps and times, params as
    hparams, images, histograms and texts. Needs the tensorboard package
    (pip install "git-xp[tensorboard]")."""
    from xp.integrations.tensorboard import export_runs

    repo = open_repo()
    result = export_runs(repo, runs=list(runs), out_dir=out_dir, float32=float32)
    rows = [
        [r.run_id, r.folder.name, str(r.scalars), str(r.media), str(r.skipped_media)]
        for r in result.runs
    ]
    render.echo(render.table(["run", "folder", "scalars", "media", "not exportable"], rows))
    rounded = sum(r.rounded for r in result.runs)
    if rounded:
        render.echo(f"xp: {rounded} values changed when written as float32", err=True)
    render.echo(f"tensorboard --logdir {result.out_dir}")


@export.command("mlflow")
@click.argument("uri", required=False)
@click.option(
    "-r", "--run", "runs", multiple=True, metavar="RUN", help="Only this run (repeat for more)."
)
@click.option(
    "-e",
    "--experiment",
    "experiments",
    multiple=True,
    metavar="NAME",
    help="Only the runs of this experiment (repeat for more).",
)
def mlflow(uri: str | None, runs: tuple[str, ...], experiments: tuple[str, ...]) -> None:
    """Copy runs into an MLflow store: URI is sqlite:///mlflow.db, ./mlruns or a tracking
    server (http://host:5000); default MLFLOW_TRACKING_URI, else ./mlflow.db.

    Needs MLflow (pip install "git-xp[mlflow]"). Each MLflow run is tagged xp.run-id and
    xp.commit: exporting again skips runs that did not change and updates continued ones.
    """
    from xp.interop.mlflow_export import export_mlflow

    repo = open_repo()
    with progress_bar("exporting", unit="runs") as bar:
        result = export_mlflow(repo, uri=uri, runs=runs, experiments=experiments, progress=bar)
    render.echo(
        f"{result.target}: {result.runs} runs: {result.exported} exported, {result.updated}"
        f" updated, {result.unchanged} unchanged; {result.artifacts} artifact files"
    )
    for problem in result.problems:
        render.echo(f"xp: warning: {problem}", err=True)
    failed = result.runs - result.exported - result.updated - result.unchanged
    if failed:
        render.echo(f"xp: error: {failed} runs could not be exported (see above)", err=True)
        raise click.exceptions.Exit(1)
