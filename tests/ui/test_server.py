"""``xp ui`` over real HTTP: the JSON API on a real project, the security rules (Host and
Origin guard, loopback bind, artifacts that cannot escape the cache, safe headers), live
events from a real running run, and the command's own behaviour."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import spawned, trainer, wait_for
from tests.ui.project import (
    CARRIED,
    HOSTILE_ID,
    HOSTILE_NAME,
    MODEL_NOTE,
    Project,
    XpUi,
    register_models,
    xp_ui,
)

Q = urllib.parse.quote


def raw_get(server: XpUi, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET with the path exactly as given (no client-side normalisation of `..`)."""
    host, port = urllib.parse.urlsplit(server.url).netloc.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_the_table_pages_filters_and_sorts(ui_server: XpUi, ui_project: Project) -> None:
    page = ui_server.json("api/v1/runs?limit=3")
    assert page["total"] == page["all"] == 6
    assert len(page["rows"]) == 3
    assert page["rows"][0]["run_id"] == ui_project.ids["art"]  # newest first
    assert page["columns"]["params"] == [
        "<b onmouseover=window.__xss=3>p</b>",
        "epochs",
        "lr",
        "model",
    ]
    rest = ui_server.json("api/v1/runs?limit=3&offset=3")
    assert "columns" not in rest
    names = [r["name"] for r in page["rows"] + rest["rows"]]
    assert names[:5] == ["art", "big", "gamma", "beta", "alpha"]
    cnn = ui_server.json("api/v1/runs?q=" + Q("params.model = 'cnn' and metrics.acc > 0.5"))
    assert [r["name"] for r in cnn["rows"]] == ["beta", "alpha"]
    assert cnn["total"] == 2
    assert cnn["all"] == 6
    by_lr = ui_server.json("api/v1/runs?sort=params.lr&q=" + Q("params.lr < 1"))
    assert [r["name"] for r in by_lr["rows"]] == ["gamma", "beta", "alpha", HOSTILE_NAME]
    row = by_lr["rows"][0]
    assert row["params"] == {"lr": 0.001, "model": "mlp", "epochs": 3}
    assert row["tags"] == {"team": "vision"}
    assert row["remote"] is None
    assert row["ref"] == f"refs/xp/runs/{row['run_id']}"


def test_grouping_and_the_columns_that_differ(ui_server: XpUi) -> None:
    grouped = ui_server.json(
        "api/v1/runs?group=experiment&sort=-metrics.f1&q=" + Q("params.model is not null")
    )
    assert [(g["label"], g["count"], g["offset"]) for g in grouped["groups"]] == [
        ("base", 2, 0),
        ("other", 1, 2),
    ]
    assert [r["name"] for r in grouped["rows"]] == ["alpha", "beta", "gamma"]
    by_param = ui_server.json("api/v1/runs?group=params.model&q=" + Q("params.model is not null"))
    assert [g["label"] for g in by_param["groups"]] == ["cnn", "mlp"]
    baseline = ui_server.json("api/v1/runs?group=baseline&q=" + Q("params.model is not null"))
    labels = [g["label"] for g in baseline["groups"]]
    assert len(labels) == 3
    assert any(label.endswith("try an mlp") for label in labels)
    varying = ui_server.json("api/v1/runs?varying=1&q=" + Q("params.model is not null"))
    assert "params.lr" in varying["varying"]
    assert "params.epochs" not in varying["varying"]
    assert "tags.team" not in varying["varying"]


def test_filter_errors_say_where_with_the_clis_words(ui_server: XpUi, ui_project: Project) -> None:
    status, _, body = ui_server.get("api/v1/runs?q=" + Q("metrics.accc > 0.9"))
    assert status == 400
    error = json.loads(body)
    assert error["code"] == "filter"
    assert error["position"] == 0
    assert error["token"] == "metrics.accc"
    assert error["suggestions"][0] == "metrics.acc"
    shown = subprocess.run(
        [sys.executable, "-m", "xp", "show", "-w", "metrics.accc > 0.9"],
        cwd=ui_project.root,
        env=ui_project.env,
        capture_output=True,
        text=True,
    )
    assert shown.stderr.strip() == f"xp: error: {error['error']}"
    status, _, body = ui_server.get("api/v1/runs?q=" + Q("status = 'finshed'"))
    error = json.loads(body)
    assert (error["position"], error["token"], error["suggestions"]) == (
        9,
        "'finshed'",
        ["'finished'"],
    )
    for bad in ("api/v1/runs?limit=5000", "api/v1/runs?offset=x", "api/v1/runs?group=params.nope"):
        status, _, body = ui_server.get(bad)
        assert status == 400, bad
        assert json.loads(body)["code"] == "bad_request"


