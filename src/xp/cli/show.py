"""``xp show``: a table of runs, newest first, from the query index."""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Sequence

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.errors import QueryError
from xp.query.filters import ATTRIBUTES, resolve_column
from xp.query.index import RunRow
from xp.query.search import Selection, run_document, select_runs

FIXED = ("run_id", "name", "status", "created", "duration", "baseline")
_HEADER = {"run_id": "id"}


def _attr(row: RunRow, key: str, precision: int | None) -> str:
    if key == "run_id":
        return row.run_id
    if key == "name":
        return f"! {row.error}" if row.error else row.name
    if key in ("created", "end_time"):
        return render.local_time(row.start if key == "created" else row.end)
    if key == "duration":
        return render.duration(row.duration)
    if key == "baseline":
        return row.branch or (row.baseline or "-")[:7]
    if key == "commit":
        return row.commit[:12]
    value = getattr(row, key, None)
    return "-" if value is None else str(value)


def choose_columns(
    selection: Selection, columns: str | None, only_changed: bool
) -> tuple[list[str], list[str]]:
    """(attribute columns, value columns) to show, from --columns and the rows at hand."""
    rows = selection.rows
    present: dict[str, None] = {}
    for row in rows:
        present.update(dict.fromkeys(row.values))
    attrs: list[str] = list(FIXED)
    if columns:
        attrs = ["run_id"]
        chosen: list[str] = []
        known = sorted(set(selection.keys) | set(present))
        for pattern in (p.strip() for p in columns.split(",")):
            if not pattern:
                continue
            if any(ch in pattern for ch in "*?["):
                hits = [k for k in known if fnmatch.fnmatchcase(k, pattern)]
                hits += [k for k in known if fnmatch.fnmatchcase(k.partition(".")[2], pattern)]
                hits += [a for a in ATTRIBUTES if fnmatch.fnmatchcase(a, pattern)]
                if not hits:
                    raise QueryError(f"--columns: {pattern!r} matches no column")
            else:
                column = resolve_column(pattern, known, "--columns: ")
                hits = [column.name]
            for hit in hits:
                target = attrs if hit in ATTRIBUTES else chosen
                if hit not in target:
                    target.append(hit)
        if attrs == ["run_id"] and not any(c in ATTRIBUTES for c in chosen):
            attrs = list(FIXED)
        value_cols = chosen
    else:
        rank = {"params": 0, "metrics": 1}
        value_cols = sorted(
            (k for k in present if not k.startswith("tags.")),
            key=lambda k: (rank.get(k.partition(".")[0], 2), k),
        )
    if only_changed and len(rows) > 1:
        value_cols = [k for k in value_cols if len({repr(r.values.get(k)) for r in rows}) > 1]
    return attrs, value_cols


def _labels(value_cols: Sequence[str]) -> list[str]:
    """Bare keys (``lr``, ``acc``) unless two kinds share a key; then the full name."""
    bare = [k.partition(".")[2] for k in value_cols]
    counts = Counter(bare)
    return [k if counts[b] > 1 else b for k, b in zip(value_cols, bare, strict=True)]


def _changed(rows: Sequence[RunRow], key: str) -> bool:
    return len({repr(r.values.get(key)) for r in rows}) > 1


def build_table(
    selection: Selection, attrs: list[str], value_cols: list[str], precision: int | None
) -> tuple[list[str], list[list[str]]]:
    headers = [_HEADER.get(a, a) for a in attrs] + _labels(value_cols)
    rows = [
        [_attr(r, a, precision) for a in attrs] + [_cell(r, k, precision) for k in value_cols]
        for r in selection.rows
    ]
    return headers, rows


def _cell(row: RunRow, key: str, precision: int | None) -> str:
    value = row.values.get(key)
    if value is None and key in row.values:
        return "nan" if key.startswith("metrics.") else "null"  # the index keeps NaN as null
    return render.number(value, precision)


