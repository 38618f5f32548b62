"""``xp report`` and ``xp diff --html``: one self-contained file, the same bytes for the same
runs, data that cannot break out of its script element, a CSP that forbids the network; and
the bundler that inlines the front end."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import xp_main
from tests.ui.project import HOSTILE_ID, HOSTILE_NAME, Project
from xp.ui.bundle import bundle, comment_spans
from xp.ui.report import json_for_html


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def xp(project: Project, *args: str) -> Done:
    """``xp ARGS`` in the project through the real entry point, in this process."""
    return Done(*xp_main(*args, cwd=project.root))


def blob(html: str) -> dict[str, object]:
    m = re.search(r'<script type="application/json" id="xp-data">(.*?)</script>', html, re.S)
    assert m is not None
    return json.loads(m.group(1))  # type: ignore[no-any-return]


def test_a_report_is_one_deterministic_file(ui_project: Project, tmp_path: Path) -> None:
    names = ["alpha", "beta", "gamma", "art", "big"]
    first, second = tmp_path / "a.html", tmp_path / "b.html"
    done = xp(ui_project, "report", *names, "-o", str(first))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{first}: 5 runs, ")
    assert xp(ui_project, "report", *names, "-o", str(second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    html = first.read_text()
    assert len(html.encode()) < 2 * 1024 * 1024
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing to fetch
    data = blob(html)
    assert [r["name"] for r in data["runs"]] == names  # type: ignore[index]
    assert data["diff"]["a"] == ui_project.ids["alpha"]  # type: ignore[index]
    assert data["history"]["branch"] == "main"  # type: ignore[index]
    art = data["details"][ui_project.ids["art"]]  # type: ignore[index]
    urls = {a["path"]: a["url"] for a in art["artifacts"]}
    assert urls["images/red.png"].startswith("data:image/png;base64,")
    assert urls["images/orange.svg"].startswith("data:image/svg+xml;base64,")
    assert urls["blob.bin"] is None  # not a kind a report shows
    big = [s for s in data["series"] if s["run_id"] == ui_project.ids["big"]]  # type: ignore[index]
    assert big[0]["downsampled"] is True
    assert 100.0 in big[0]["value"]  # the spike survives thinning
    # the page allows exactly its own script
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None
    script = html[html.rindex("<script>") + len("<script>") : html.rindex("</script>")]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp.group(1)
    assert "default-src 'none'" in csp.group(1)


def test_a_filter_chooses_the_runs(ui_project: Project, tmp_path: Path) -> None:
    out = tmp_path / "cnn.html"
    where = "params.model = 'cnn'"
    done = xp(ui_project, "report", "gamma", "--where", where, "-s", "metrics.acc", "-o", str(out))
    assert done.returncode == 0, done.stderr
    names = [r["name"] for r in blob(out.read_text())["runs"]]  # type: ignore[index]
    assert names == ["gamma", "beta", "alpha"]  # named first, then the filter's in its order
    done = xp(ui_project, "report", "-w", where, "-n", "1", "-o", str(out))
    assert [r["name"] for r in blob(out.read_text())["runs"]] == ["beta"]  # type: ignore[index]
    for bad, says in (
        ("params.model = 'none'", "xp: error: no run to report: name runs, or a --where"),
        ("metrics.acc >", "xp: error: "),
    ):
        done = xp(ui_project, "report", "-w", bad, "-o", str(tmp_path / "bad.html"))
        assert done.returncode == 1
        assert done.stderr.startswith(says)
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.html").exists()


def test_hostile_values_cannot_leave_the_data_element(ui_project: Project, tmp_path: Path) -> None:
    out = tmp_path / "hostile.html"
    done = xp(ui_project, "report", HOSTILE_ID, "alpha", "-o", str(out), "--title", "</title><b>")
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert "<title>&lt;/title&gt;&lt;b&gt;</title>" in html
    data_text = html[html.index('id="xp-data">') : html.index("</script>")]
    assert "<" not in data_text[len('id="xp-data">') :]
    assert blob(html)["runs"][0]["name"] == HOSTILE_NAME  # type: ignore[index]
    assert json_for_html({"a": "</script><script>x()</script>&"}) == (
        '{"a":"\\u003c/script\\u003e\\u003cscript\\u003ex()\\u003c/script\\u003e\\u0026"}'
    )


def test_xp_diff_html(ui_project: Project, tmp_path: Path) -> None:
    done = xp(ui_project, "diff", "alpha", "gamma", "--html")
    assert done.returncode == 0, done.stderr
    data = blob(done.stdout)
    assert data["title"] == "xp diff: alpha \u2192 gamma"
    assert "+model = 'mlp'" in data["diff"]["patch"]  # type: ignore[index]
    out = tmp_path / "d.html"
    assert xp(ui_project, "diff", "alpha", "gamma", "--html", "-o", str(out)).returncode == 0
    assert out.read_text() == done.stdout
    for args, message in [
        (("diff", "alpha", "--html"), "--html compares two recorded runs"),
        (("diff", "alpha", "alpha", "--html"), "are the same run"),
        (("diff", "alpha", "gamma", "-o", "x.html"), "-o/--output goes with --html"),
        (("report", "nope-such-run"), "no run, ref or commit 'nope-such-run'"),
    ]:
        failed = xp(ui_project, *args)
        assert failed.returncode == 1, args
        (line,) = failed.stderr.strip().splitlines()
        assert line.startswith("xp: error: ")
        assert message in line


def test_the_bundler_inlines_every_module_once() -> None:
    js = bundle("report.js")
    modules = re.findall(r'^__xp\["([^"]+)"\] = \(function', js, re.M)
    assert modules[-1] == "report.js"
    assert "vendor/uPlot.esm.js" in modules
    assert len(modules) == len(set(modules))
    assert "</script" not in js.lower()
    proc = subprocess.run(["node", "--check", "-"], input=js, capture_output=True, text=True)
    if proc.returncode == 127:  # pragma: no cover - node is optional here
        pytest.skip("node is not installed")
    assert proc.returncode == 0, proc.stderr


def test_the_bundler_refuses_forms_it_does_not_know() -> None:
    files = {
        "main.js": "import { a } from './a.js';\nexport function main() { return a; }\n",
        "a.js": "export const a = 1;\nexport default a;\n",
    }
    with pytest.raises(RuntimeError, match=r"a\.js:2: an import/export form"):
        bundle("main.js", read=files.__getitem__)
    files["a.js"] = "const a = 1;\nconst b = import('./x.js');\nexport { a };\n"
    with pytest.raises(RuntimeError, match=r"a\.js:2"):
        bundle("main.js", read=files.__getitem__)
    files["a.js"] = "// export nothing here\nconst a = '/* not a comment */';\nexport { a };\n"
    js = bundle("main.js", read=files.__getitem__)
    assert '"a": a' in js
    files["a.js"] = "import { main } from './main.js';\nexport const a = 1;\n"
    with pytest.raises(RuntimeError, match="import cycle"):
        bundle("main.js", read=files.__getitem__)


def test_comments_are_told_from_strings_and_regexes() -> None:
    text = "const a = '//x'; // c1\nconst r = /\\/*x/; /* c2 */ const d = a / 2; // c3"
    spans = [text[a:b] for a, b in comment_spans(text)]
    assert spans == ["// c1", "/* c2 */", "// c3"]