def test_a_run_page(ui_server: XpUi, ui_project: Project) -> None:
    alpha = ui_server.json(f"api/v1/runs/{ui_project.ids['alpha']}")
    assert alpha["run"]["name"] == "alpha"
    assert alpha["meta"]["experiment"] == "base"
    series = {s["name"]: s for s in alpha["series"]}
    assert series["loss"]["count"] == 300
    assert series["loss"]["best"] == series["loss"]["min"]  # lower is better for a loss
    assert series["acc"]["best"] == series["acc"]["max"]
    assert series["f1"]["count"] == 1
    assert any(p.startswith("pytest==") for p in alpha["packages"])
    by_name = ui_server.json("api/v1/runs/gamma")  # anything xp show resolves
    assert by_name["run"]["run_id"] == ui_project.ids["gamma"]
    art = ui_server.json(f"api/v1/runs/{ui_project.ids['art']}")
    kinds = {a["path"]: (a["kind"], a["available"]) for a in art["artifacts"]}
    assert kinds["images/red.png"] == ("image", True)
    assert kinds["images/orange.svg"] == ("image", True)
    assert kinds["notes.md"] == ("markdown", True)
    assert kinds["table.csv"] == ("csv", True)
    assert kinds["page.html"] == ("text", True)
    assert kinds["blob.bin"] == ("binary", True)
    status, _, body = ui_server.get("api/v1/runs/nonexistent-run")
    assert status == 404
    assert "xp show" in json.loads(body)["error"]


def test_artifacts_are_served_from_the_cache_with_safe_headers(
    ui_server: XpUi, ui_project: Project
) -> None:
    art = ui_project.ids["art"]
    status, headers, body = ui_server.get(f"api/v1/runs/{art}/artifacts/images/red.png")
    assert status == 200
    assert body.startswith(b"\x89PNG")
    assert headers["content-type"] == "image/png"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"].startswith("sandbox;")
    assert headers["etag"].strip('"') == __import__("hashlib").sha256(body).hexdigest()
    status, headers, body = ui_server.get(f"api/v1/runs/{art}/artifacts/page.html")
    assert headers["content-type"] == "text/plain; charset=utf-8"  # never served as HTML
    assert body == b"<script>window.__xss=11</script>\n"
    status, headers, _ = ui_server.get(f"api/v1/runs/{art}/artifacts/blob.bin")
    assert headers["content-disposition"].startswith("attachment;")
    status, headers, body = ui_server.get(f"api/v1/runs/{art}/artifacts/notes.md?head=7")
    assert body == b"# Notes"
    assert headers["x-truncated"] == "1"
    status, _, _ = ui_server.get(
        f"api/v1/runs/{art}/artifacts/images/red.png", {"If-None-Match": headers["etag"]}
    )
    status, _, _ = ui_server.get(f"api/v1/runs/{art}/artifacts/nope.txt")
    assert status == 404


@pytest.mark.parametrize(
    "path",
    [
        "../../../../etc/passwd",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/etc/hostname",
        "%2Fetc%2Fhostname",
    ],
)
def test_no_artifact_request_escapes_the_cache(ui_server: XpUi, path: str) -> None:
    """A path is only ever looked up in the manifest; even the hostile run's entries named
    like system files serve the cached object of their sha256."""
    status, body = raw_get(ui_server, f"/api/v1/runs/{HOSTILE_ID}/artifacts/{path}")
    assert b"root:" not in body
    assert status in (200, 404)
    if status == 200:
        assert body == CARRIED
    status, body = raw_get(ui_server, f"/static/{path}")
    assert status == 404
    assert b"root:" not in body


