"""The pages in a real browser (Debian's Chromium, headless) against a real ``xp ui``: the
table and its filter, charts drawn in the runs' colours, the comparison, images, a live run
gaining points, hostile data staying text, keyboard use, and a report opened from file://
with the network off. Each page is saved as a screenshot under test-artifacts/."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import trainer
from tests.ui.project import (
    HOSTILE_ID,
    HOSTILE_NAME,
    MODEL_NOTE,
    PIXELS_JS,
    Project,
    XpUi,
    chromium,
    console_errors,
    register_models,
    screenshot,
    wait_js,
    xp_ui,
)

pytestmark = pytest.mark.browser

Q = urllib.parse.quote
ROWS = "return [...document.querySelectorAll('.rt-row[data-id]')].filter(e => !e.hidden)"
NAMES = ROWS + ".map(e => e.querySelector('.rt-name').textContent)"
COUNT = "const e = document.getElementById('runs-count'); return e ? e.textContent : null"
# Any sign that data became markup or script: an element the hostile texts would create, a
# javascript: link, a variable their scripts set, a CSP report.
INJECTED = """
const made = 'img[src="x"], svg[onload], b[onmouseover], #app script';
const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
return {
  xss: window.__xss === undefined ? null : window.__xss,
  elements: document.querySelectorAll(made).length,
  jsLinks: links.filter(h => /^\\s*javascript:/i.test(h)).length,
  csp: window.__cspViolations || [],
};
"""
CLEAN = {"xss": None, "elements": 0, "jsLinks": 0, "csp": []}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


def open_page(driver: Any, server: XpUi, hash_: str) -> None:
    """Load the app at ``#hash_`` with a clean session (no selection, no saved colours)."""
    driver.get(server.url + "#/runs?q=" + Q("name = 'none'"))
    driver.execute_script("sessionStorage.clear(); localStorage.clear();")
    driver.get("about:blank")
    driver.get_log("browser")  # what earlier pages logged is theirs
    driver.get(server.url + "#" + hash_)


def test_the_table_shows_runs_and_the_filter_narrows_them(
    browser: Any, ui_server: XpUi, ui_project: Project
) -> None:
    open_page(browser, ui_server, "/runs")
    names = wait_js(
        browser, f"const n = (() => {{ {NAMES} }})(); return n.length >= 6 ? n : null", "rows"
    )
    assert names[:5] == ["art", "big", "gamma", "beta", "alpha"]
    assert HOSTILE_NAME in names  # shown as the text it is
    assert "6 of 6 runs" in browser.execute_script(COUNT)
    screenshot(browser, "ui-runs.png")
    box = browser.find_element("css selector", ".fb-input")
    box.send_keys("params.model = 'cnn'\n")
    narrowed = wait_js(
        browser, f"const n = (() => {{ {NAMES} }})(); return n.length === 2 ? n : null", "2 rows"
    )
    assert narrowed == ["beta", "alpha"]
    assert browser.execute_script(COUNT).startswith("2 of 6 runs")
    screenshot(browser, "ui-runs-filtered.png")
    box.clear()
    box.send_keys("metrics.accc > 0.5\n")
    error = wait_js(
        browser,
        "const e = document.querySelector('.fb-error'); return e && !e.hidden ? "
        "e.textContent : null",
        "the filter error",
    )
    assert "no run has a column 'metrics.accc'" in error
    assert (
        browser.execute_script("return document.querySelector('.fb-where mark').textContent")
        == "metrics.accc"
    )
    screenshot(browser, "ui-runs-filter-error.png")
    browser.execute_script(
        "[...document.querySelectorAll('.fb-sugg .chip')].find(c => c.textContent === "
        "'metrics.acc').click()"
    )
    fixed = wait_js(
        browser,
        "const e = document.querySelector('.fb-error'); return e.hidden ? "
        "document.querySelector('.fb-input').value : null",
        "the suggestion applied",
    )
    assert fixed == "metrics.acc > 0.5"
    assert not browser.execute_script("return document.querySelector('.table-wrap.stale')")
    # one word that is no column: the rows shown are marked as the previous filter's, and
    # a search of the names is offered
    box.clear()
    box.send_keys("alph\n")
    wait_js(browser, "return document.querySelector('.table-wrap.stale')", "the rows dimmed")
    assert "previous filter" in browser.execute_script(COUNT)
    browser.execute_script(
        "[...document.querySelectorAll('.fb-sugg .chip')].find(c => c.textContent === "
        "\"name like '%alph%'\").click()"
    )
    found = f"const n = (() => {{ {NAMES} }})(); return n.length === 1 ? n : null"
    assert wait_js(browser, found, "the runs named like it") == ["alpha"]
    assert not browser.execute_script("return document.querySelector('.table-wrap.stale')")
    assert browser.execute_script(INJECTED) == CLEAN


