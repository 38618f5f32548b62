"""ui: seeing runs. ``xp ui`` start-up at 10k runs, the runs table's first paint and a filter
at 100k runs in Chromium, a chart of 10 runs x 100k points, a live point reaching the page,
``xp plot`` and ``xp report`` of 5 runs; side by side with MLflow's UI on the same 10k runs
(page load until its runs table shows them, in the same Chromium) and TensorBoard's scalars
on the same 10 x 100k series.

The runs come from W3's cached repositories (``benchmarks/w3_query.py``: 10k and 100k runs
made as xp makes them, refs packed); the 10 long series are written once the same way and
cached beside them. Browser figures are measured inside the page (``performance.now()``
from navigation start, or from the moment the filter is sent), Chromium headless, no cache.

    python benchmarks/ui.py            # standalone: its figures (--quick: small sizes)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/ui.py`
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if p == "" or Path(p).resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from benchmarks.harness import (
    SMALL_PROJECT,
    Context,
    Metric,
    Workload,
    child_env,
    git,
    git_repo,
    script,
    standalone,
    xp_command,
)
from benchmarks.w3_query import WHERE, cache_dir, copy_repo, fixture, mlflow_fixture

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SERIES_VERSION = "1"
T0 = 1_790_000_000


# -- fixtures ---------------------------------------------------------------------------------


def series_fixture(runs: int, points: int) -> Path:
    """A repo of ``runs`` runs, each with a ``loss`` series of ``points`` points (cached)."""
    root = cache_dir().parent / f"ui-v{SERIES_VERSION}" / f"series-{runs}x{points}"
    if (root / ".done").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    git_repo(root, SMALL_PROJECT)
    baseline = git(root, "rev-parse", "HEAD").strip()
    from xp import format as fmt
    from xp.record.build import commit_message, iso_time
    from xp.record.model import RunRecord

    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"],
        cwd=root,
        stdin=subprocess.PIPE,
        env=child_env(),
    )
    assert proc.stdin is not None
    for i in range(runs):
        rng = random.Random(i)
        start = T0 + 3600 * i
        decay = 2.0 + rng.random() * 3
        pts = [
            (s, 2.0 * math.exp(-decay * s / points) + rng.random() * 0.05, (start + s // 10) * 1000)
            for s in range(points)
        ]
        run_id = fmt.new_run_id(start)
        record = RunRecord(
            id=run_id,
            name=f"long-{i}",
            status="finished",
            meta={
                "experiment": "long",
                "start_time": iso_time(start),
                "end_time": iso_time(start + points // 10),
                "duration": float(points // 10),
                "baseline": baseline,
                "branch": "main",
            },
            params={"lr": 10 ** -(1 + i % 4), "seed": i},
            metrics={"loss": pts[-1][1]},
            series={"loss": pts},
        )
        message = commit_message(record).encode()
        chunks = [
            f"commit {fmt.run_ref(run_id)}\n".encode(),
            f"author Bench <b@example.com> {start} +0000\n".encode(),
            f"committer Bench <b@example.com> {start} +0000\n".encode(),
            b"data %d\n%s" % (len(message), message),
            f"from {baseline}\n".encode(),
        ]
        for rel, data in sorted(record.to_files().items()):
            path = f"{fmt.RECORD_DIR}/{rel}".encode()
            chunks.append(b"M 100644 inline " + path + b"\ndata %d\n" % len(data) + data + b"\n")
        proc.stdin.write(b"".join(chunks) + b"\n")
    proc.stdin.write(b"done\n")
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    git(root, "pack-refs", "--all")
    (root / ".done").write_text("ok\n")
    return root


def tensorboard_fixture(runs: int, points: int) -> Path:
    """The same series as TensorBoard event files, one folder per run (cached)."""
    root = cache_dir().parent / f"ui-v{SERIES_VERSION}" / f"tensorboard-{runs}x{points}"
    if (root / ".done").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    from tensorboard.compat.proto import event_pb2, summary_pb2  # type: ignore[import-untyped]
    from tensorboard.summary.writer.event_file_writer import (  # type: ignore[import-untyped]
        EventFileWriter,
    )

    for i in range(runs):
        rng = random.Random(i)
        decay = 2.0 + rng.random() * 3
        writer = EventFileWriter(str(root / f"long-{i}"))
        start = T0 + 3600 * i
        for s in range(points):
            value = 2.0 * math.exp(-decay * s / points) + rng.random() * 0.05
            summary = summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag="loss", simple_value=value)]
            )
            writer.add_event(event_pb2.Event(wall_time=start + s / 10, step=s, summary=summary))
        writer.close()
    (root / ".done").write_text("ok\n")
    return root


# -- processes and the browser ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0, ok: Any = None) -> float:
    """Seconds until ``url`` answers 200 (and ``ok(body)`` holds, when given)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read()
                if response.status == 200 and (ok is None or ok(body)):
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