def test_symlinks_and_bad_hashes_in_the_cache_are_refused(ui_server: XpUi) -> None:
    status, body = raw_get(ui_server, f"/api/v1/runs/{HOSTILE_ID}/artifacts/linked.txt")
    assert status == 500
    assert b"outside the cache" in body
    assert b"SECRET" not in body
    status, body = raw_get(ui_server, f"/api/v1/runs/{HOSTILE_ID}/artifacts/inner-link.txt")
    assert status == 500
    assert b"symbolic link" in body
    status, body = raw_get(ui_server, f"/api/v1/runs/{HOSTILE_ID}/artifacts/bad-sha.txt")
    assert status == 500
    assert b"not a sha256" in body
    detail = ui_server.json(f"api/v1/runs/{HOSTILE_ID}")
    available = {a["path"]: a["available"] for a in detail["artifacts"]}
    assert available["linked.txt"] is False
    assert available["inner-link.txt"] is False
    assert available["bad-sha.txt"] is False


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),
        ({"Host": "localhost:{port}"}, True),
        ({"Host": "attacker.example:{port}"}, False),  # DNS rebinding
        ({"Host": "127.0.0.1.attacker.example"}, False),
        ({"Origin": "http://attacker.example"}, False),
        ({"Origin": "null"}, False),
        ({"Origin": "http://127.0.0.1:{port}"}, True),
        ({"Origin": "http://127.0.0.1:1"}, False),
    ],
)
def test_foreign_host_and_origin_are_refused(
    ui_server: XpUi, headers: dict[str, str], allowed: bool
) -> None:
    port = ui_server.url.rstrip("/").rsplit(":", 1)[1]
    sent = {k: v.format(port=port) for k, v in headers.items()}
    status, body = raw_get(ui_server, "/api/v1/meta", sent)
    if allowed:
        assert status == 200
        assert json.loads(body)["api"] == 1
    else:
        assert status == 403
        assert json.loads(body)["code"] == "forbidden"


def test_only_get_and_head(ui_server: XpUi) -> None:
    host, port = urllib.parse.urlsplit(ui_server.url).netloc.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/api/v1/runs", body=b"{}")
    response = conn.getresponse()
    assert response.status == 405
    conn.close()


