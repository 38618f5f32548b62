"""``xp report`` and ``xp diff --html``: runs in one self-contained HTML file.

The file carries the front end's modules (bundled into one inline script), its stylesheet and
the data, as a JSON blob in exactly the shapes of the UI's API (``documents``): the runs, their
details, their series (thinned by M4 for display), images and text artifacts as data URIs, the
code diff of the first two runs and the history of the first run's branch. It needs no network
and no server: its Content-Security-Policy forbids every fetch, and allows only its own script
(by hash). The same runs give the same bytes: no clock, no random, sorted JSON, files read in a
fixed order.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xp.errors import InvalidValueError, RunNotFoundError, XPError
from xp.gitstore.repo import GitRepo
from xp.query.search import select_runs
from xp.ui import artifacts as art
from xp.ui.bundle import bundle, read_static
from xp.ui.documents import Source
from xp.ui.series import Window

ENTRY = "report.js"
INLINE_KINDS = ("image", "text", "markdown", "csv")
MAX_INLINE = 512 * 1024  # one artifact, before base64
INLINE_BUDGET = 1024 * 1024  # all artifacts of a report
SERIES_BUDGET = 240_000  # points of all series together (~20 bytes each in JSON)
MAX_SERIES_POINTS = 2000
MIN_SERIES_POINTS = 200


@dataclass(frozen=True)
class Report:
    html: bytes
    runs: list[str]  # the run ids, in the report's order


def build_data(
    source: Source,
    specs: Sequence[str],
    *,
    title: str | None = None,
    diff: bool = True,
    history: bool = True,
) -> dict[str, Any]:
    """The report's JSON: runs, details, series, diff, history (the API's shapes)."""
    if not specs:
        raise InvalidValueError("name at least one run to report (list runs with `xp show`)")
    ids = list(dict.fromkeys(source.run_row(spec).run_id for spec in specs))
    rows = source.runs_by_id(ids)["rows"]
    details = {}
    budget = INLINE_BUDGET
    for run_id in ids:
        detail = source.run(run_id)
        for entry in detail["artifacts"]:
            url, budget = _inline(source, run_id, entry, budget)
            entry["url"] = url
        detail["log"] = None
        details[run_id] = detail
    metrics = source.metrics(ids)["metrics"]
    n_series = sum(len(m["runs"]) for m in metrics) or 1
    points = max(MIN_SERIES_POINTS, min(MAX_SERIES_POINTS, SERIES_BUDGET // n_series))
    series = source.series_of(ids, [], Window(points=points))["series"]
    target = _target(rows)
    data: dict[str, Any] = {
        "kind": "xp-report",
        "version": 1,
        "title": title or "xp report: " + ", ".join(r["name"] for r in rows),
        "subtitle": "runs " + ", ".join(ids),
        "footer": f"Made by xp report (xp {source.meta()['xp_version']}). Self-contained:"
        " open it anywhere, no network needed.",
        "runs": rows,
        "details": details,
        "series": series,
        "diff": source.diff(ids[0], ids[1]) if diff and len(ids) > 1 and _recorded(rows) else None,
        "history": None,
        "target": target,
    }
    branch = rows[0].get("branch")
    if history and target and branch:
        try:
            data["history"] = source.history(branch=branch, metric=f"metrics.{target}", limit=100)
        except XPError:
            data["history"] = None  # the branch is gone here: a report without that section
    return data


def _recorded(rows: list[dict[str, Any]]) -> bool:
    return all(r.get("commit") for r in rows[:2])


def _target(rows: list[dict[str, Any]]) -> str | None:
    """The metric every run has, for parallel coordinates and history: the first by name."""
    common = set.intersection(*(set(r.get("metrics") or {}) for r in rows)) if rows else set()
    return sorted(common)[0] if common else None


def _inline(
    source: Source, run_id: str, entry: dict[str, Any], budget: int
) -> tuple[str | None, int]:
    """A data: URI for an image or text artifact small enough to carry, and the budget left."""
    size = int(entry.get("size") or 0)
    if (
        entry.get("kind") not in INLINE_KINDS
        or entry.get("path") == art.RUN_LOG
        or not entry.get("available")
        or size > MAX_INLINE
        or size > budget
    ):
        return None, budget
    try:
        _, opened = source.artifact(run_id, str(entry["path"]))
    except XPError:
        return None, budget
    data = b"".join(opened.chunks())
    mime = art.content_type(str(entry["path"])).split(";")[0]
    return f"data:{mime};base64," + base64.b64encode(data).decode(), budget - len(data)


def json_for_html(obj: Any) -> str:
    """Sorted, ASCII JSON that cannot end or confuse the <script> element it sits in."""
    text = json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(data: dict[str, Any]) -> bytes:
    """The HTML file for ``data``: modules, stylesheet and data inline; a CSP allowing only
    this script (by its hash), inline styles and data: images."""
    js = bundle(ENTRY)
    css = read_static("vendor/uPlot.min.css") + "\n" + read_static("app.css")
    script = "\n" + js  # exactly the text between <script> and </script>
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data: blob:; style-src 'unsafe-inline';"
        f" script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    title = html.escape(str(data.get("title") or "xp report"))
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{title}</title>\n<style>\n{css}\n</style>\n</head>\n"
        '<body class="xp-report">\n'
        '<div id="app"><p class="boot muted">This report needs JavaScript to draw its'
        " charts.</p></div>\n"
        f'<script type="application/json" id="xp-data">{json_for_html(data)}</script>\n'
        f"<script>{script}</script>\n</body>\n</html>\n"
    )
    return page.encode("utf-8")


def make_report(
    repo: GitRepo,
    *,
    runs: Sequence[str] = (),
    where: str | None = None,
    sort: Sequence[str] = (),
    limit: int = 10,
    title: str | None = None,
    diff: bool = True,
    history: bool = True,
) -> Report:
    """The report of ``runs`` (ids, prefixes, names: what ``xp show`` resolves), then of the
    recorded runs ``where`` selects (``xp show --where``, in ``sort`` order, at most
    ``limit``): a report shows finished work, so running runs are left out."""
    chosen = list(runs)
    if where is not None or not chosen:
        selection = select_runs(repo, where=where, sort=sort, limit=limit, live=False)
        chosen += [r.run_id for r in selection.rows if r.run_id not in chosen]
    if not chosen:
        raise RunNotFoundError(
            "no run to report: name runs, or a --where filter that matches some (see `xp show`)"
        )
    source = Source(repo)
    data = build_data(source, chosen, title=title, diff=diff, history=history)
    return Report(render(data), [r["run_id"] for r in data["runs"]])
