"""``xp ci``: fetch runs, reproduce the branch's best run, compare with the base; exit code."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.execution.ci import TEMPLATES, CIResult
from xp.execution.reproduce import DEFAULT_ATOL, DEFAULT_RTOL
from xp.fsutil import atomic_write


def _sink(kind: str, data: bytes) -> None:
    sys.stderr.buffer.write(data)  # the reproduction's output: stdout is the report
    sys.stderr.flush()


def render_comment(r: CIResult, precision: int = 6) -> str:
    """The Markdown a pull request gets: verdict, reproduction, then xp diff BASE...HEAD."""
    from xp.cli.diff import render_md

    s = r.sides
    verdict = "passed" if r.passed else "failed"
    parts = [f"### xp check {verdict}", ""]
    parts += [f"- :x: {reason}" for reason in r.reasons]
    parts.append(
        f"- base `{s.base}`: best run `{s.a.run_id}` ({s.a.name}) on `{s.a_commit[:12]}`;"
        f" branch `{s.tip}`: best run `{s.b.run_id}` ({s.b.name})"
        + (f", by {r.metric}" if r.metric else ", newest")
    )
    repro = r.reproduction
    if repro is not None:
        parts.append(
            f"- reproduction: run `{repro.run.run_id}` {repro.run.status}"
            f" ({'matches' if repro.ok else 'does not match'})"
        )
        rows = [
            [c.metric, render.number(c.original, precision), render.number(c.reproduced, precision),
             "ok" if c.ok else "MISMATCH" + (f" ({c.note})" if c.note else "")]
            for c in repro.comparisons
        ]  # fmt: skip
        if rows:
            parts += ["", render.markdown(["metric", "original", "reproduced", "result"], rows)]
    parts += ["", render_md(r.diff, precision, False)]
    return "\n".join(parts) + "\n"


@click.command()
@click.option(
    "--base", metavar="REV", help="The base branch (default: from the CI, else origin/main)."
)
@click.option(
    "--head", default="HEAD", show_default=True, metavar="REV", help="The branch checked."
)
@click.option("-m", "--metric", help="The metric that picks each side's best run.")
@click.option(
    "--max-regression",
    metavar="AMOUNT",
    help="Fail when the metric is worse than the base's by more: 5% or 0.02.",
)
@click.option("--remote", help="The git remote to fetch runs from (default: the only one).")
@click.option("--no-fetch", is_flag=True, help="Use the runs already here.")
@click.option("--no-reproduce", is_flag=True, help="Only compare; do not re-run anything.")
@click.option(
    "--rtol",
    type=float,
    default=DEFAULT_RTOL,
    show_default=True,
    help="Reproduction: relative tolerance.",
)
@click.option(
    "--atol",
    type=float,
    default=DEFAULT_ATOL,
    show_default=True,
    help="Reproduction: absolute tolerance.",
)
@click.option(
    "--ignore", multiple=True, metavar="GLOB", help="Metrics not to judge, e.g. '*_seconds'."
)
@click.option(
    "--md",
    "md_file",
    type=click.Path(dir_okay=False),
    help="Write the comment here (default: stdout).",
)
@click.option(
    "--trust",
    is_flag=True,
    help="Run the recorded command of the branch's best run although this clone did not"
    " record it (in CI it is the branch's own code, which the pipeline runs anyway).",
)
@click.option(
    "--template",
    type=click.Choice(sorted(TEMPLATES)),
    help="Print a CI configuration that runs xp ci on every pull request, and exit.",
)  # fmt: skip
def ci(
    base: str | None,
    head: str,
    metric: str | None,
    max_regression: str | None,
    remote: str | None,
    no_fetch: bool,
    no_reproduce: bool,
    rtol: float,
    atol: float,
    ignore: tuple[str, ...],
    md_file: str | None,
    trust: bool,
    template: str | None,
) -> None:
    """The check of a pull request: fetch runs, re-run the branch's best run, compare.

    Fetches runs from the git remote, picks the best run where the branch forked from BASE
    and the best on the branch's own commits (xp diff BASE...HEAD), reproduces the branch's
    (xp reproduce --check; a run fetched from others only with --trust) and writes
    Markdown for a pull-request comment. Exits 1 when the
    reproduction does not match or the metric regressed past --max-regression. Templates for
    GitHub Actions and GitLab CI: --template github|gitlab (docs/ci.md).
    """
    from xp.execution.ci import ci as run_ci
    from xp.execution.ci import template as ci_template

    if template is not None:
        render.echo(ci_template(template), nl=False, exact=True)
        return
    repo = open_repo()
    result = run_ci(
        repo,
        base=base,
        head=head,
        metric=metric,
        remote=remote,
        fetch=not no_fetch,
        check=not no_reproduce,
        max_regression=max_regression,
        rtol=rtol,
        atol=atol,
        ignore=ignore,
        sink=_sink,
        trust=trust,
    )
    for warning in result.warnings:
        render.echo(f"xp: warning: {warning}", err=True)
    comment = render_comment(result)
    if md_file:
        atomic_write(Path(md_file), comment.encode())
    else:
        render.echo(comment, nl=False, exact=True)
    render.echo(f"xp ci: {'passed' if result.passed else 'failed'}", err=True)
    for reason in result.reasons:
        render.echo(f"xp ci: {reason}", err=True)
    if not result.passed:
        sys.exit(1)
