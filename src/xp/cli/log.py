"""``xp log [REV] --metric NAME``: a metric along a branch's commits."""

from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo


@click.command()
@click.argument("rev", required=False, default="HEAD")
@click.option("-m", "--metric", required=True, help="The metric to follow, e.g. val_loss.")
@click.option(
    "--pick",
    type=click.Choice(["best", "latest"]),
    default="best",
    show_default=True,
    help="Which run of a commit counts.",
)
@click.option("-w", "--where", metavar="EXPR", help="Only runs matching this filter count.")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Commits to show.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="The points as JSON.")
def log(rev: str, metric: str, pick: str, where: str | None, limit: int, as_json: bool) -> None:
    """The metric on each commit of REV's first-parent line (default HEAD), newest first.

    A commit's value comes from the runs whose baseline it is: the best one (lowest for
    loss/error-like names, else highest) or, with --pick latest, the newest.
    """
    from xp.query.metric_history import metric_history

    repo = open_repo()
    found = metric_history(repo, metric=metric, rev=rev, pick=pick, where=where, limit=limit)
    if as_json:
        click.echo(render.to_json([
            {"commit": p.commit, "subject": p.subject, "time": p.time, "value": p.value,
             "run_id": p.run.run_id if p.run else None, "runs": p.runs}
            for p in found.points
        ]))  # fmt: skip
        return
    rows = []
    older = [p.value for p in found.points]
    for i, p in enumerate(found.points):
        before = next((v for v in older[i + 1 :] if v is not None), None)
        change = ""
        if p.value is not None and before is not None:
            delta = p.value - before
            change = ("+" if delta > 0 else "") + render.number(delta, 4)
        rows.append([
            p.commit[:9], render.local_time(p.time), render.clip(p.subject, 40),
            render.number(p.value, 6) if p.value is not None else "-", change,
            p.run.run_id if p.run else "-", str(p.runs),
        ])  # fmt: skip
    click.echo(
        render.table(["commit", "date", "subject", found.metric, "change", "run", "runs"], rows)
    )
    click.echo(
        f"{found.metric} on {rev}: {'lower' if found.goal == 'min' else 'higher'} is better;"
        f" {found.pick} run per commit",
        err=True,
    )
