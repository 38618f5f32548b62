"""The body of ``xp commit``, without click: the click command (``commit.py``) and ``quick``
(its common forms, answered before click is imported) share it."""

from __future__ import annotations

import math
from typing import Any

from xp.cli.common import open_repo
from xp.cli.output import echo

# click's spelling of each option -> the keyword it fills; the repeatable ones collect.
OPTIONS: dict[str, str] = {
    "-n": "name",
    "--name": "name",
    "-m": "message",
    "--message": "message",
    "-e": "experiment",
    "--experiment": "experiment",
    "--param": "params",
    "--metric": "metrics",
    "--artifact": "artifacts",
    "--data": "data",
}
REPEATABLE = ("params", "metrics", "artifacts", "data")


def _number(value: Any) -> str:
    """``render.number(value, 4)`` for a metric, without importing the renderer."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    from xp.record.values import text

    return text(value)


def commit(
    name: str | None,
    message: str | None,
    experiment: str | None,
    params: tuple[str, ...],
    metrics: tuple[str, ...],
    artifacts: tuple[str, ...],
    data: tuple[str, ...],
) -> None:
    from xp.tracking.commit_workspace import commit_workspace, parse_assignments

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
    shown = " ".join(f"{k}={_number(v)}" for k, v in sorted(result.metrics.items())[:6])
    echo(f"{run.id}  {run.name}  {len(result.params)} params  {shown}".rstrip())
    for warning in run.header.warnings:
        echo(f"warning: {warning}", err=True)
    echo(f"ref {run.ref}  (git show {run.ref} --stat)")


def parse(args: list[str]) -> dict[str, Any] | None:
    """The keywords of ``commit`` for ``args`` (what follows ``commit``), as click would
    parse them; None for anything click must see (help, an unknown or malformed option, a
    value that looks like an option, a positional argument, ``--``)."""
    found: dict[str, Any] = {"name": None, "message": None, "experiment": None}
    found.update({key: [] for key in REPEATABLE})
    i = 0
    while i < len(args):
        opt, eq, value = args[i].partition("=")
        key = OPTIONS.get(opt)
        if key is None or (eq and not opt.startswith("--")):
            return None
        if not eq:
            if i + 1 == len(args) or args[i + 1].startswith("-"):
                return None
            value = args[i + 1]
            i += 1
        i += 1
        if key in REPEATABLE:
            found[key].append(value)
        else:
            found[key] = value
    for key in REPEATABLE:
        found[key] = tuple(found[key])
    return found
