"""``xp show``: a table of runs, newest first, from the query index."""

from __future__ import annotations

import csv
import fnmatch
import functools
import io
import itertools
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from json.encoder import encode_basestring
from typing import Any

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.errors import QueryError
from xp.query.filters import ATTRIBUTES, resolve_column
from xp.query.index import ABSENT, AttributeFacts, Batch, RunRow, ValueFacts
from xp.query.search import RunStream, Selection, run_document, select_runs, stream_runs
from xp.record.build import iso_time

FIXED = ("run_id", "name", "status", "created", "duration", "baseline")
STREAM_AT = 1000  # more runs than this are streamed, never held in memory
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
    return pick_columns(
        selection.keys, present, columns, only_changed, len(rows), lambda k: _changed(rows, k)
    )


def pick_columns(
    keys: Iterable[str],
    present: Iterable[str],
    columns: str | None,
    only_changed: bool,
    count: int,
    changed: Callable[[str], bool],
) -> tuple[list[str], list[str]]:
    """(attribute columns, value columns): ``present`` are the value columns the runs
    shown have, ``changed(key)`` whether a column differs between them."""
    present = list(present)
    attrs: list[str] = list(FIXED)
    if columns:
        attrs = ["run_id"]
        chosen: list[str] = []
        known = sorted(set(keys) | set(present))
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
    if only_changed and count > 1:
        value_cols = [k for k in value_cols if changed(k)]
    return attrs, value_cols


def _labels(value_cols: Sequence[str]) -> list[str]:
    """Bare keys (``lr``, ``acc``) unless two kinds share a key; then the full name."""
    bare = [k.partition(".")[2] for k in value_cols]
    counts = Counter(bare)
    return [k if counts[b] > 1 else b for k, b in zip(value_cols, bare, strict=True)]


def _changed(rows: Sequence[RunRow], key: str) -> bool:
    """Whether two rows differ in ``key`` (a missing value is a value of its own)."""
    return len({repr(r.values.get(key, _ABSENT)) for r in rows}) > 1


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
    if precision is None and out_format in ("table", "md"):
        precision = 5
    conditions: dict[str, Any] = {
        "where": where,
        "sort": sort,
        "limit": None if show_all else limit,
        "experiment": list(experiment) or None,
        "branch": branch,
        "status": statuses,
        "rebuild": rebuild,
    }
    filtered = bool(where or experiment or branch or statuses)
    if verify or (not show_all and limit <= STREAM_AT):
        # --verify reads every shown run's record from git anyway: rows held in memory
        selection = select_runs(repo, **conditions, verify=verify)
        _warn_skipped(selection.skipped)
        if verify:
            render.echo(
                f"xp: verified {len(selection.rows)} rows against their records"
                + (
                    f"; {selection.repaired} disagreed and were rebuilt"
                    if selection.repaired
                    else ""
                ),
                err=True,
            )
        _show_selection(selection, columns, only_changed, out_format, precision, filtered)
        return
    with stream_runs(repo, **conditions) as runs:
        _warn_skipped(runs.index.skipped)
        if not runs.running:
            _show_stream(runs, columns, only_changed, out_format, precision, filtered)
            return
    # runs still logging are not in the index: listed with the rest, held in memory
    selection = select_runs(repo, **{**conditions, "rebuild": False}, running=runs.running)
    _show_selection(selection, columns, only_changed, out_format, precision, filtered)


def _warn_skipped(skipped: list[str]) -> None:
    """One line per fetched run summary the index (partly) ignored."""
    for why in skipped[:10]:
        render.echo(f"xp: warning: catalog {why}", err=True)
    if len(skipped) > 10:
        render.echo(f"xp: warning: {len(skipped) - 10} more run summaries ignored", err=True)


def _none_message(filtered: bool) -> str:
    return (
        "no runs match the filters."
        if filtered
        else "no runs yet: record one with `xp commit` or `xp.start_run()` in Python."
    )


