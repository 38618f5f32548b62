"""``xp diff [A] [B]``: params, metrics, series, tags, data, artifacts and code of two runs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.config import human_size
from xp.errors import InvalidValueError
from xp.fsutil import atomic_write
from xp.gitstore.repo import GitRepo
from xp.production.compare import VersionDiff, diff_versions
from xp.query.diff import RunDiff, SeriesSummary, Side, latest_on_head

Table = tuple[str, list[str], list[list[str]]]


def _value(has: bool, value: Any, precision: int | None) -> str:
    return render.number(value, precision) if has else "-"


def _signed(value: float | None, precision: int | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    text = render.number(value, precision)
    return text if text.startswith("-") or text in ("0", "0.0") else "+" + text


def _percent(rel: float | None) -> str:
    if rel is None or math.isnan(rel):
        return ""
    if math.isinf(rel):
        return "+inf%" if rel > 0 else "-inf%"
    return f"{rel * 100:+.1f}%"


def _best(s: SeriesSummary | None, precision: int | None) -> list[str]:
    if s is None:
        return ["-", "-", "-", "-"]
    best = f"{render.number(s.best, precision)} @{s.best_step}"
    return [render.number(x, precision) for x in (s.last, s.min, s.max)] + [best]


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


def _size(size: int | None) -> str:
    return "-" if size is None else f"{size:,}"


def tables(d: RunDiff, precision: int | None) -> list[Table]:
    """(title, headers, rows) for every non-empty section of a diff."""
    out: list[Table] = []
    p = precision
    if d.params:
        rows = [[c.key, _value(c.a_has, c.a, p), _value(c.b_has, c.b, p)] for c in d.params]
        out.append(("params", ["param", "A", "B"], rows))
    if d.metrics:
        rows = [
            [
                c.key,
                _value(c.a_has, c.a, p),
                _value(c.b_has, c.b, p),
                _signed(c.delta, p),
                _percent(c.rel),
            ]
            for c in d.metrics
        ]
        out.append(("metrics", ["metric", "A", "B", "change", "rel"], rows))
    if d.series:
        head = ["series", "A last", "A min", "A max", "A best"]
        head += ["B last", "B min", "B max", "B best"]
        rows = [[c.key, *_best(c.a, p), *_best(c.b, p)] for c in d.series]
        out.append(("series (best = min for loss/error-like names, else max)", head, rows))
    if d.tags:
        rows = [[c.key, _value(c.a_has, c.a, None), _value(c.b_has, c.b, None)] for c in d.tags]
        out.append(("tags", ["tag", "A", "B"], rows))
    if d.inputs:
        rows = [[f.path, f.status, _short(f.a_sha256), _short(f.b_sha256)] for f in d.inputs]
        out.append(("data inputs", ["input", "status", "A sha256", "B sha256"], rows))
    if d.artifacts:
        rows = [[f.path, f.status, _size(f.a_size), _size(f.b_size)] for f in d.artifacts]
        out.append(("artifacts", ["artifact", "status", "A bytes", "B bytes"], rows))
    if d.code:
        rows = [
            [c.path, c.status, "bin" if c.added is None else f"+{c.added}", _minus(c.removed)]
            for c in d.code
        ]
        out.append((_code_title(d), ["file", "status", "+", "-"], rows))
    return out


def production_table(d: VersionDiff, precision: int | None) -> Table | None:
    """The production figures of the sides that are model versions."""
    if not d.production:
        return None
    p = precision
    rows = []
    for c in d.production:
        a, b = c.a, c.b
        rows.append(
            [
                c.stage,
                c.metric,
                str(a.n) if a else "0",
                render.number(a.last, p) if a else "-",
                render.number(a.mean, p) if a else "-",
                str(b.n) if b else "0",
                render.number(b.last, p) if b else "-",
                render.number(b.mean, p) if b else "-",
                _signed(c.delta, p),
            ]
        )
    title = f"production (A = {d.a_version or '-'}, B = {d.b_version or '-'})"
    head = ["stage", "metric", "A points", "A last", "A mean", "B points", "B last", "B mean"]
    return (title, [*head, "mean change"], rows)


def _minus(removed: int | None) -> str:
    return "bin" if removed is None else f"-{removed}"


def _code_title(d: RunDiff) -> str:
    added = sum(c.added or 0 for c in d.code)
    removed = sum(c.removed or 0 for c in d.code)
    n = len(d.code)
    return f"code: {n} file{'s' if n != 1 else ''} changed, +{added} -{removed}"


def _describe(s: Side) -> str:
    if s.record is None:
        return "workspace (params/metrics files and working tree, not recorded)"
    commit = (s.commit or "")[:12]
    return f"{s.record.id}  {s.record.name}  {s.record.status}  commit {commit}"


def _notes(d: RunDiff, show_all: bool) -> list[str]:
    notes = []
    for label, s in (("A", d.a), ("B", d.b)):
        if s.others:
            older = ", ".join(s.others[:3]) + (" ..." if len(s.others) > 3 else "")
            notes.append(
                f"note: {len(s.others) + 1} runs are named {s.label!r}; {label} is the newest,"
                f" {s.run_id} (older: {older})"
            )
    if d.recorded_only:
        notes.append("note: tags, series, data inputs and artifacts are compared between runs only")
    return notes


def render_text(d: RunDiff, precision: int | None, show_all: bool, width: int) -> str:
    parts = [f"A  {_describe(d.a)}", f"B  {_describe(d.b)}"]
    if d.same:
        return "\n".join([*parts, "", "A and B are the same run: nothing differs."])
    shown = d if show_all else d.changes()
    sections = tables(shown, precision)
    for title, headers, rows in sections:
        clipped = [[render.clip(c, 40) for c in r] for r in rows]
        fitted = render.fit(headers, clipped, width, list(range(len(headers) - 1, 0, -1)))
        parts += ["", title, render.table(fitted.headers, fitted.rows)]
    if not sections:
        parts += ["", "no differences" + ("" if show_all else " (--all lists unchanged rows)")]
    return "\n".join(parts)


def render_md(d: RunDiff, precision: int | None, show_all: bool) -> str:
    def who(s: Side) -> str:
        if s.record is None:
            return "the workspace"
        run = f"`{s.record.id}` ({s.record.name})"
        best = " (best run)"
        return f"the best run of {s.label[: -len(best)]}, {run}" if s.label.endswith(best) else run

    parts = [f"**xp diff**: A = {who(d.a)}, B = {who(d.b)}"]
    if d.same:
        return parts[0] + "\n\nA and B are the same run: nothing differs."
    sections = tables(d if show_all else d.changes(), precision)
    for title, headers, rows in sections:
        parts += ["", f"#### {title}", "", render.markdown(headers, rows)]
    if not sections:
        parts += ["", "No differences."]
    return "\n".join(parts)


@click.command()
@click.argument("a", required=False)
@click.argument("b", required=False)
@click.option("--all", "show_all", is_flag=True, help="List unchanged rows too.")
@click.option("--code", is_flag=True, help="Print the code patch too (record folder excluded).")
@click.option("--md", "as_md", is_flag=True, help="Markdown, ready to paste into a pull request.")
@click.option("--json", "as_json", is_flag=True, help="The whole diff as JSON.")
@click.option(
    "-m",
    "--metric",
    metavar="NAME",
    help="With BASE...TIP: the metric that picks each side's best run (default: the newest).",
)
@click.option(
    "--html",
    "as_html",
    is_flag=True,
    help="A self-contained HTML page (charts, tables, highlighted code diff) of runs A and B.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --html: write the page to this file instead of stdout.",
)
@click.option(
    "-p",
    "--precision",
    type=click.IntRange(1, 17),
    default=6,
    show_default=True,
    help="Significant digits of floats (text and Markdown).",
)
def diff(
    a: str | None,
    b: str | None,
    show_all: bool,
    code: bool,
    as_md: bool,
    as_json: bool,
    metric: str | None,
    as_html: bool,
    output: Path | None,
    precision: int,
) -> None:
    """Compare runs A and B: params, metrics, series, tags, data, artifacts, code.

    A and B are run ids, id prefixes, names, refs, commits or branches whose tip carries a
    run record, or 'workspace'; or model versions (NAME@v1.2.0, NAME@STAGE, NAME@latest),
    whose production figures are compared too. Default A: the latest run on HEAD; default
    B: the workspace. A alone may be BASE...TIP (e.g. main...HEAD): the best run where TIP
    forked from BASE against the best run on TIP's own commits, as a pull request compares.
    """
    repo = open_repo()
    if output is not None and not as_html:
        raise InvalidValueError("-o/--output goes with --html: xp diff A B --html -o diff.html")
    if as_html:
        _html(repo, a, b, output)
        return
    versions = diff_versions(repo, a=a, b=b, metric=metric)
    result = versions.runs
    for note in _notes(result, show_all):
        render.echo(note, err=True)
    patch = result.patch() if code and not result.same else ""
    production = production_table(versions, precision)
    if as_json:
        data = versions.to_dict((result if show_all else result.changes()).to_dict())
        if code:
            data["patch"] = patch
        render.echo(render.to_json(data), exact=True)
        return
    if as_md:
        text = render_md(result, precision, show_all)
        if production:
            title, headers, rows = production
            text += f"\n\n#### {title}\n\n" + render.markdown(headers, rows)
        if patch:
            text += "\n\n<details><summary>patch</summary>\n\n```diff\n" + patch + "```\n</details>"
        render.echo(text, exact=True)
        return
    render.echo(render_text(result, precision, show_all, render.terminal_width()))
    if production:
        title, headers, rows = production
        # narrow terminals lose the point counts first, then the last values; means stay
        fitted = render.fit(headers, rows, render.terminal_width(), [2, 5, 3, 6])
        render.echo(f"\n{title}\n" + render.table(fitted.headers, fitted.rows))
    if patch:
        render.echo("")
        render.echo(patch, nl=False, exact=True)


def _html(repo: GitRepo, a: str | None, b: str | None, output: Path | None) -> None:
    from xp.ui.report import make_report

    if b is None or "workspace" in (a, b):
        raise InvalidValueError(
            "--html compares two recorded runs (not the workspace); name them: xp diff A B --html"
        )
    first = a if a is not None else latest_on_head(repo)
    made = make_report(repo, runs=[first, b], title=f"xp diff: {first} \u2192 {b}")
    if len(made.runs) < 2:
        raise InvalidValueError(f"{first!r} and {b!r} are the same run: nothing to compare")
    if output is None:
        render.echo(made.html.decode("utf-8"), nl=False, exact=True)
        return
    atomic_write(output, made.html)
    render.echo(f"{output}: {human_size(len(made.html))}")
