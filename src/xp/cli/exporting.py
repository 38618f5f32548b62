"""``xp export tensorboard RUN... -o DIR``: runs as another tool's files."""

from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo


@click.group("export")
def export() -> None:
    """Write runs as other tools' files (TensorBoard event files)."""


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