def _show_selection(
    selection: Selection,
    columns: str | None,
    only_changed: bool,
    out_format: str,
    precision: int | None,
    filtered: bool,
) -> None:
    """A few runs (``-n``): held in memory, laid out from their cells."""
    attrs, value_cols = choose_columns(selection, columns, only_changed)
    if out_format == "json":
        docs = [run_document(r, value_cols if columns else None) for r in selection.rows]
        render.echo(render.to_json(docs), exact=True)
        return
    if out_format in ("table", "md") and not columns:
        value_cols = differing_first(selection.rows, value_cols)
    headers, rows = build_table(selection, attrs, value_cols, precision)
    if out_format in ("csv", "tsv"):
        render.echo(
            render.delimited(headers, rows, "," if out_format == "csv" else "\t"), exact=True
        )
        return
    if not selection.rows:
        if selection.total:
            render.echo(f"0 of {selection.total:,} runs shown; --all or -n N for more.", err=True)
            return
        render.echo(_none_message(filtered), err=True)
        return
    if out_format == "md":
        render.echo(render.markdown(headers, rows))
    else:
        _print_table(selection, headers, rows, attrs, value_cols)
    shown, total = len(selection.rows), selection.total
    if shown < total:
        render.echo(f"{shown} of {total:,} runs shown; --all or -n N for more.", err=True)


def differing_first(rows: Sequence[RunRow], value_cols: list[str]) -> list[str]:
    """What differs between the runs shown comes first: that is what a comparison is for."""
    if len(rows) < 2:
        return value_cols
    return sorted(value_cols, key=lambda k: not _changed(rows, k))  # stable: kind, then name


def _show_stream(
    runs: RunStream,
    columns: str | None,
    only_changed: bool,
    out_format: str,
    precision: int | None,
    filtered: bool,
) -> None:
    """Any number of runs (``--all``): streamed a batch at a time, column by column, only
    the columns printed read from the index. A table's column widths and alignment come
    from SQL aggregates over the runs, so they are those ``_show_selection`` would compute
    from the cells."""
    number_format = f"%.{precision}g" if precision is not None and precision <= 15 else None
    facts = runs.value_facts(runs.keys, number_format) if runs.count else {}
    present = [k for k, f in facts.items() if f.present]
    attrs, value_cols = pick_columns(
        runs.keys, present, columns, only_changed, runs.count, lambda k: facts[k].changed
    )
    if out_format == "json":
        wanted = value_cols if columns else None
        render.write(
            itertools.chain(_json_batches(runs.batches(_DOC_FIELDS, None), wanted), ["\n"]),
            end="",
            exact=True,
        )
        return
    if out_format in ("table", "md") and not columns and runs.count > 1:
        value_cols = sorted(value_cols, key=lambda k: not facts[k].changed)  # differing_first
    headers = [_HEADER.get(a, a) for a in attrs] + _labels(value_cols)
    makers = [_attr_column(a) for a in attrs] + [
        _value_column(k, precision, False) for k in value_cols
    ]
    fields = _fields(attrs)

    def cells(batches: Iterable[Batch]) -> Iterator[list[str]]:
        for batch in batches:
            yield from map(list, zip(*(make(batch) for make in makers), strict=True))

    if out_format in ("csv", "tsv"):
        sep = "," if out_format == "csv" else "\t"
        rows = cells(runs.batches(fields, value_cols))
        render.write(_delimited(headers, rows, sep), end="", exact=True)
        return
    if not runs.count:
        render.echo(_none_message(filtered), err=True)
        return
    if out_format == "md":
        lines = [render.markdown_row(headers), "|" + "|".join("---" for _ in headers) + "|"]
        render.write(lines)
        render.write(_markdown_rows(runs.batches(fields, value_cols), makers))
    else:
        _stream_table(runs, attrs, value_cols, headers, facts, precision)
    if runs.count < runs.total:
        render.echo(f"{runs.count} of {runs.total:,} runs shown; --all or -n N for more.", err=True)


# what ``run_document`` reads of a row
_DOC_FIELDS = (
    "run_id",
    "name",
    "experiment",
    "status",
    "start",
    "end",
    "duration",
    "baseline",
    "branch",
    "commit",
    "ref",
    "error",
)
# the RunRow fields an attribute column is made of (``_attr``)
_ATTR_FIELDS = {
    "name": ("name", "error"),
    "created": ("start",),
    "end_time": ("end",),
    "baseline": ("branch", "baseline"),
}


def _fields(attrs: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(f for a in attrs for f in _ATTR_FIELDS.get(a, (a,))))


