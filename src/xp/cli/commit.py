from __future__ import annotations

import click

from xp.cli import commit_body


@click.command()
@click.option("-n", "--name", help="Run name (default: a generated one like brisk-otter).")
@click.option("-m", "--message", help="A note stored with the run and in its commit message.")
@click.option("-e", "--experiment", help="Experiment to group the run under (default: default).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A param to record (repeatable); overrides the params files.",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="KEY=VALUE",
    help="A metric to record (repeatable); overrides the metrics files.",
)
@click.option(
    "--artifact",
    "artifacts",
    multiple=True,
    type=click.Path(),
    metavar="PATH",
    help="A file or folder to store as an artifact (repeatable).",
)
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(),
    metavar="PATH",
    help="A data file or folder to record by content hash (repeatable).",
)
def commit(
    name: str | None,
    message: str | None,
    experiment: str | None,
    params: tuple[str, ...],
    metrics: tuple[str, ...],
    artifacts: tuple[str, ...],
    data: tuple[str, ...],
) -> None:
    """Record the workspace as a run: code, params/metrics files, artifacts, data versions.

    Your files, index and HEAD are left as they are; the run is a commit held by
    refs/xp/runs/<id>.
    """
    commit_body.commit(name, message, experiment, params, metrics, artifacts, data)