def test_grouping_sorting_columns_and_the_keyboard(browser: Any, ui_server: XpUi) -> None:
    open_page(browser, ui_server, "/runs?group=experiment&q=" + Q("params.model is not null"))
    groups = wait_js(
        browser,
        "const g = [...document.querySelectorAll('.rt-row.is-group .rt-glabel')].map(e => "
        "e.textContent); return g.length ? g : null",
        "group headers",
    )
    assert groups == ["base", "other"]
    screenshot(browser, "ui-runs-grouped.png")
    open_page(browser, ui_server, "/runs?sort=params.lr&q=" + Q("params.model is not null"))
    ordered = wait_js(
        browser, f"const n = (() => {{ {NAMES} }})(); return n.length === 3 ? n : null", "3 rows"
    )
    assert ordered == ["gamma", "beta", "alpha"]
    scroller = browser.find_element("css selector", ".rt-scroll")
    scroller.click()
    from selenium.webdriver.common.keys import Keys

    scroller.send_keys(Keys.HOME, Keys.ARROW_DOWN, " ")  # the second row, selected
    selected = wait_js(
        browser,
        "const s = JSON.parse(sessionStorage.getItem('xp.selection') || '[]'); return "
        "s.length ? s : null",
        "a selection",
    )
    assert len(selected) == 1
    cursor = browser.execute_script(
        "return document.querySelector('.rt-row.is-cursor .rt-name').textContent"
    )
    assert cursor == "beta"
    scroller.send_keys(Keys.ENTER)
    wait_js(browser, "return location.hash.startsWith('#/run/') || null", "the run page")
    assert selected[0] in browser.current_url


HEADERS = "return [...document.querySelectorAll('.rt-header .rt-th')].map(e => e.dataset.col)"


def test_only_columns_that_differ_is_kept_in_the_link(browser: Any, ui_server: XpUi) -> None:
    """``?diff=1`` opens the table with only the columns that differ (a link shared with it
    shows what its sender saw), and the checkbox writes it back to the link."""
    q = Q("params.model is not null")
    open_page(browser, ui_server, f"/runs?diff=1&q={q}")
    cols = wait_js(
        browser,
        f"const c = (() => {{ {HEADERS} }})(); return c.includes('params.lr') ? c : null",
        "the columns",
    )
    assert "params.epochs" not in cols  # 3 in all three runs
    assert browser.execute_script("return document.getElementById('only-diff').checked")
    assert "diff=1" in browser.current_url
    # the link's choice is not saved as this browser's
    saved = browser.execute_script("return localStorage.getItem('xp.table')")
    assert saved is None or '"onlyDiffering":true' not in saved
    browser.find_element("css selector", "#only-diff").click()
    wait_js(browser, f"return (() => {{ {HEADERS} }})().includes('params.epochs') || null", "all")
    assert "diff=" not in browser.current_url
    browser.find_element("css selector", "#only-diff").click()
    wait_js(
        browser, f"return !(() => {{ {HEADERS} }})().includes('params.epochs') || null", "fewer"
    )
    assert "diff=1" in browser.current_url
    open_page(browser, ui_server, f"/runs?q={q}")  # no link choice, nothing saved: all columns
    cols = wait_js(
        browser,
        f"const c = (() => {{ {HEADERS} }})(); return c.includes('params.lr') ? c : null",
        "the columns",
    )
    assert "params.epochs" in cols