def _json_batches(batches: Iterable[Batch], wanted: Sequence[str] | None) -> Iterator[str]:
    """``render.json_array`` of the batches' run documents, a batch per piece."""
    first = True
    for batch in batches:
        if not batch.size:
            continue
        items = _json_items(batch, wanted)
        if items is None:
            rows = [_Doc(dict(zip(_DOC_FIELDS, t, strict=True))) for t in _doc_tuples(batch)]
            for row, values in zip(rows, batch.maps or (), strict=True):
                row.values = values
            docs = [run_document(row, wanted) for row in rows]  # type: ignore[arg-type]
            items = render.to_json(docs)[2:-2]  # "[\n  {...},\n  {...}\n]": its items
        yield ("[\n" if first else ",\n") + items
        first = False
    yield "[]" if first else "\n]"


def _json_items(batch: Batch, wanted: Sequence[str] | None) -> str | None:
    """The items ``render.to_json`` writes of the batch's run documents (each indented as
    in the array, joined by ",\n"), laid out from one template and encoded a column at a
    time: for a batch whose runs share one key set and have no error, else None."""
    keys, attrs, maps = batch.key_order, batch.attributes, batch.maps
    if keys is None or maps is None or any(attrs["error"]):
        return None
    starts, ends = attrs["start"], attrs["end"]
    fields: list[tuple[str, list[Any]]] = [
        ("run_id", attrs["run_id"]),
        ("name", attrs["name"]),
        ("experiment", attrs["experiment"]),
        ("status", attrs["status"]),
        ("created", [None if t is None else iso_time(t) for t in starts]),
        ("end_time", [None if t is None else iso_time(t) for t in ends]),
        ("duration", attrs["duration"]),
        ("baseline", attrs["baseline"]),
        ("branch", attrs["branch"]),
        ("commit", [c or None for c in attrs["commit"]]),
        ("ref", [r or None for r in attrs["ref"]]),
    ]
    parts: list[str | None] = ["  {\n"]  # literal text; None where a cell goes
    columns: list[list[str]] = []
    for i, (name, column) in enumerate(fields):
        parts += [("" if i == 0 else ",\n") + f'    "{name}": ', None]
        columns.append(_json_column(column, 4))
    chosen = set(wanted) if wanted else None
    for kind in ("params", "metrics", "tags"):
        names = [k for k in keys if k.startswith(kind + ".") and (chosen is None or k in chosen)]
        if not names:
            parts.append(f',\n    "{kind}": {{}}')
            continue
        parts.append(f',\n    "{kind}": {{\n')
        for j, key in enumerate(names):
            label = encode_basestring(key.partition(".")[2])
            parts += [("" if j == 0 else ",\n") + f"      {label}: ", None]
            columns.append(_json_column([m[key] for m in maps], 6))
        parts.append("\n    }")
    parts.append("\n  }")
    template = "".join(
        "{}" if p is None else p.replace("{", "{{").replace("}", "}}") for p in parts
    )
    text = ",\n".join(template.format(*cells) for cells in zip(*columns, strict=True))
    return render.json_unsafe_escaped(text)


def _json_column(values: list[Any], indent: int) -> list[str]:
    """Each value as ``json.dumps(json_safe(v), indent=2, ensure_ascii=False)`` writes it
    at ``indent`` spaces; one type check for the column."""
    kinds = set(map(type, values))
    if kinds == {str}:
        return list(map(encode_basestring, values))
    if kinds == {float} and all(map(math.isfinite, values)):
        return list(map(float.__repr__, values))
    if kinds == {int}:
        return list(map(int.__repr__, values))
    if kinds <= {str, type(None)}:
        return ["null" if v is None else encode_basestring(v) for v in values]
    pad = "\n" + " " * indent
    return [
        json.dumps(render.json_safe(v), indent=2, ensure_ascii=False, allow_nan=False).replace(
            "\n", pad
        )
        for v in values
    ]


def _doc_tuples(batch: Batch) -> Iterator[tuple[Any, ...]]:
    return zip(*(batch.attributes[f] for f in _DOC_FIELDS), strict=True)


class _Doc:
    """The RunRow fields ``run_document`` reads (set from a batch, no dataclass init)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)
        self.values: dict[str, Any] = {}


def _markdown_rows(
    batches: Iterable[Batch], makers: Sequence[Callable[[Batch], list[str]]]
) -> Iterator[str]:
    """``render.markdown_row`` of each row, the cells escaped a column at a time."""
    for batch in batches:
        columns = [render.markdown_cells(make(batch)) for make in makers]
        yield from ("| " + " | ".join(row) + " |" for row in zip(*columns, strict=True))


def _delimited(headers: list[str], rows: Iterable[list[str]], sep: str) -> Iterator[str]:
    """CSV/TSV text of ``headers`` then ``rows``, in pieces of 2,000 rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator="\n")
    writer.writerow(headers)
    for chunk in _batched(rows, 2000):
        writer.writerows(chunk)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _batched(rows: Iterable[list[str]], n: int) -> Iterator[list[list[str]]]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, n)):
        yield chunk


