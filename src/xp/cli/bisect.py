"""``xp bisect --metric M --good REV [--bad REV] [-- CMD]``: where a metric got worse."""

from __future__ import annotations

import sys

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.execution.bisect import BisectResult, Measure


def _sink(kind: str, data: bytes) -> None:
    sys.stderr.buffer.write(data)  # the command's output goes to stderr: stdout is the answer
    sys.stderr.flush()


def _value(value: float | None) -> str:
    return "-" if value is None else render.number(value, 6)


def _line(m: Measure, label: str = "") -> str:
    how = "ran the command" if m.executed else (f"{len(m.runs)} run(s)" if m.runs else "no run")
    note = f", {m.note}" if m.note else ""
    return f"{label}{m.commit[:12]}  {m.verdict:<4}  {_value(m.value)}  ({how}{note})"


def render_result(r: BisectResult) -> str:
    better = "lower" if r.goal == "min" else "higher"
    out = [
        f"{r.metric}: {better} is better; worse means {'above' if r.goal == 'min' else 'below'}"
        f" {render.number(r.threshold, 6)}",
        _line(r.good, "good    "),
        _line(r.bad, "bad     "),
    ]
    out += [_line(m, f"step {i:<2} ") for i, m in enumerate(r.steps, 1)]
    out.append(f"{len(r.steps)} step(s), {r.executed} run(s) executed")
    if r.ignored_dirty:
        out.append(
            f"{r.ignored_dirty} run(s) recorded with uncommitted changes were not used"
            " (--include-dirty uses them)"
        )
    if r.first_bad is None:
        out += ["", "only skipped commits are left; the first bad commit is one of:"]
        out += [f"  {c}" for c in r.candidates]
        return "\n".join(out)
    out += ["", f"first bad commit: {r.first_bad}  {r.subject}"]
    parent = f" (parent {r.parent[:12]}: {_value(r.parent_value)})" if r.parent else ""
    measured = {m.commit: m for m in (r.good, r.bad, *r.steps)}
    here = measured.get(r.first_bad)
    out.append(f"{r.metric} = {_value(here.value if here else None)}{parent}")
    if r.runs:
        rows = [
            [x.run_id, x.name, x.status, _value(x.values.get(f"metrics.{r.metric}"))]
            for x in r.runs
        ]
        out += ["", render.table(["run", "name", "status", r.metric], rows)]
    if r.diff is not None:
        from xp.cli.diff import render_text

        out += ["", "best run of the parent (A) against the first bad commit's (B):"]
        out.append(render_text(r.diff, 6, False, render.terminal_width()))
    elif r.code:
        rows = [[c.path, c.status, "bin" if c.added is None else f"+{c.added}",
                 "bin" if c.removed is None else f"-{c.removed}"] for c in r.code]  # fmt: skip
        out += [
            "",
            "code changed from its parent:",
            render.table(["file", "status", "+", "-"], rows),
        ]
    return "\n".join(out)


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-m", "--metric", required=True, help="The metric that got worse, e.g. val_loss.")
@click.option("--good", required=True, metavar="REV", help="A commit where the metric was fine.")
@click.option(
    "--bad", default="HEAD", show_default=True, metavar="REV", help="A commit where it is worse."
)
@click.option("--threshold", type=float, help="Worse means beyond this value.")
@click.option(
    "--worse-by", metavar="AMOUNT", help="Worse means beyond the good value by this: 5% or 0.02."
)
@click.option(
    "--goal",
    type=click.Choice(["min", "max"]),
    help="Lower (min) or higher (max) is better; default: from the name (loss, error... are min).",
)
@click.option("-w", "--where", metavar="EXPR", help="Only runs matching this filter count.")
@click.option(
    "--include-dirty", is_flag=True, help="Also use runs recorded with uncommitted changes."
)
@click.option("--first-parent", is_flag=True, help="Follow only the first parent of merges.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def bisect(
    metric: str,
    good: str,
    bad: str,
    threshold: float | None,
    worse_by: str | None,
    goal: str | None,
    where: str | None,
    include_dirty: bool,
    first_parent: bool,
    command: tuple[str, ...],
) -> None:
    """Find the first commit on which METRIC got worse, with git bisect.

    Each commit is judged from the runs whose baseline it is; only where there is none does
    xp run COMMAND (after --), like xp run, in a temporary checkout: your files and any
    bisection of yours stay untouched. Without --threshold or --worse-by, worse means past
    half way from the good value to the bad one. Exits 1 when no single commit is found.
    """
    from xp.execution.bisect import bisect as run_bisect

    repo = open_repo()

    def progress(m: Measure) -> None:
        render.echo(f"xp: {_line(m)}", err=True)

    result = run_bisect(
        repo,
        metric=metric,
        good=good,
        bad=bad,
        threshold=threshold,
        worse_by=worse_by,
        goal=goal,
        command=command,
        where=where,
        include_dirty=include_dirty,
        first_parent=first_parent,
        sink=_sink,
        on_step=progress,
    )
    render.echo(render_result(result))
    if result.first_bad is None:
        sys.exit(1)