def test_three_selected_runs_are_charted_in_their_colours(
    browser: Any, ui_server: XpUi, ui_project: Project
) -> None:
    open_page(browser, ui_server, "/runs?q=" + Q("params.model is not null"))
    wait_js(browser, f"return (() => {{ {ROWS} }})().length === 3 || null", "3 rows")
    for i in range(3):
        browser.execute_script(
            "document.querySelectorAll('.rt-row[data-id] .rt-check')[arguments[0]].click()", i
        )
    bar = wait_js(
        browser,
        "const b = document.querySelector('.selbar'); return b && !b.hidden ? b.textContent : null",
        "the selection bar",
    )
    assert "3 selected" in bar
    screenshot(browser, "ui-runs-selected.png")
    browser.execute_script(
        "[...document.querySelectorAll('.selbar a')].find(a => a.textContent === 'Charts').click()"
    )
    wait_js(
        browser,
        "const c = window.__xpApp.current.charts; const l = c && c.get('loss'); return l && "
        "l.list.length === 3 && l.chart.u ? true : null",
        "the loss chart with 3 runs",
    )
    colours = browser.execute_script(
        "return [...document.querySelectorAll('.run-item')].map(e => "
        "[e.querySelector('.run-item-name').textContent,"
        " getComputedStyle(e.querySelector('.dot')).backgroundColor])"
    )
    assert len(colours) == 3
    for name, css in colours:
        r, g, b = (int(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
        hex_ = f"#{r:02x}{g:02x}{b:02x}"
        drawn = wait_js(
            browser, PIXELS_JS, f"{name}'s line in {hex_}", 30, ".chart-card canvas", hex_, 8
        )
        assert drawn > 50, (name, hex_, drawn)
    assert len({c for _, c in colours}) == 3  # three different colours
    screenshot(browser, "ui-charts.png")
    # smoothing and log scale redraw without errors; hovering shows the runs' values
    browser.execute_script(
        "const s = document.querySelector('input[type=range]'); s.value = '0.8'; "
        "s.dispatchEvent(new Event('input'))"
    )
    browser.execute_script("document.querySelector('.toolbar input[type=checkbox]').click()")
    from selenium.webdriver.common.action_chains import ActionChains

    wait_js(
        browser,
        "return [...window.__xpApp.current.charts.values()].every(c => "
        "c.chart.opts.smoothing === 0.8"
        " && c.chart.opts.logY && c.chart.u) || null",
        "smoothing and log applied",
    )
    over = browser.find_elements("css selector", ".chart-card .u-over")[-1]
    ActionChains(browser).move_to_element_with_offset(over, 10, 0).perform()
    tip = wait_js(
        browser,
        "const t = [...document.querySelectorAll('.chart-tip')].find(t => !t.hidden); return "
        "t ? t.textContent : null",
        "a tooltip",
    )
    assert any(name in tip for name in ("alpha", "beta", "gamma"))
    screenshot(browser, "ui-charts-smoothed-log.png")
    assert console_errors(browser) == []


def test_the_comparison_shows_what_differs_and_the_code(
    browser: Any, ui_server: XpUi, ui_project: Project
) -> None:
    ids = ",".join(ui_project.ids[n] for n in ("alpha", "gamma"))
    open_page(browser, ui_server, f"/compare?runs={ids}")
    wait_js(
        browser,
        "return document.querySelectorAll('.diff-table tr').length > 2 || null",
        "the code diff",
    )
    differing = browser.execute_script(
        "return [...document.querySelectorAll('.cmp tr.diff th')].map(e => e.textContent)"
    )
    assert "lr" in differing
    assert "model" in differing
    assert "epochs" not in differing  # the same in both: hidden by 'only rows that differ'
    created = browser.execute_script(
        "const r = [...document.querySelectorAll('.cmp tr')].find(t => t.querySelector('th')"
        " && t.querySelector('th').textContent === 'created');"
        " return r ? [...r.querySelectorAll('td')].map(e => e.textContent) : null"
    )
    # times differ to the millisecond: the row counts as differing when what it shows does
    assert ("created" in differing) == (created is not None and len(set(created)) > 1)
    added = browser.execute_script(
        "return [...document.querySelectorAll('.diff-table tr.add')].map(e => e.textContent)"
    )
    assert any("model = 'mlp'" in a for a in added)
    assert (
        browser.execute_script(
            "return document.querySelectorAll('.diff-table .t-str, .diff-table .t-num').length"
        )
        > 0
    )
    screenshot(browser, "ui-compare.png")


def test_a_run_page_shows_its_images_and_texts(
    browser: Any, ui_server: XpUi, ui_project: Project
) -> None:
    open_page(browser, ui_server, f"/run/{ui_project.ids['art']}")
    images = wait_js(
        browser,
        "const i = [...document.querySelectorAll('.preview img')].filter(i => i.complete && "
        "i.naturalWidth > 0);"
        " return i.length >= 4 ? i.map(x => x.getAttribute('alt')) : null",
        "4 images decoded",
    )
    assert sorted(images) == [
        "images/blue.gif",
        "images/green.jpg",
        "images/orange.svg",
        "images/red.png",
    ]
    wait_js(
        browser,
        "return document.querySelector('.md h1') && document.querySelector('.csv-table') || null",
        "markdown and csv",
    )
    assert browser.execute_script("return document.querySelector('.md h1').textContent") == "Notes"
    cells = browser.execute_script(
        "return [...document.querySelectorAll('.csv-table td')].map(e => e.textContent)"
    )
    assert "<b>2</b>" in cells  # CSV cells are text
    texts = browser.execute_script(
        "return [...document.querySelectorAll('.preview pre.text')].map(e => e.textContent)"
    )
    assert "<script>window.__xss=11</script>\n" in texts
    links = browser.execute_script(
        "return [...document.querySelectorAll('.art-list a')].map(a => a.textContent)"
    )
    assert "blob.bin" in links
    assert browser.execute_script(INJECTED) == CLEAN
    screenshot(browser, "ui-run.png")
    open_page(browser, ui_server, "/history?branch=main&metric=metrics.acc")
    wait_js(
        browser, "return document.querySelector('.history-box canvas') || null", "the history chart"
    )
    info = wait_js(
        browser,
        "const e = document.querySelector('.history-box + .muted'); return e && "
        "e.textContent || null",
        "history info",
    )
    assert "3 commits on main" in info
    screenshot(browser, "ui-history.png")


def test_hostile_values_are_text_everywhere(browser: Any, ui_server: XpUi) -> None:
    open_page(browser, ui_server, "/runs?q=" + Q(f"run_id = '{HOSTILE_ID}'"))
    names = wait_js(
        browser, f"const n = (() => {{ {NAMES} }})(); return n.length ? n : null", "the hostile row"
    )
    assert names == [HOSTILE_NAME]
    assert browser.execute_script(INJECTED) == CLEAN
    screenshot(browser, "ui-runs-hostile.png")
    open_page(browser, ui_server, f"/run/{HOSTILE_ID}")
    wait_js(
        browser,
        "return document.querySelectorAll('.art-list tr').length >= 5 || null",
        "the artifact list",
    )
    text = browser.execute_script("return document.getElementById('app').textContent")
    for shown in (
        HOSTILE_NAME,
        "<script>window.__xss=2</script>",
        "<b onmouseover=window.__xss=3>p</b>",
        "<script>window.__xss=4</script>",
        "<svg onload=window.__xss=6>",
        "<img src=x onerror=window.__xss=7>.txt",
        "../../../../etc/passwd",
    ):
        assert shown in text, shown
    assert browser.execute_script(INJECTED) == CLEAN
    screenshot(browser, "ui-run-hostile.png")
    open_page(browser, ui_server, f"/compare?runs={HOSTILE_ID}")
    wait_js(browser, "return document.querySelector('.cmp') || null", "the comparison")
    assert browser.execute_script(INJECTED) == CLEAN


CELLS = (
    "return [...document.querySelectorAll(arguments[0])]"
    ".map(r => [...r.cells].map(c => c.textContent))"
)


def test_the_models_page_lists_the_registry_and_follows_it(browser: Any, repo: Path) -> None:
    project = Project(repo, dict(os.environ), {})
    with xp_ui(project) as server:
        open_page(browser, server, "/models")
        empty = "const e = document.getElementById('models-empty'); return e && e.textContent"
        assert "xp model register NAME RUN" in wait_js(browser, empty, "the empty registry")
        tab = browser.execute_script("return document.querySelector('.tab.active').textContent")
        assert tab == "Models"  # a page of its own now, no "soon" badge
        ids = register_models(repo)  # the page open on the empty registry shows them
        rows = wait_js(
            browser,
            f"const r = (() => {{ {CELLS} }})(); return r.length ? r : null",
            "the models table",
            30,
            ".models-list tbody tr",
        )
        headers = browser.execute_script(CELLS, ".models-list thead tr")[0]
        assert headers[:4] == ["name", "latest", "#production", "#staging"]
        churn, fraud = rows
        assert churn[:5] == ["churn", "v0.0.2", "v0.0.1", "v0.0.2", "second"]  # the run's name
        assert "rmse=0.25" in churn[5]
        assert fraud[:4] == ["team/fraud", "v1.0.0", "-", "-"]
        run_link = browser.execute_script(
            "return document.querySelector('.models-list tbody tr a.mono').getAttribute('href')"
        )
        assert run_link == f"#/run/{ids['second']}"
        screenshot(browser, "ui-models.png")

        browser.execute_script("document.querySelector('.models-list tbody tr td.muted').click()")
        versions = wait_js(
            browser,
            f"const r = (() => {{ {CELLS} }})(); return r.length === 3 ? r : null",
            "the model's versions",
            30,
            ".model-versions tbody tr",
        )
        assert browser.current_url.endswith("#/models/churn")
        assert [v[0] for v in versions] == ["v0.0.3deregistered", "v0.0.2", "v0.0.1"]
        gone = browser.execute_script(
            "return [...document.querySelectorAll('.model-versions tr.gone')]"
            ".map(r => r.dataset.version)"
        )
        assert gone == ["v0.0.3"]
        assert versions[1][1] == "staging"
        assert versions[2][1] == "production"
        assert versions[1][7] == MODEL_NOTE  # the tag's message, as the text it is
        history = browser.execute_script(CELLS, ".model-history tbody tr")
        assert [h[1:4] for h in history] == [
            ["staging", "v0.0.2", "assign"],
            ["production", "v0.0.1", "rollback from v0.0.2"],
            ["production", "v0.0.2", "assign"],
            ["production", "v0.0.1", "assign"],
        ]
        assert browser.execute_script(INJECTED) == CLEAN
        screenshot(browser, "ui-model.png")

        open_page(browser, server, "/models/team%2Ffraud")  # a name with a slash
        name = "const e = document.getElementById('model-name'); return e && e.textContent"
        assert wait_js(browser, name, "the model with a slash") == "team/fraud"
        open_page(browser, server, "/models/nope")
        error = "const e = document.querySelector('.error'); return e && e.textContent"
        assert "registered models: churn, team/fraud" in wait_js(browser, error, "no such model")
        assert console_errors(browser, allow=("404",)) == []


def test_a_live_run_gains_points_on_its_chart(browser: Any, repo: Path) -> None:
    project = Project(repo, dict(os.environ), {})
    with xp_ui(project) as server, trainer(repo, name="live-one") as t:
        t.log(5)
        open_page(browser, server, f"/charts?runs={t.run_id}")
        wait_js(
            browser,
            "const c = window.__xpApp.current.charts; const l = c && c.get('loss'); return l && "
            "l.list.length && l.list[0].step.length >= 5 || null",
            "the live chart",
        )
        status = browser.execute_script(
            "return document.querySelector('.run-item .pill').textContent"
        )
        assert status == "running"
        last = (
            "const s = window.__xpApp.current.charts.get('loss').list[0]; return "
            "s.step[s.step.length - 1]"
        )
        assert browser.execute_script(last) == 4
        t.log(20)
        drawn = (
            "const c = window.__xpApp.current.charts.get('loss').chart;"
            " return c.u.data[0].at(-1) >= 24 && c.u.scales.x.max >= 24 || null"
        )
        wait_js(browser, drawn, "points 5-24 drawn without a reload")
        assert (
            browser.execute_script("return document.querySelector('.live-text').textContent")
            == "live"
        )
        screenshot(browser, "ui-charts-live.png")
        t.send("metric lr 4")  # a series the run starts logging after the page was made
        wait_js(
            browser,
            "const c = window.__xpApp.current.charts.get('lr'); return c && c.list.length"
            " && c.list[0].step.length === 4 || null",
            "a chart for the new metric",
        )
        t.end()
        wait_js(
            browser,
            "const p = document.querySelector('.run-item .pill'); return p.textContent === "
            "'finished' || null",
            "the run shown finished",
        )
        wait_js(  # read again from the commit once the run ended
            browser,
            "const c = window.__xpApp.current.charts; const l = c && c.get('loss');"
            " return l && l.list.length === 1 && l.list[0].step.length === 25 &&"
            " !document.querySelector('.missing-runs') && document.querySelector('.note')"
            ".textContent.startsWith('3 series') || null",
            "the ended run's charts from its record",
        )


def test_a_live_runs_page_follows_it_to_its_end(browser: Any, repo: Path) -> None:
    """The run page of a running run updates as it logs (its metrics, series table and
    charts, a new metric) and shows the committed record when it ends, without a reload."""
    project = Project(repo, dict(os.environ), {})
    with xp_ui(project) as server, trainer(repo, name="followed") as t:
        t.log(5)
        open_page(browser, server, f"/run/{t.run_id}")
        chart = (
            "const c = window.__xpApp.current && window.__xpApp.current.charts;"
            " const l = c && c.get('loss'); return l && l.u ? l.u.data[0].length : null"
        )
        assert wait_js(browser, chart, "the run's loss chart") == 5
        t.log(20)
        grown = chart.replace("length : null", "length === 25 || null : null")
        wait_js(browser, grown, "25 points drawn without a reload")
        t.send("metric lr 4")
        lr = chart.replace("get('loss')", "get('lr')")
        assert wait_js(browser, lr, "a chart for the metric logged later") == 4
        t.end()
        meta = (
            "const rows = [...document.querySelectorAll('.kv tr')].map(r => r.textContent);"
            " return rows.includes('statusfinished') || null"
        )
        wait_js(browser, meta, "the committed record's status in the Run card")
        pill = browser.execute_script("return document.querySelector('#run-status').textContent")
        assert pill == "finished"
        screenshot(browser, "ui-run-live-ended.png")


def test_a_link_to_a_run_not_there_yet_shows_it_once_it_arrives(
    browser: Any, repo: Path, tmp_path: Path
) -> None:
    """A link opened before its run exists here (a run that just started, or one a teammate
    pushed that is fetched a moment later) says so, then shows the run when it comes: the
    charts page and the run's own page."""
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(repo), str(other)], check=True)

    def made_there(name: str) -> str:
        code = (
            f"import xp\nwith xp.start_run(name={name!r}) as r:\n"
            "    [xp.log_metric('loss', 1 / (s + 1), step=s) for s in range(6)]\nprint(r.id)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=other, capture_output=True, text=True, check=True
        )
        return done.stdout.strip().splitlines()[-1]

    def fetch() -> None:
        fetch = ["git", "fetch", "-q", str(other), "+refs/xp/*:refs/xp/*"]
        subprocess.run(fetch, cwd=repo, check=True)

    project = Project(repo, dict(os.environ), {})
    with xp_ui(project) as server:
        run_id = made_there("fetched")
        open_page(browser, server, f"/charts?runs={run_id}")
        note = "const n = document.querySelector('.missing-runs'); return n && n.textContent"
        assert run_id in wait_js(browser, note, "the note that the run is not there yet")
        fetch()
        wait_js(
            browser,
            "const c = window.__xpApp.current.charts; const l = c && c.get('loss'); return l && "
            "l.list.length === 1 && l.list[0].step.length === 6 || null",
            "the fetched run charted without a reload by hand",
        )
        assert not browser.execute_script("return document.querySelector('.missing-runs')")

        second = made_there("fetched-2")
        open_page(browser, server, f"/run/{second}")
        error = "const e = document.querySelector('.error'); return e && e.textContent"
        assert second in wait_js(browser, error, "the run page saying the run is not found")
        fetch()
        status = "const p = document.querySelector('#run-status'); return p && p.textContent"
        assert wait_js(browser, status, "the run page once the run came") == "finished"