def _stream_table(
    runs: RunStream,
    attrs: list[str],
    value_cols: list[str],
    headers: list[str],
    facts: dict[str, ValueFacts],
    precision: int | None,
) -> None:
    """The terminal table of ``_print_table``, laid out from facts, then streamed: only
    the columns that fit are read."""
    attr_facts = runs.attribute_facts()
    n = attr_facts.rows
    widths: list[int] = []
    # SQL's length is a text's width only in printable ASCII (wide, combining and escaped
    # characters are not): texts are measured as printed, from their distinct values (few,
    # but for names and ids, which are measured so only when SQL finds such a character)
    attr_texts = _Texts(runs.attribute_texts)
    value_texts = _Texts(runs.value_texts)
    # run ids are printable ASCII (``RunRef.parse`` keeps no other ref): names are checked
    unusual = runs.unusual_attributes([a for a in attrs if a == "name"]) if n else ()
    for attr, header in zip(attrs, headers, strict=False):
        width = _attribute_width(attr_facts, attr)
        if attr in unusual or (n and attr not in _MANY | {"created", "end_time", "duration"}):
            width = attr_texts.widest(attr)
        widths.append(max(render.cells(header), width))
    headers = list(headers)
    for i, key in enumerate(value_cols, len(attrs)):
        shown = None
        if facts[key].text_width and facts[key].texts:
            shown = min(facts[key].text_width, render.MAX_CELL)
            if shown < render.MAX_CELL:  # no cell is wider than MAX_CELL
                # a text of printable ASCII is as wide as SQL's length says: of a column
                # of many texts (paths, hosts) only the others are read
                odd = functools.partial(runs.value_texts, unusual=True)
                shown = max(shown, value_texts.widest(key, odd))
        width = _value_width(runs, facts[key], key, n, precision, shown)
        # a long name over short values: shortened in the middle, as ``_print_table`` does
        headers[i] = render.clip_middle(headers[i], min(render.MAX_CELL, max(12, width)))
        widths.append(max(render.cells(headers[i]), width))
    one = n < 2  # with one row nothing differs, and everything is worth showing
    changed = [one or facts[k].changed for k in value_cols]
    drop = _drop_order(attrs, value_cols, changed)
    kept = render.fit_widths(widths, render.terminal_width(), drop)
    kept_widths = [widths[i] for i in kept]
    # right-aligned or not: asked of the kept columns only (each is a query over the runs)
    numeric = {
        i: _attribute_numeric(attr_texts, attrs[i])
        if i < len(attrs)
        else _value_numeric(
            value_texts, facts[value_cols[i - len(attrs)]], value_cols[i - len(attrs)]
        )
        for i in kept
    }
    lines = render.aligned_columns(kept_widths, [numeric[i] for i in kept])
    columns: list[Callable[[Batch], list[str]]] = []
    texts: list[tuple[int, int]] = []  # (position, width) of text cells: cleaned and cut
    kept_attrs: list[str] = []
    kept_keys: list[str] = []
    for pos, i in enumerate(kept):
        if i < len(attrs):
            columns.append(_attr_column(attrs[i]))
            kept_attrs.append(attrs[i])
            if attrs[i] not in ("created", "end_time", "duration"):
                texts.append((pos, widths[i]))
        else:
            key = value_cols[i - len(attrs)]
            kept_keys.append(key)
            value_facts = facts[key]
            whole = value_facts.present == n and not value_facts.nan
            floats = whole and not value_facts.text_width and key.startswith("metrics.")
            columns.append(_value_column(key, precision, floats))
            if not numeric[i]:
                texts.append((pos, widths[i]))
    clip = render.clip_column

    def block(batch: Batch) -> list[str]:
        """The lines of a batch of rows, laid out column by column."""
        cells = [column(batch) for column in columns]
        for pos, width in texts:
            cells[pos] = clip(cells[pos], width)
        return lines(cells) if cells else [""] * batch.size

    render.write([lines([[headers[i]] for i in kept])[0] if kept else ""])
    batches = runs.batches(_fields(kept_attrs), kept_keys)
    render.write(itertools.chain.from_iterable(map(block, batches)))
    _hidden_note([h for i, h in enumerate(headers) if i not in kept])


