from __future__ import annotations

import shlex
import sys

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.execution.reproduce import DEFAULT_ATOL, DEFAULT_RTOL, ReproduceResult


def _sink(kind: str, data: bytes) -> None:
    stream = sys.stdout if kind == "out" else sys.stderr
    stream.buffer.write(data)
    stream.flush()


def _interactive() -> bool:
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def comparison_table(result: ReproduceResult) -> str:
    rows = []
    for c in result.comparisons:
        diff = (
            _num(c.reproduced - c.original)
            if c.original is not None and c.reproduced is not None
            else "-"
        )
        verdict = ("ok" if c.ok else "MISMATCH") + (f" ({c.note})" if c.note else "")
        rows.append([c.metric, _num(c.original), _num(c.reproduced), diff, verdict])
    return render.table(["metric", "original", "reproduced", "diff", "result"], rows)


@click.command()
@click.argument("run")
@click.option("--check", is_flag=True, help="Compare final metrics; exit 1 on a mismatch.")
@click.option(
    "--rtol",
    type=float,
    default=DEFAULT_RTOL,
    show_default=True,
    help="Relative tolerance: |new - old| <= atol + rtol * |old|.",
)
@click.option(
    "--atol", type=float, default=DEFAULT_ATOL, show_default=True, help="Absolute tolerance."
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="GLOB",
    help="Metrics not to judge, e.g. '*_seconds' for timings (repeatable).",
)
@click.option("-n", "--name", help="Name of the new run (default: <original name>-repro).")
@click.option(
    "--trust",
    is_flag=True,
    help="Run the command of a run this clone did not record (fetched) without asking.",
)
def reproduce(
    run: str,
    check: bool,
    rtol: float,
    atol: float,
    ignore: tuple[str, ...],
    name: str | None,
    trust: bool,
) -> None:
    """Re-run RUN's command on its recorded code, params and (cached) data.

    It runs in a temporary checkout, so your files are not touched, and is recorded as a
    new run tagged xp.reproduces=<RUN>. With --check, the final metrics are compared
    (NaN matches NaN) and a mismatch exits 1. The command of a run this clone did not
    record (one fetched from others) is shown first and runs only when you confirm it,
    or with --trust.
    """
    from xp.execution.reproduce import origin
    from xp.execution.reproduce import reproduce as do_reproduce

    repo = open_repo()
    if not trust:
        where = origin(repo, run=run)
        if not where.recorded_here and _interactive():
            render.echo(
                f"run {where.run_id} ({where.name}) comes from {where.source}.\n"
                f"Reproducing it runs its command, in {where.cwd} of a temporary checkout:\n"
                f"  {shlex.join(where.command)}",
                err=True,
            )
            trust = click.confirm("Run it?", default=False, err=True)
            if not trust:
                raise click.exceptions.Exit(1)
    result = do_reproduce(
        repo, run=run, rtol=rtol, atol=atol, sink=_sink, name=name, ignore=ignore, trust=trust
    )
    for warning in result.warnings:
        render.echo(f"xp: warning: {warning}", err=True)
    new = result.run
    render.echo(
        f"reproduction of {result.original}: run {new.run_id} {new.name} {new.status}"
        f" in {new.duration:.1f}s (exit {new.exit_code})"
    )
    if not check:
        return
    render.echo(comparison_table(result))
    failed = sum(not c.ok for c in result.comparisons)
    judged = sum(c.note != "ignored" for c in result.comparisons)
    if result.ok:
        render.echo(f"PASS: {judged} metric(s) within rtol={rtol:g} atol={atol:g}")
        return
    reason = f"{failed} metric(s) differ" if failed else f"the command {new.status}"
    render.echo(f"FAIL: {reason} (rtol={rtol:g} atol={atol:g})")
    sys.exit(1)
