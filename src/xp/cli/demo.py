from __future__ import annotations

import shlex
from typing import Any

import click

from xp.cli import render
from xp.cli.app import COMMANDS

# columns of the summary table: (header, param key)
_PARAM_COLUMNS = (("depth", "max_depth"), ("trees", "n_estimators"), ("lr", "learning_rate"))
_ALIGN_LIMIT = 60  # longer commands are not padded: their comment just follows them


@click.command()
@click.argument("directory", default="xp-demo", type=click.Path())
@click.option(
    "--force",
    is_flag=True,
    help="Start over in DIRECTORY when it holds an earlier xp demo (anything else is refused).",
)
def demo(directory: str, force: bool) -> None:
    """Make a demo project in DIRECTORY (default: ./xp-demo) and record a few runs in it.

    The project is its own git repo: train.py fits scikit-learn models to the diabetes data
    set and records each run with xp's Python API. Needs scikit-learn:
    pip install 'git-xp[demo]'.
    """
    from xp.demo.project import make_demo

    result = make_demo(directory, force=force, progress=click.echo)
    render.echo("")
    render.echo(f"{len(result.runs)} runs recorded in {result.seconds:.1f} s, read back from git:")
    render.echo(_table(result.runs))
    best, worst = result.best, result.worst
    render.echo("")
    render.echo(f"What to try next (best run: {best.name}):")
    steps = [
        (f"cd {shlex.quote(directory)}", ""),
        ("git log --oneline --glob='refs/xp/*'", "every run is a commit"),
        (f"git show {best.ref}:.xp/run/metrics.yaml", "the best run's final metrics"),
        (
            f"git diff {worst.ref} {best.ref} -- .xp/run/params.yaml .xp/run/metrics.yaml",
            "worst vs best run",
        ),
        ("python train.py", "one more run, after editing params.yaml"),
        ("xp commit -n my-run", "record the workspace from its files, no API"),
    ]
    if "show" in COMMANDS:
        steps.append(("xp show", "all runs in a table"))
    if "diff" in COMMANDS:
        steps.append((f"xp diff {worst.id} {best.id}", "params, metrics and code side by side"))
    width = max(len(cmd) for cmd, _ in steps if len(cmd) <= _ALIGN_LIMIT)
    for cmd, why in steps:
        render.echo(f"  {cmd:<{width}}  # {why}" if why else f"  {cmd}")
    soon = [c for c in ("show", "diff") if c not in COMMANDS]
    if soon:
        render.echo(f"  (coming soon: {', '.join('xp ' + c for c in soon)})")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(runs: Any) -> str:
    header = ["id", "name", "model", *(h for h, _ in _PARAM_COLUMNS), "rmse", "r2"]
    rows = []
    for run in runs:
        rows.append(
            [
                run.id,
                run.name,
                _cell(run.params.get("model")),
                *(_cell(run.params.get(key)) for _, key in _PARAM_COLUMNS),
                f"{run.metrics.get('rmse', float('nan')):.2f}",
                f"{run.metrics.get('r2', float('nan')):.3f}",
            ]
        )
    return render.table(header, rows)
