"""``xp log RUN``: who changed what on a run, and when; ``xp log [REV] --metric NAME``: a
metric along a branch's commits."""

from __future__ import annotations

import dataclasses

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.gitstore.repo import GitRepo


@click.command()
@click.argument("target", required=False)
@click.option("-m", "--metric", help="Follow this metric along REV's commits, e.g. val_loss.")
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
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def log(
    target: str | None, metric: str | None, pick: str, where: str | None, limit: int, as_json: bool
) -> None:
    """A run's history, or a metric along a branch.

    xp log RUN: when it was recorded, then every tag, note and move made since, with who
    made it and when. xp log alone: the newest such changes across runs (-n).

    xp log [REV] --metric NAME: the metric on each commit of REV's first-parent line
    (default HEAD), newest first. A commit's value comes from the runs whose baseline it is:
    the best one (lowest for loss/error-like names, else highest) or, with --pick latest,
    the newest.
    """
    repo = open_repo()
    if metric is None:
        _history(repo, target, limit, as_json)
        return
    from xp.query.metric_history import metric_history

    rev = target or "HEAD"
    found = metric_history(repo, metric=metric, rev=rev, pick=pick, where=where, limit=limit)
    if as_json:
        render.echo(render.to_json([
            {"commit": p.commit, "subject": p.subject, "time": p.time, "value": p.value,
             "run_id": p.run.run_id if p.run else None, "runs": p.runs}
            for p in found.points
        ]), exact=True)  # fmt: skip
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
    render.echo(
        render.table(["commit", "date", "subject", found.metric, "change", "run", "runs"], rows)
    )
    render.echo(
        f"{found.metric} on {rev}: {'lower' if found.goal == 'min' else 'higher'} is better;"
        f" {found.pick} run per commit",
        err=True,
    )


def _history(repo: GitRepo, run: str | None, limit: int, as_json: bool) -> None:
    from xp.sharing.annotate import history, recent

    if run is None:
        changes = recent(repo, limit=limit)
        warnings: list[str] = []
    else:
        changes, warnings = history(repo, run=run)
    for warning in warnings:
        render.echo(f"xp: warning: {warning}", err=True)
    if as_json:
        render.echo(render.to_json([dataclasses.asdict(c) for c in changes]), exact=True)
        return
    rows = [[c.time[:19].replace("T", " "), c.who, *([c.run_id] if run is None else []), c.what]
            for c in changes]  # fmt: skip
    head = ["when (UTC)", "who", *(["run"] if run is None else []), "what"]
    if rows:
        render.echo(render.table(head, rows))
    elif run is None:
        render.echo("no annotations yet: xp tag RUN KEY=VALUE, xp note RUN TEXT", err=True)