def test_the_report_opens_offline_from_a_file(
    browser: Any, ui_project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("report") / "report.html"
    names = ["alpha", "beta", "gamma", "art"]
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "report", *names, "-o", str(out)],
        cwd=ui_project.root,
        env=ui_project.env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    profile = tmp_path_factory.mktemp("offline-chromium")
    with chromium(profile, offline=True) as offline:
        offline.get(out.as_uri())
        wait_js(offline, "return window.__xpReportReady || null", "the report drawn")
        charts = offline.execute_script(
            "return document.querySelectorAll('.chart-card canvas').length"
        )
        assert charts >= 2
        inked = offline.execute_script(PIXELS_JS, ".chart-card canvas", "#1f77b4", 8)
        assert inked > 50  # the first run's line, in the palette's first colour
        images = wait_js(
            offline,
            "const i = [...document.querySelectorAll('.preview img')].filter(i => i.complete && "
            "i.naturalWidth > 0); return i.length >= 4 ? i.length : null",
            "the report's images",
        )
        assert images >= 4
        assert (
            offline.execute_script("return document.querySelectorAll('.diff-table tr.add').length")
            > 0
        )
        history = "return document.querySelector('.history-box canvas') !== null"
        assert offline.execute_script(history)  # the metric along the branch
        assert offline.execute_script(INJECTED) == CLEAN
        assert console_errors(offline) == []
        screenshot(offline, "report.png")
