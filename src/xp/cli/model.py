from __future__ import annotations

import time

import click

from xp.cli import model_production, render
from xp.cli.common import open_repo

PUSH_HELP = "Push the new tag to this git remote (a tag the remote has already is a conflict)."


@click.group()
def model() -> None:
    """A model registry in git tags (GTO's format: name@v1.2.0, name#stage#N), and what the
    deployed versions do in production: status, rollback, observe, import, perf, check, serve.

    Tags travel with `git push origin <tag>` or `git push --tags`; GTO reads them too.
    Monitoring points travel with plain git push/fetch once `xp init` set the refspecs.
    """


def _push_hint(tag: str, pushed: str | None) -> str:
    return f"pushed to {pushed}" if pushed else f"share it: git push origin {tag}"


@model.command()
@click.argument("name")
@click.argument("run")
@click.option(
    "--artifact",
    "artifacts",
    multiple=True,
    metavar="PATH",
    help="The run's artifact file or folder that is the model (repeatable; default: all but"
    " the xp run log).",
)
@click.option("--version", help="Version like v1.2.0 (default: the latest plus one patch).")
@click.option("-m", "--message", help="A note stored in the tag.")
@click.option("--push", metavar="REMOTE", help=PUSH_HELP)
def register(
    name: str,
    run: str,
    artifacts: tuple[str, ...],
    version: str | None,
    message: str | None,
    push: str | None,
) -> None:
    """Register RUN's model artifact as a new version of NAME (tag NAME@vX.Y.Z)."""
    from xp.sharing.registry import register as do_register

    repo = open_repo()
    result = do_register(
        repo, run=run, name=name, version=version, artifacts=artifacts, message=message, push=push
    )
    render.echo(
        f"registered {result.name}@{result.version}: run {result.run_id}"
        f" ({', '.join(result.artifacts)}); tag {result.tag}; {_push_hint(result.tag, push)}"
    )


@model.command()
@click.argument("name")
@click.argument("version")
@click.option("--stage", required=True, help="Stage name, e.g. staging or production.")
@click.option("--push", metavar="REMOTE", help=PUSH_HELP)
def assign(name: str, version: str, stage: str, push: str | None) -> None:
    """Put NAME's VERSION in STAGE (tag NAME#STAGE#N); the version there before leaves it."""
    from xp.sharing.registry import assign as do_assign

    repo = open_repo()
    result = do_assign(repo, name=name, version=version, stage=stage, push=push)
    render.echo(
        f"{result.name}@{result.version} is now in {stage}; tag {result.tag};"
        f" {_push_hint(result.tag, push)}"
    )


@model.command()
@click.argument("name")
@click.option("--stage", required=True, help="The stage to empty.")
@click.option("--push", metavar="REMOTE", help=PUSH_HELP)
def unassign(name: str, stage: str, push: str | None) -> None:
    """Take STAGE away from the version of NAME that holds it (tag NAME#STAGE!#N)."""
    from xp.sharing.registry import unassign as do_unassign

    repo = open_repo()
    result = do_unassign(repo, name=name, stage=stage, push=push)
    render.echo(f"{result.name}@{result.version} left {stage}; tag {result.tag}")


@model.command()
@click.argument("name")
@click.argument("version")
@click.option("--push", metavar="REMOTE", help=PUSH_HELP)
def deregister(name: str, version: str, push: str | None) -> None:
    """Withdraw NAME's VERSION (tag NAME@VERSION!); its stages go with it."""
    from xp.sharing.registry import deregister as do_deregister

    repo = open_repo()
    result = do_deregister(repo, name=name, version=version, push=push)
    render.echo(f"deregistered {result.name}@{result.version}; tag {result.tag}")


def _metrics(repo: object, commit: str, n: int = 3) -> str:
    from xp.query.resolve import read_record

    record = read_record(repo, commit)  # type: ignore[arg-type]
    if record is None:
        return ""
    return " ".join(f"{k}={render.number(v, 4)}" for k, v in sorted(record.metrics.items())[:n])


@model.command()
@click.argument("name", required=False)
def show(name: str | None) -> None:
    """The registry: each model's latest version, the version in each stage, its run and
    key metrics; with NAME, every version of that model."""
    from xp.sharing.registry import show as do_show

    repo = open_repo()
    models = do_show(repo, name=name)
    if not models:
        render.echo("no models registered yet; register one with `xp model register NAME RUN`")
        return
    if name is None:
        stages = sorted({s for m in models for s in m.stages})
        rows = [["name", "latest", *(f"#{s}" for s in stages), "run", "metrics"]]
        for m in models:
            latest = m.latest
            rows.append(
                [
                    m.name,
                    latest.version if latest else "-",
                    *(m.stages.get(s, "-") for s in stages),
                    (latest.run_id or latest.commit[:12]) if latest else "-",
                    _metrics(repo, latest.commit) if latest else "",
                ]
            )
        render.echo(render.table(rows[0], rows[1:]))
        return
    m = models[0]
    rows = [["version", "stages", "registered", "run", "artifacts", "metrics"]]
    for v in sorted(m.versions.values(), key=lambda v: v.time, reverse=True):
        rows.append(
            [
                v.version + ("" if v.active else " (deregistered)"),
                ",".join(sorted(v.stages)) or "-",
                time.strftime("%Y-%m-%d %H:%M", time.localtime(v.time)),
                v.run_id or v.commit[:12],
                ",".join(v.artifacts) or "-",
                _metrics(repo, v.commit),
            ]
        )
    render.echo(render.table(rows[0], rows[1:]))


@model.command()
@click.argument("spec", metavar="NAME@STAGE|NAME@VERSION")
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write the model's files into.",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist with other content.")
def get(spec: str, out_dir: str, force: bool) -> None:
    """Write the files of a registered model version (by stage, version or 'latest')."""
    from xp.sharing.registry import get as do_get

    repo = open_repo()
    version, written = do_get(repo, spec=spec, out_dir=out_dir, force=force)
    render.echo(
        f"{version.name}@{version.version} (run {version.run_id or version.commit[:12]}):"
        f" {len(written)} file(s) in {out_dir}"
    )
    for dest in written:
        render.echo(f"  {dest}")


for _command in (
    model_production.status,
    model_production.rollback,
    model_production.observe,
    model_production.import_,
    model_production.perf,
    model_production.check,
    model_production.serve,
):
    model.add_command(_command)