@click.command()
@click.option(
    "-w",
    "--where",
    metavar="EXPR",
    help="Filter, e.g. \"metrics.acc > 0.9 and params.model = 'cnn'\".",
)
@click.option(
    "-s",
    "--sort",
    "sort",
    multiple=True,
    metavar="KEY",
    help="Sort key: 'metrics.acc', '-metrics.acc' or 'metrics.acc desc' (repeatable).",
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Show at most this many runs.",
)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show every matching run.")
@click.option(
    "-c",
    "--columns",
    metavar="LIST",
    help="Columns to show, comma-separated; globs work: 'lr,metrics.*'.",
)
@click.option(
    "--only-changed", is_flag=True, help="Hide params and metrics that are the same in every row."
)
@click.option(
    "-e", "--experiment", multiple=True, help="Only runs of this experiment (repeatable)."
)
@click.option("-b", "--branch", help="Only runs recorded on this branch.")
@click.option(
    "--status", multiple=True, help="Only runs with this status (repeatable, or comma-separated)."
)
@click.option(
    "-f",
    "--format",
    "out_format",
    type=click.Choice(["table", "md", "csv", "tsv", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "-p",
    "--precision",
    type=click.IntRange(1, 17),
    default=None,
    help="Significant digits of floats [table/md: 5; csv/tsv/json: all].",
)
@click.option("--rebuild", is_flag=True, help="Rebuild the query index from the refs first.")
@click.option(
    "--verify",
    is_flag=True,
    help="Check the rows shown against the run records in git; rebuild rows that disagree.",
)
def show(
    where: str | None,
    sort: tuple[str, ...],
    limit: int,
    show_all: bool,
    columns: str | None,
    only_changed: bool,
    experiment: tuple[str, ...],
    branch: str | None,
    status: tuple[str, ...],
    out_format: str,
    precision: int | None,
    rebuild: bool,
    verify: bool,
) -> None:
    """List runs, newest first: id, name, status, created, duration, baseline, params, metrics.

    The filter language is MLflow's plus or/not/in; see docs/runs.md.
    """
    repo = open_repo()
    statuses = [s.strip() for item in status for s in item.split(",") if s.strip()]
    selection = select_runs(
        repo,
        where=where,
        sort=sort,
        limit=None if show_all else limit,
        experiment=list(experiment) or None,
        branch=branch,
        status=statuses,
        rebuild=rebuild,
        verify=verify,
    )
    if verify:
        render.echo(
            f"xp: verified {len(selection.rows)} rows against their records"
            + (f"; {selection.repaired} disagreed and were rebuilt" if selection.repaired else ""),
            err=True,
        )
    attrs, value_cols = choose_columns(selection, columns, only_changed)
    if out_format == "json":
        docs = [run_document(r, value_cols if columns else None) for r in selection.rows]
        render.echo(render.to_json(docs), exact=True)
        return
    if precision is None and out_format in ("table", "md"):
        precision = 5
    if out_format in ("table", "md") and not columns:
        value_cols = differing_first(selection.rows, value_cols)
    headers, rows = build_table(selection, attrs, value_cols, precision)
    if out_format in ("csv", "tsv"):
        render.echo(
            render.delimited(headers, rows, "," if out_format == "csv" else "\t"), exact=True
        )
        return
    if not selection.rows:
        filtered = where or experiment or branch or statuses
        if selection.total:
            render.echo(f"0 of {selection.total:,} runs shown; --all or -n N for more.", err=True)
            return
        render.echo(
            "no runs match the filters."
            if filtered
            else "no runs yet: record one with `xp commit` or `xp.start_run()` in Python.",
            err=True,
        )
        return
    if out_format == "md":
        render.echo(render.markdown(headers, rows))
    else:
        _print_table(selection, headers, rows, attrs, value_cols)
    shown, total = len(selection.rows), selection.total
    if shown < total:
        render.echo(f"{shown} of {total:,} runs shown; --all or -n N for more.", err=True)


def _fit(
    headers: list[str], rows: list[list[str]], width: int, drop_order: list[int]
) -> render.Fitted:
    """``render.fit``, with the columns that can never fit dropped first in the same order:
    a column takes at least 3 characters with its gap, so at most ``width // 3 + 1`` show.
    (A run with 10,000 metrics would otherwise cost ``fit`` seconds.)"""
    extra = max(0, len(headers) - (width // 3 + 1))
    gone = set(drop_order[:extra])
    if not gone:
        return render.fit(headers, rows, width, drop_order)
    kept = [i for i in range(len(headers)) if i not in gone]
    new = {old: n for n, old in enumerate(kept)}
    fitted = render.fit(
        [headers[i] for i in kept],
        [[r[i] for i in kept] for r in rows],
        width,
        [new[i] for i in drop_order[extra:] if i in new],
    )
    hidden = set(fitted.hidden)
    return render.Fitted(
        fitted.headers,
        fitted.rows,
        [h for i, h in enumerate(headers) if i in gone or (i in new and h in hidden)],
    )


def differing_first(rows: Sequence[RunRow], value_cols: list[str]) -> list[str]:
    """What differs between the runs shown comes first: that is what a comparison is for."""
    if len(rows) < 2:
        return value_cols
    return sorted(value_cols, key=lambda k: not _changed(rows, k))  # stable: kind, then name


def _print_table(
    selection: Selection,
    headers: list[str],
    rows: list[list[str]],
    attrs: list[str],
    value_cols: list[str],
) -> None:
    n_attr = len(attrs)
    rows = [[render.clip(c) for c in r] for r in rows]
    # A long param name over a short value: shortened in the middle to the values' width
    # (at least 12 cells), so learning_rate_schedule_warmup_steps costs no 35 columns.
    headers = [
        h
        if i < n_attr
        else render.clip_middle(
            h, min(render.MAX_CELL, max(12, *(render.cells(r[i]) for r in rows)))
        )
        for i, h in enumerate(headers)
    ]
    # With one row nothing differs, and everything is worth showing.
    one = len(selection.rows) < 2
    changed = [one or _changed(selection.rows, k) for k in value_cols]
    values_idx = list(range(n_attr, len(headers)))
    # The drop order (docs/show-diff.md): unchanged params and metrics from the right, then
    # baseline, duration and created, then changed params from the right, then changed
    # metrics from the right; id, name and status stay.
    unchanged = [i for i, c in zip(values_idx, changed, strict=True) if not c][::-1]
    changed_params = [
        i
        for i, c, k in zip(values_idx, changed, value_cols, strict=True)
        if c and not k.startswith("metrics.")
    ][::-1]
    changed_metrics = [
        i
        for i, c, k in zip(values_idx, changed, value_cols, strict=True)
        if c and k.startswith("metrics.")
    ][::-1]
    fixed = [attrs.index(a) for a in ("baseline", "duration", "created") if a in attrs]
    fitted = _fit(
        headers, rows, render.terminal_width(), unchanged + fixed + changed_params + changed_metrics
    )
    render.echo(render.table(fitted.headers, fitted.rows))
    if fitted.hidden:
        n = len(fitted.hidden)
        names = ", ".join(fitted.hidden[:5]) + (", ..." if n > 5 else "")
        render.echo(
            f"+{n} column{'s' if n > 1 else ''} hidden to fit the terminal ({names}):"
            " pick with --columns, or see all with --format md.",
            err=True,
        )