@contextlib.contextmanager
def process(cmd: list[str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait()


def xp_ui(repo: Path, port: int) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    return process([*xp_command(), "ui", "--port", str(port)], repo)


@contextlib.contextmanager
def chromium(workdir: Path) -> Iterator[Any]:
    """Headless Chromium with a profile and a TMPDIR of its own under /tmp: Chromium puts a
    Unix socket in TMPDIR, and a socket path longer than 107 bytes (a deep TMPDIR, as
    pytest's) makes it exit at start."""
    short = Path(
        tempfile.mkdtemp(prefix="xp-chromium-", dir="/tmp" if os.path.isdir("/tmp") else None)
    )
    try:
        with _chromium(short) as driver:
            yield driver
    finally:
        shutil.rmtree(short, ignore_errors=True)


@contextlib.contextmanager
def _chromium(workdir: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
        f"--user-data-dir={workdir / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    from selenium.common.exceptions import WebDriverException

    try:
        service = Service(CHROMEDRIVER, env={**os.environ, "TMPDIR": str(workdir)})
        driver = webdriver.Chrome(service=service, options=options)
    except WebDriverException as exc:  # the runner shows one line: make it the message's first
        raise RuntimeError(f"Chromium did not start: {str(exc).strip().splitlines()[0]}") from None
    driver.set_script_timeout(120)
    try:
        yield driver
    except WebDriverException as exc:
        raise RuntimeError(f"Chromium: {str(exc).strip().splitlines()[0]}") from None
    finally:
        driver.quit()


def page_time(driver: Any, url: str, ready_js: str, timeout: float = 120.0) -> float:
    """Seconds from navigation start until ``ready_js`` is true in the page."""
    driver.get("about:blank")
    driver.get(url)
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            at = driver.execute_script(f"return ({ready_js}) ? performance.now() : null")
        except Exception:  # between two documents
            at = None
        if at is not None:
            return float(at) / 1000
        time.sleep(0.01)
    raise RuntimeError(f"{url}: not ready within {timeout:g} s ({ready_js})")


def hash_time(driver: Any, hash_: str, ready_js: str, timeout: float = 120.0) -> float:
    """Seconds from following an in-app link (``location.hash``) until ``ready_js`` is true:
    what a user waits after clicking Charts in the loaded app."""
    script = """
    const [hash, timeout, done] = arguments;
    const start = performance.now();
    location.hash = hash;
    const check = () => {
      let ok = false;
      try { ok = READY; } catch (e) { ok = false; }
      if (ok) done(performance.now() - start);
      else if (performance.now() - start > timeout * 1000) done(-1);
      else requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
    """.replace("READY", ready_js)
    driver.set_script_timeout(timeout + 10)
    elapsed = driver.execute_async_script(script, hash_, timeout)
    if elapsed < 0:
        raise RuntimeError(f"{hash_}: not ready within {timeout:g} s ({ready_js})")
    return float(elapsed) / 1000


ROWS_JS = "document.querySelectorAll('.rt-row[data-id]').length > 10"
FILTER_JS = """
const done = arguments[arguments.length - 1];
const count = document.getElementById('runs-count');
const before = count.textContent;
const box = document.querySelector('.fb-input');
const start = performance.now();
new MutationObserver((_, obs) => {
  if (count.textContent !== before && document.querySelectorAll('.rt-row[data-id]').length) {
    obs.disconnect();
    done(performance.now() - start);
  }
}).observe(count, {childList: true, characterData: true, subtree: true});
box.value = arguments[0];
box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'}));
"""
CHART_JS = (
    "(() => { const c = window.__xpApp && window.__xpApp.current && window.__xpApp.current.charts;"
    " const l = c && c.get('loss'); return !!(l && l.list.length === {n} && l.chart.u); })()"
)


# -- xp ---------------------------------------------------------------------------------------


def xp_side(ctx: Context) -> dict[str, float]:
    out: dict[str, float] = {}
    table_runs = ctx.size(100_000, 1_000)
    ready_runs = ctx.size(10_000, 500)
    long_runs, points = 10, ctx.size(100_000, 2_000)

    # ready to serve: process start until the first page of the table is answered
    repo = copy_repo(fixture(ready_runs), ctx.workdir / "ready")
    subprocess.run([*xp_command(), "show"], cwd=repo, env=child_env(), capture_output=True)
    times = []
    for _ in range(3):
        port = free_port()
        start = time.perf_counter()
        with xp_ui(repo, port):
            wait_http(f"http://127.0.0.1:{port}/api/v1/runs?limit=100")
            times.append(time.perf_counter() - start)
    out["ready_10k"] = min(times)

    with chromium(ctx.workdir) as driver:
        # first paint and a filter at 100k runs
        repo = copy_repo(fixture(table_runs), ctx.workdir / "table")
        subprocess.run([*xp_command(), "show"], cwd=repo, env=child_env(), capture_output=True)
        port = free_port()
        with xp_ui(repo, port):
            url = f"http://127.0.0.1:{port}/"
            wait_http(url + "api/v1/meta")
            page_time(driver, url + "#/runs", ROWS_JS)  # warm: the browser's and the OS's caches
            out["first_paint_100k"] = min(
                page_time(driver, url + "#/runs", ROWS_JS) for _ in range(3)
            )
            filters = []
            for where in (WHERE, "params.optimizer = 'sgd' and metrics.val_loss < 0.5", WHERE):
                page_time(driver, url + "#/runs", ROWS_JS)
                filters.append(driver.execute_async_script(FILTER_JS, where) / 1000)
            out["filter_100k"] = min(filters)

        # a chart of 10 runs x 100k points: cold (first parse) and warm
        repo = copy_repo(series_fixture(long_runs, points), ctx.workdir / "series")
        subprocess.run([*xp_command(), "show"], cwd=repo, env=child_env(), capture_output=True)
        port = free_port()
        with xp_ui(repo, port):
            url = f"http://127.0.0.1:{port}/"
            wait_http(url + "api/v1/meta")
            rows = json.loads(urllib.request.urlopen(url + "api/v1/runs?limit=10").read())["rows"]
            ids = ",".join(r["run_id"] for r in rows)
            chart = CHART_JS.replace("{n}", str(long_runs))
            charts, table = f"#/charts?runs={ids}", "#/runs"

            def from_table() -> float:
                page_time(driver, url + table, ROWS_JS.replace("> 10", ">= 10"))
                return hash_time(driver, charts, chart)

            out["chart_cold"] = from_table()
            out["chart_10x100k"] = min(from_table() for _ in range(3))
            out["chart_page_load"] = page_time(driver, url + charts, chart)
            start = time.perf_counter()
            urllib.request.urlopen(f"{url}api/v1/series?runs={ids}&metrics=loss").read()
            out["series_request_warm"] = time.perf_counter() - start

        out["live_point"] = live_latency(ctx, driver)

    # xp plot and xp report of 5 runs (5 x 100k points)
    five = [r["name"] for r in rows[:5]]
    cpu: list[float] = []
    plot = [*xp_command(), "plot", *five, "-m", "loss", "-o", str(ctx.workdir / "p.png")]
    out["plot_5"] = min(timed(plot, repo, cpu) for _ in range(3))
    out["plot_5_cpu"] = min(cpu)
    report = ctx.workdir / "r.html"
    cpu = []
    make = [*xp_command(), "report", *five, "-o", str(report)]
    out["report_5"] = min(timed(make, repo, cpu) for _ in range(3))
    out["report_5_cpu"] = min(cpu)
    out["report_size"] = report.stat().st_size / 1e6
    return out


def timed(cmd: list[str], cwd: Path, cpu: list[float] | None = None) -> float:
    """Wall seconds of ``cmd``; its CPU seconds (user + system) appended to ``cpu``: on a
    shared machine the wall time carries the others' load, the CPU time does not."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=child_env(), capture_output=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.decode()[-400:]}")
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return elapsed


TRAINER = """
import sys, time, xp
run = xp.start_run(name="live")
print(run.id, flush=True)
step = 0
for line in sys.stdin:
    xp.log_metric("loss", 1.0 / (step + 1), step=step)
    print(time.time(), flush=True)
    step += 1
xp.end_run()
"""


def live_latency(ctx: Context, driver: Any) -> float:
    """Seconds from a log_metric call returning to its point being in the page's chart."""
    repo = git_repo(ctx.workdir / "live", SMALL_PROJECT)
    (ctx.workdir / "trainer.py").write_text(TRAINER)
    trainer = subprocess.Popen(
        [sys.executable, str(ctx.workdir / "trainer.py")],
        cwd=repo,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert trainer.stdin is not None
    assert trainer.stdout is not None
    latencies = []
    try:
        run_id = trainer.stdout.readline().strip()
        for _ in range(3):  # a first point, so the chart exists
            trainer.stdin.write("log\n")
            trainer.stdin.flush()
            trainer.stdout.readline()
        port = free_port()
        with xp_ui(repo, port):
            url = f"http://127.0.0.1:{port}/"
            wait_http(url + "api/v1/meta")
            page_time(driver, f"{url}#/charts?runs={run_id}", CHART_JS.replace("{n}", "1"))
            steps = "window.__xpApp.current.charts.get('loss').list[0].step"
            for step in range(3, 13):
                trainer.stdin.write("log\n")
                trainer.stdin.flush()
                logged = float(trainer.stdout.readline())
                while not driver.execute_script(f"return {steps}.includes({step})"):
                    time.sleep(0.005)
                latencies.append(time.time() - logged)
    finally:
        trainer.stdin.close()
        trainer.wait(timeout=60)
    latencies.sort()
    return latencies[len(latencies) // 2]  # the median point


# -- peers ------------------------------------------------------------------------------------


def mlflow_side(ctx: Context) -> dict[str, float]:
    """MLflow's UI over the same 10k runs (its SQLite store, filled by W3)."""
    exe = script("mlflow")
    if exe is None:
        raise RuntimeError("mlflow is not installed (pip install mlflow)")
    runs = ctx.size(10_000, 500)
    db = ctx.workdir / "mlflow.db"
    shutil.copyfile(mlflow_fixture(runs) / "mlflow.db", db)
    out: dict[str, float] = {}
    times = []
    for _ in range(2):
        port = free_port()
        cmd = [
            exe,
            "ui",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        start = time.perf_counter()
        with process(cmd, ctx.workdir):
            wait_http(f"http://127.0.0.1:{port}/health")
            body = json.dumps({"max_results": 100}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(request, timeout=60).read()
            times.append(time.perf_counter() - start)
    out["ready_10k"] = min(times)
    port = free_port()
    cmd = [
        exe,
        "ui",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with process(cmd, ctx.workdir), chromium(ctx.workdir) as driver:
        wait_http(f"http://127.0.0.1:{port}/health")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=sweep"
        )
        exp = json.loads(urllib.request.urlopen(request, timeout=60).read())["experiment"]
        # MLflow 3 opens an experiment on its GenAI overview: its runs table is this page
        url = (
            f"http://127.0.0.1:{port}/#/experiments/{exp['experiment_id']}/runs"
            "?workflowType=machine_learning"
        )
        newest = f"run-{runs - 1}"
        ready = f"document.body.innerText.includes('{newest}')"
        page_time(driver, url, ready, timeout=300)
        out["first_paint_10k"] = min(page_time(driver, url, ready, timeout=300) for _ in range(3))
    return out


def tensorboard_side(ctx: Context) -> dict[str, float]:
    """TensorBoard's scalars over the same 10 x 100k series."""
    exe = script("tensorboard")
    if exe is None:
        raise RuntimeError("tensorboard is not installed (pip install tensorboard)")
    runs, points = 10, ctx.size(100_000, 2_000)
    logdir = tensorboard_fixture(runs, points)
    out: dict[str, float] = {}
    port = free_port()
    cmd = [exe, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)]
    start = time.perf_counter()
    with process(cmd, ctx.workdir), chromium(ctx.workdir) as driver:

        def loaded(body: bytes) -> bool:
            return len(json.loads(body)) >= runs

        wait_http(f"http://127.0.0.1:{port}/data/plugin/scalars/tags", ok=loaded, timeout=600)
        out["data_ready"] = time.perf_counter() - start
        url = f"http://127.0.0.1:{port}/#timeseries"
        # its Time Series dashboard draws the 'loss' card on a canvas; the card's data table
        # shows the last step once every run's points have arrived
        last = f"{points - 1:,}"
        ready = (
            "document.querySelectorAll('canvas').length >= 1"
            f" && (document.body.innerText.match(/{last}/g) || []).length >= 2"
        )
        out["chart_page_load"] = min(page_time(driver, url, ready, timeout=300) for _ in range(2))
    return out


WORKLOAD = Workload(
    key="ui",
    title="See runs: xp ui, first paint and filter at 100k runs, live points, plot, report",
    metrics=(
        Metric("ready_10k", "xp ui ready to serve, 10k runs", "s", 1.0, "mlflow ui ready"),
        Metric(
            "first_paint_100k",
            "runs table first paint, 100k runs (Chromium)",
            "s",
            1.5,
            "mlflow ui table filled, 10k runs",
        ),
        Metric("filter_100k", "filter applied in the page, 100k runs", "s", 0.3),
        Metric("chart_10x100k", "chart of 10 runs x 100k points, from the table", "s", 0.5),
        Metric("chart_cold", "the same, first time (series parsed)", "s"),
        Metric(
            "chart_page_load",
            "the same chart as a page load",
            "s",
            None,
            "TensorBoard scalars page load",
        ),
        Metric("live_point", "live run: a logged point in the page (median)", "s", 2.0),
        Metric("plot_5", "xp plot, 5 runs x 100k points to PNG", "s", 1.5),
        Metric("plot_5_cpu", "the same, CPU time (user + system)", "s"),
        Metric("report_5", "xp report, 5 runs x 100k points", "s", 2.0),
        Metric("report_5_cpu", "the same, CPU time (user + system)", "s"),
        Metric("report_size", "report size (MB)", "MB", 2.0),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=lambda ctx: {**mlflow_side(ctx), **tensorboard_side(ctx)},
    repeat=1,
    peer_repeat=1,
    order=70,
    notes=(
        "runs from W3's cached repos (refs packed, index warm); browser figures measured in the"
        " page from navigation start; MLflow's UI over the same 10k runs in its SQLite store",
        "the chart row: from following the Charts link in the loaded app until the chart of"
        " 10 x 100k points is drawn, series parsed already (chart_cold: the first time); as a"
        " page load its peer is TensorBoard's Time Series page over the same series (it keeps"
        " 1,000 sampled points per run)",
    ),
    quick_notes=("quick: 500 / 1,000 runs and 2,000-point series",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side, "mlflow": mlflow_side, "tensorboard": tensorboard_side})