def _attr_column(key: str) -> Callable[[Batch], list[str]]:
    """``_attr`` of one column over a batch, times and durations formatted once per value."""
    if key in ("run_id", "status"):
        return lambda b: b.attributes[key]
    if key == "name":
        return lambda b: (
            b.attributes["name"]
            if not any(b.attributes["error"])  # no run of the batch failed to read
            else [
                f"! {e}" if e else n
                for n, e in zip(b.attributes["name"], b.attributes["error"], strict=True)
            ]
        )
    if key == "baseline":
        return (
            lambda b: (
                b.attributes["branch"]
                if all(b.attributes["branch"])  # every run of the batch has a branch
                else [
                    branch or (base or "-")[:7]
                    for branch, base in zip(
                        b.attributes["branch"], b.attributes["baseline"], strict=True
                    )
                ]
            )
        )
    if key == "commit":
        return lambda b: [c[:12] for c in b.attributes["commit"]]
    if key not in ("created", "end_time", "duration"):
        return lambda b: ["-" if v is None else str(v) for v in b.attributes[key]]
    field = {"created": "start", "end_time": "end", "duration": "duration"}[key]
    fmt: Callable[[float | None], str] = render.duration if key == "duration" else render.local_time
    seen: dict[float | None, str] = {}

    def text(value: float | None) -> str:
        if len(seen) > 100_000:
            seen.clear()
        out = seen[value] = fmt(value)
        return out

    def column(b: Batch) -> list[str]:
        return [seen.get(v) or text(v) for v in b.attributes[field]]

    return column


def _value_column(key: str, precision: int | None, floats: bool) -> Callable[[Batch], list[str]]:
    """``_cell`` of one column over a batch; a column of floats in every row (``floats``)
    formats them without the general path."""
    spec = f".{precision}g" if precision is not None else None
    # format(v, ".5g") of a float is "%.5g" % v: one C-level map over a column
    percent = None if spec is None else f"%{spec}".__mod__
    if floats and percent is not None:
        return lambda b: list(map(percent, b.values[key]))
    missing = "nan" if key.startswith("metrics.") else "null"  # the index keeps NaN as null
    number = render.number

    def get(value: Any) -> str:
        if spec is not None and type(value) is float and value - value == 0:
            return format(value, spec)
        if value is None:
            return missing
        if value is ABSENT:
            return "-"
        return number(value, precision)

    def column(b: Batch) -> list[str]:
        values = b.values[key]
        kinds = set(map(type, values))
        # one type in the whole batch: ``render.number``'s text of it, without a call a cell
        # (a float's text is its repr, "inf" and "nan" included; format's are the same)
        if kinds == {float}:
            return list(map(percent, values)) if percent else list(map(repr, values))
        if kinds == {str}:
            return list(values)
        if kinds == {int}:
            return list(map(str, values))
        return [get(v) for v in values]

    return column


_ABSENT = object()  # a missing value in ``_changed`` (the rows held in memory)


def _attribute_width(facts: AttributeFacts, attr: str) -> int:
    """The width of an attribute column over every run shown."""
    missing = facts.missing.get(attr, 0)
    if attr in ("created", "end_time"):
        width = 16 if facts.missing[attr] < facts.rows else 0  # "YYYY-MM-DD HH:MM"
        return max(width, 1 if missing else 0)
    if attr == "duration":
        width = len(render.duration(facts.longest)) if facts.longest is not None else 0
        return max(width, 1 if missing else 0)
    width = {
        "run_id": facts.run_id,
        "name": facts.name,
        "status": facts.status,
        "experiment": facts.experiment,
        "baseline": facts.baseline,
        "branch": facts.branch,
        "user": facts.user,
        "commit": 12,
    }[attr]
    return max(min(width, render.MAX_CELL), 1 if missing else 0)


_MANY = frozenset(("run_id", "name", "commit"))  # a text per run (commits: hex digits)


_FEW = 4096  # distinct texts of a column read at once, and kept when they are all