def test_pages_and_json_carry_security_headers(ui_server: XpUi) -> None:
    for path in ("", "static/app.js", "api/v1/meta"):
        status, headers, _ = ui_server.get(path)
        assert status == 200
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-eval" not in headers["content-security-policy"]
    status, headers, _ = ui_server.get("", {"Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip"


def _listening(port: int) -> list[str]:
    """Local addresses listening on ``port``, from /proc/net/tcp{,6}."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # LISTEN
                found.append(address)
    return found


def test_it_binds_loopback_unless_told(ui_server: XpUi, ui_project: Project) -> None:
    port = int(ui_server.url.rstrip("/").rsplit(":", 1)[1])
    assert _listening(port) == ["0100007F"]  # 127.0.0.1 only
    with xp_ui(ui_project, "--host", "0.0.0.0") as wide:
        wide_port = int(wide.url.rstrip("/").rsplit(":", 1)[1])
        assert _listening(wide_port) == ["00000000"]
        assert "xp ui: warning: listening on 0.0.0.0" in wide.stderr.read_text()
        assert wide.json("api/v1/meta")["api"] == 1  # via 127.0.0.1: a loopback name


def test_series_downsampled_without_losing_the_spike(ui_server: XpUi, ui_project: Project) -> None:
    big = ui_project.ids["big"]
    res = ui_server.json(f"api/v1/series?runs={big}&metrics=loss&points=1000")
    (s,) = res["series"]
    assert s["count"] == 20000
    assert s["downsampled"] is True
    assert len(s["value"]) <= 1250
    assert max(s["value"]) == 100.0
    assert s["step"][s["value"].index(100.0)] == 12345
    assert s["step"][0] == 0
    assert s["step"][-1] == 19999
    assert s["step"] == sorted(s["step"])
    zoom = ui_server.json(f"api/v1/series?runs={big}&metrics=loss&points=1000&xmin=100&xmax=200")
    (z,) = zoom["series"]
    assert z["downsampled"] is False
    assert z["step"] == list(range(99, 202))  # one point beyond each edge
    smooth = ui_server.json(f"api/v1/series?runs={big}&metrics=loss&points=1000&smooth=0.9")
    assert len(smooth["series"][0]["smoothed"]) == len(smooth["series"][0]["value"])
    full = ui_server.json(f"api/v1/series?runs={big}&metrics=loss&points=0")
    assert len(full["series"][0]["value"]) == 20000
    many = ",".join(ui_project.ids[n] for n in ("alpha", "beta", "gamma"))
    both = ui_server.json(f"api/v1/series?runs={many}")
    assert [(s["metric"], s["count"]) for s in both["series"][:3]] == [
        ("acc", 300),
        ("f1", 1),
        ("loss", 300),
    ]
    metrics = ui_server.json(f"api/v1/metrics?runs={many}")
    assert [(m["name"], sorted(m["runs"].values())) for m in metrics["metrics"]] == [
        ("acc", [300, 300, 300]),
        ("f1", [1, 1, 1]),
        ("loss", [300, 300, 300]),
    ]
    assert ui_server.json(f"api/v1/metrics?runs={many}") == metrics  # counted once, kept
    for bad in (
        "series",
        "series?runs=x&x=wall",
        "series?runs=x&points=-1",
        "series?runs=x&smooth=1",
    ):
        status, _, _ = ui_server.get("api/v1/" + bad)
        assert status in (400, 404), bad


def test_points_diff_and_history(ui_server: XpUi, ui_project: Project) -> None:
    pts = ui_server.json(
        "api/v1/points?cols=params.lr,metrics.acc,created&q=" + Q("params.model is not null")
    )
    assert pts["total"] == 3
    assert pts["cols"]["params.lr"] == [0.001, 0.01, 0.1]
    assert all(isinstance(c, str) and c.endswith("Z") for c in pts["cols"]["created"])
    a, g = ui_project.ids["alpha"], ui_project.ids["gamma"]
    diff = ui_server.json(f"api/v1/diff?a={a}&b={g}")
    assert diff["same"] is False
    assert [f["path"] for f in diff["files"]] == ["train.py"]
    assert diff["files"][0]["status"] == "modified"
    assert "+model = 'mlp'" in diff["patch"]
    assert ".xp/run" not in diff["patch"]
    same = ui_server.json(f"api/v1/diff?a={a}&b={a}")
    assert same["same"] is True
    history = ui_server.json("api/v1/history?branch=main&metric=acc")
    assert history["metric"] == "metrics.acc"
    assert history["direction"] == "max"
    points = history["points"]
    assert [p["subject"] for p in points] == ["init", "tune the learning rate", "try an mlp"]
    assert [p["run_name"] for p in points] == ["alpha", "beta", "gamma"]
    assert points[0]["value"] > points[2]["value"]  # the regression the page shows as a step
    status, _, body = ui_server.get("api/v1/history?branch=nope&metric=acc")
    assert status == 404
    assert "main" in json.loads(body)["error"]


def test_the_model_registry(repo: Path) -> None:
    """The registry's tags as the Models page reads them: empty at first, then (the tags
    changed under the running server) every model, each version with its run and metrics,
    what each stage runs and every stage change, rollbacks marked; notes stay the text
    they are."""
    project = Project(repo, dict(os.environ), {})
    with xp_ui(project) as server:
        assert server.json("api/v1/models") == {"models": [], "stages": []}
        ids = register_models(repo)
        listing = server.json("api/v1/models")
        assert listing["stages"] == ["production", "staging"]
        churn, fraud = listing["models"]
        assert (churn["name"], fraud["name"]) == ("churn", "team/fraud")
        assert churn["latest"] == "v0.0.2"  # v0.0.3 was deregistered
        assert churn["stages"] == {"production": "v0.0.1", "staging": "v0.0.2"}
        assert (churn["versions"], churn["active"]) == (3, 2)
        assert churn["run_id"] == ids["second"]
        assert churn["run_name"] == "second"
        assert churn["metrics"] == {"r2": 0.75, "rmse": 0.25}
        assert churn["deprecated"] is False
        assert (fraud["latest"], fraud["stages"], fraud["run_id"]) == ("v1.0.0", {}, ids["first"])

        model = server.json("api/v1/models/churn")
        versions = {v["version"]: v for v in model["versions"]}
        assert [v["version"] for v in model["versions"]] == ["v0.0.3", "v0.0.2", "v0.0.1"]
        assert versions["v0.0.3"]["active"] is False
        assert versions["v0.0.2"]["note"] == MODEL_NOTE
        assert versions["v0.0.1"]["note"] == "the baseline"
        first = versions["v0.0.1"]
        assert first["stages"] == ["production"]
        assert first["run_id"] == ids["first"]
        assert first["run_name"] == "first"
        assert first["tag"] == "churn@v0.0.1"
        assert first["artifacts"] == ["model.pkl"]
        assert first["metrics"] == {"r2": 0.5, "rmse": 0.5}
        assert first["by"] == "Test Committer <committer@example.com>"
        assert first["registered"].endswith("Z")
        assert len(first["commit"]) == 40
        production = model["stage_status"][0]
        assert (production["stage"], production["version"]) == ("production", "v0.0.1")
        assert (production["previous"], production["rollback_to"]) == ("v0.0.2", None)
        changes = [(c["stage"], c["version"], c["rollback_from"]) for c in model["history"]]
        assert changes == [
            ("staging", "v0.0.2", None),
            ("production", "v0.0.1", "v0.0.2"),
            ("production", "v0.0.2", None),
            ("production", "v0.0.1", None),
        ]
        assert all(c["by"] == first["by"] and c["action"] == "assign" for c in model["history"])
        # a name with a slash, as the page's link encodes it and as typed
        for path in ("api/v1/models/team/fraud", "api/v1/models/team%2Ffraud"):
            assert server.json(path)["versions"][0]["version"] == "v1.0.0"
        status, _, body = server.get("api/v1/models/nope")
        assert status == 404
        error = json.loads(body)
        assert error["code"] == "not_found"
        assert "registered models: churn, team/fraud" in error["error"]
        assert "xp model register NAME RUN" in error["error"]


def test_live_runs_stream_and_grow(repo: Path) -> None:
    """A real training process: its run is listed as running, events announce its points,
    the series endpoint gives the points after the last step the page has, and when it
    ends the run is listed once, finished."""
    project = Project(repo, dict(os.environ), {})
    with xp_ui(project) as server, trainer(repo, name="live-one") as t:
        t.log(3)
        rows = wait_for(
            lambda: [
                r for r in server.json("api/v1/runs?limit=10")["rows"] if r["name"] == "live-one"
            ],
            "the live run in the table",
        )
        assert rows[0]["status"] == "running"
        assert rows[0]["commit"] is None
        host, port = urllib.parse.urlsplit(server.url).netloc.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/api/v1/events")
        stream = conn.getresponse()
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert stream.readline().startswith(b"retry:")
        t.log(5)
        events: list[dict[str, Any]] = []

        def series_event() -> bool:
            line = stream.readline()
            if line.startswith(b"data:"):
                events.append(json.loads(line[5:]))
            return any(e.get("metric") == "loss" and e.get("last_step", 0) >= 7 for e in events)

        wait_for(series_event, "a series event for step 7")
        conn.close()
        new = server.json(f"api/v1/series?runs={t.run_id}&metrics=loss&after_step=4")
        assert new["series"][0]["step"] == [5, 6, 7]
        detail = server.json(f"api/v1/runs/{t.run_id}")
        assert detail["run"]["status"] == "running"
        assert detail["meta"]["name"] == "live-one"
        t.end()

        def finished() -> list[dict[str, Any]]:
            got = server.json("api/v1/runs?limit=10&q=" + Q("name = 'live-one'"))["rows"]
            return got if got and got[0]["status"] == "finished" else []

        assert len(wait_for(finished, "the run committed")) == 1


def test_a_registry_change_is_a_models_event(repo: Path) -> None:
    """A tag made while the server runs (``xp model register``, a fetch of a teammate's) is
    announced as a ``models`` event, and the registry document then lists the model."""
    import xp
    from xp.gitstore.repo import find_repo
    from xp.sharing import registry

    (repo / "model.pkl").write_bytes(b"weights")
    with xp.start_run(name="to-register", path=repo) as run:
        xp.log_metric("rmse", 0.5)
        xp.log_artifact(repo / "model.pkl")
    project = Project(repo, dict(os.environ), {})
    with xp_ui(project) as server:
        assert server.json("api/v1/models")["models"] == []
        host, port = urllib.parse.urlsplit(server.url).netloc.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/api/v1/events")
        stream = conn.getresponse()
        assert stream.readline().startswith(b"retry:")
        registry.register(find_repo(repo), run=str(run.id), name="churn")
        kinds: list[bytes] = []

        def models_event() -> bool:
            line = stream.readline()
            if line.startswith(b"event:"):
                kinds.append(line[6:].strip())
            return b"models" in kinds

        wait_for(models_event, "a models event")
        conn.close()
        assert [m["name"] for m in server.json("api/v1/models")["models"]] == ["churn"]


def test_a_running_xp_run_shows_its_output_then_its_saved_log(repo: Path) -> None:
    """The run page's log: while ``xp run`` runs, what its command printed so far (the
    spool beside the journal); once it ended, the saved ``logs/xp-run.log``."""
    script = repo / "talk.py"
    script.write_text(
        "import os, time, xp\n"
        "xp.start_run(name='talker')\n"
        "print('hello from step 1', flush=True)\n"
        "while not os.path.exists('go'):\n"
        "    time.sleep(0.05)\n"
        "print('bye', flush=True)\n"
    )
    project = Project(repo, dict(os.environ), {})
    cmd = [sys.executable, "-m", "xp", "run", "--", sys.executable, "-u", str(script)]
    with (
        xp_ui(project) as server,
        spawned(cmd, cwd=repo, stdout=subprocess.PIPE, text=True) as run,
    ):
        assert run.stdout is not None
        assert "hello from step 1" in run.stdout.readline()

        def live_row() -> list[dict[str, Any]]:
            rows = server.json("api/v1/runs?limit=10")["rows"]
            return [r for r in rows if r["status"] == "running"]

        run_id = wait_for(live_row, "the running run")[0]["run_id"]
        detail = wait_for(
            lambda: (d := server.json(f"api/v1/runs/{run_id}"))["log"] and d, "a live log"
        )
        status, _headers, body = server.get(detail["log"]["url"].lstrip("/") + "?tail=1000")
        assert status == 200, body
        assert b"hello from step 1" in body
        (repo / "go").write_text("")
        assert run.wait(timeout=60) == 0

        def saved() -> dict[str, Any] | None:
            d = server.json(f"api/v1/runs/{run_id}")
            return d if d["run"]["status"] == "finished" and d["log"] else None

        status, _headers, body = server.get(
            wait_for(saved, "the committed run")["log"]["url"].lstrip("/")
        )
        assert status == 200
        assert b"hello from step 1" in body
        assert b"bye" in body


def test_without_the_extra_one_line_names_the_install(ui_project: Project) -> None:
    code = "import sys; sys.modules['uvicorn'] = None; import xp.cli; sys.exit(xp.cli.main(['ui']))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ui_project.root,
        env=ui_project.env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "xp: error: xp ui needs uvicorn, which is not installed; install it with"
        ' pip install "git-xp[ui]"'
    )


def test_a_taken_port_is_one_line(ui_server: XpUi, ui_project: Project) -> None:
    port = ui_server.url.rstrip("/").rsplit(":", 1)[1]
    cmd = [sys.executable, "-m", "xp", "ui", "--port", port]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with spawned(cmd, cwd=ui_project.root, env=ui_project.env, text=True, **pipes) as proc:  # type: ignore[arg-type]
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().startswith(f"xp: error: port {port} on 127.0.0.1 is taken")


def test_ctrl_c_stops_it_at_once_even_with_a_page_listening(ui_project: Project) -> None:
    with xp_ui(ui_project) as server:
        host, port = urllib.parse.urlsplit(server.url).netloc.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/api/v1/events")
        assert conn.getresponse().readline().startswith(b"retry:")
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=20) == 130  # Ctrl-C's exit code, as every command
        conn.close()
    assert server.stderr.read_text().strip() == "xp: interrupted"


def test_the_table_is_answered_without_numpy_or_pandas(ui_project: Project) -> None:
    """Start-up is what a user waits for first: the table's page, run by the app's own route,
    loads neither (a chart's series or a run page's summary import them later)."""
    code = (
        "import sys, json\n"
        "from starlette.requests import Request\n"
        "from xp.gitstore.repo import find_repo\n"
        "from xp.ui import server\n"
        "app, _, _ = server.create_app(find_repo(), names={'127.0.0.1'}, port=lambda: 1)\n"
        "scope = {'type': 'http', 'method': 'GET', 'path': '/api/v1/runs',\n"
        "         'query_string': b'limit=100&meta=1', 'headers': []}\n"
        "route = next(r for r in app.routes if getattr(r, 'path', '') == '/api/v1/runs')\n"
        "page = json.loads(route.endpoint(Request(scope)).body)\n"
        "assert app.state.table_answered.is_set()\n"
        "print(len(page['rows']), 'numpy' in sys.modules, 'pandas' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ui_project.root,
        env=ui_project.env,
        capture_output=True,
        text=True,
    )
    assert proc.stderr == ""
    assert proc.stdout.split() == ["6", "False", "False"]
