from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo


@click.command()
@click.argument("run")
@click.option(
    "--force",
    is_flag=True,
    help="Check out over uncommitted changes, after saving them as a run of their own.",
)
@click.option("--no-artifacts", is_flag=True, help="Bring back the code only.")
def checkout(run: str, force: bool, no_artifacts: bool) -> None:
    """Bring RUN's code, params files and artifacts into the workspace.

    Files become the run's, except the settings of .xp/config.yaml that say where artifacts
    live (remotes, default_remote, cache), which stay as they are; artifacts go back where
    they were logged from. HEAD, the
    branch and the index stay as they are, so `git diff` shows the run's changes. A
    workspace with uncommitted changes is refused unless --force, which first saves it as
    a run (xp checkout <that run> brings it back).
    """
    from xp.sharing.checkout import checkout as do_checkout

    repo = open_repo()
    result = do_checkout(repo, run=run, force=force, artifacts=not no_artifacts)
    if result.saved:
        render.echo(
            f"saved the workspace as run {result.saved}; get it back with"
            f" `xp checkout {result.saved}`",
            err=True,
        )
    render.echo(f"checked out run {result.run_id} {result.name} ({result.commit[:12]})")
    for path in result.artifacts:
        render.echo(f"  artifact {path}")
    if result.kept_settings:
        render.echo(
            f"  kept the artifact settings ({', '.join(result.kept_settings)}) of"
            " .xp/config.yaml as they were; the run's file:"
            f" git show {result.commit[:12]}:.xp/config.yaml"
        )
    if result.skipped:
        render.echo(
            f"  {len(result.skipped)} artifact(s) have no work-tree path (logged from memory);"
            f" get them with `xp get {result.run_id} -o DIR`"
        )
    if result.baseline and result.head and result.baseline != result.head:
        render.echo(
            f"note: HEAD is {result.head[:12]}, the run started from {result.baseline[:12]};"
            " `git diff` shows both differences"
        )
