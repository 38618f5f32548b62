from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.tracking.commit_workspace import commit_workspace, parse_assignments


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
    repo = open_repo()
    result = commit_workspace(
        repo,
        name=name,
        message=message,
        experiment=experiment,
        params=parse_assignments(params, "param"),
        metrics=parse_assignments(metrics, "metric"),
        artifacts=artifacts,
        data=data,
    )
    run = result.run
    shown = " ".join(f"{k}={render.number(v, 4)}" for k, v in sorted(result.metrics.items())[:6])
    render.echo(f"{run.id}  {run.name}  {len(result.params)} params  {shown}".rstrip())
    for warning in run.header.warnings:
        render.echo(f"warning: {warning}", err=True)
    render.echo(f"ref {run.ref}  (git show {run.ref} --stat)")