class _Texts:
    """The distinct texts of a column (``RunStream.attribute_texts``/``value_texts``),
    asked of SQL once per column."""

    def __init__(self, source: Callable[[str], Iterable[str]]) -> None:
        self.source = source
        self.seen: dict[str, list[str]] = {}

    def widest(self, column: str, odd: Callable[[str], Iterable[str]] | None = None) -> int:
        """``max(render.cells(render.clip(t)))`` over the column's texts (0 for none),
        a chunk at a time: a chunk of printable ASCII is measured by C-level calls, and
        the reading stops at ``MAX_CELL``, the widest a cell is cut to. The texts are kept
        for ``lazy`` when they are few. ``odd``: the column's texts that are not printable
        ASCII, read instead of the rest when the column has many texts (the caller knows
        the others are no wider than it needs)."""
        got = self.seen.get(column)
        texts = iter(self.source(column) if got is None else got)
        first = list(itertools.islice(texts, _FEW))
        if got is None and len(first) < _FEW:
            self.seen[column] = first  # every text: kept
        elif odd is not None:
            texts = iter(odd(column))
        texts = itertools.chain(first, texts)
        widest = 0
        while chunk := list(itertools.islice(texts, _FEW)):
            joined = "".join(chunk)
            if joined.isascii() and joined.isprintable():
                widest = max(widest, min(max(map(len, chunk)), render.MAX_CELL))
            else:
                widest = max(widest, *(render.cells(render.clip(t)) for t in chunk))
            if widest >= render.MAX_CELL:
                break
        return widest

    def lazy(self, column: str) -> Iterable[str]:
        """The texts read already, else read one at a time (a check that stops at the
        first text that says no reads no more of 100,000 names)."""
        return self.seen.get(column) or self.source(column)


def _attribute_numeric(texts: _Texts, attr: str) -> bool:
    """Whether an attribute column is right-aligned (every cell reads as a number)."""
    if attr in ("created", "end_time", "duration"):
        return False
    return _numeric_column(render.clip(t) for t in texts.lazy(attr))


def _value_width(
    runs: RunStream,
    facts: ValueFacts,
    key: str,
    rows: int,
    precision: int | None,
    texts: int | None = None,
) -> int:
    """The width of a value column over every run shown (``texts``: that of its cells
    that are not floats, when known better than SQL's length)."""
    number = facts.number_width
    if precision is not None and precision > 15:  # beyond what SQLite's printf matches
        number = max((len(render.number(v, precision)) for v in runs.value_numbers(key)), default=0)
    return max(
        number,
        min(facts.text_width, render.MAX_CELL) if texts is None else texts,
        3 if facts.nan else 0,
        1 if facts.present < rows else 0,
    )


def _value_numeric(texts: _Texts, facts: ValueFacts, key: str) -> bool:
    """Whether a value column is right-aligned (every cell reads as a number)."""
    return (
        facts.present > 0
        and facts.text_width <= render.MAX_CELL
        # a column of numbers only has no text to read (a query over every run's cell)
        and (not facts.texts or _all_numeric(texts.lazy(key)))
    )


def _all_numeric(texts: Iterable[str]) -> bool:
    return all(render.is_numeric(t) for t in texts)


def _numeric_column(texts: Iterable[str]) -> bool:
    """``render.table``'s rule: every cell reads as a number, and not every cell is "-"."""
    shown = False
    for text in texts:
        if not render.is_numeric(text):
            return False
        shown = shown or text != "-"
    return shown


def _drop_order(attrs: list[str], value_cols: list[str], changed: list[bool]) -> list[int]:
    """Columns to drop first to last when the table is too wide (docs/show-diff.md):
    unchanged params and metrics from the right, then baseline, duration and created, then
    changed params from the right, then changed metrics from the right; id, name and status
    stay. What differs between runs is what a comparison is for."""
    n_attr = len(attrs)
    values_idx = range(n_attr, n_attr + len(value_cols))
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
    return unchanged + fixed + changed_params + changed_metrics


def _hidden_note(hidden: list[str]) -> None:
    if hidden:
        n = len(hidden)
        names = ", ".join(hidden[:5]) + (", ..." if n > 5 else "")
        render.echo(
            f"+{n} column{'s' if n > 1 else ''} hidden to fit the terminal ({names}):"
            " pick with --columns, or see all with --format md.",
            err=True,
        )


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
    drop = _drop_order(attrs, value_cols, changed)
    fitted = _fit(headers, rows, render.terminal_width(), drop)
    render.echo(render.table(fitted.headers, fitted.rows))
    _hidden_note(fitted.hidden)
