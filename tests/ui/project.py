"""A project for the UI's tests, and what they use to look at it.

``build_project`` makes a real repository whose runs are logged by a real child process
through xp's API (series, images of every kind, text artifacts, commits to compare and a
branch history), plus a run a hostile clone could push: HTML and script in its name, params,
tags, metric and artifact names, and a manifest whose paths try to leave the cache. ``XpUi``
starts ``xp ui`` as a subprocess on a free port; ``chromium`` drives Debian's Chromium.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import ROOT, spawned, wait_for

ARTIFACTS = ROOT / "test-artifacts"  # screenshots and pages the browser tests keep (git-ignored)

HOSTILE_NAME = '<img src=x onerror="window.__xss=1">'
HOSTILE_ID = "00h0st1e000000"  # a valid id from long ago: listed last
CARRIED = b"CACHED-BYTES of an artifact, not a file of this machine\n"

LOG_RUNS = r"""
import io, json, math, os, struct, subprocess, sys, zlib
import xp
from PIL import Image

def png(w, h, rgb):
    raw = b"".join(b"\0" + bytes(rgb) * w for _ in range(h))
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    data = chunk(b"IDAT", zlib.compress(raw))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + data + chunk(b"IEND", b"")

def image(fmt, rgb):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), rgb).save(buf, fmt)
    return buf.getvalue()

def git(*args):
    subprocess.run(["git", *args], check=True, capture_output=True)

ids = {}
os.makedirs("out", exist_ok=True)

def write(name, data):
    path = os.path.join("out", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    return path

def train(name, lr, model, experiment, steps=300):
    params = {"lr": lr, "model": model, "epochs": 3}
    tags = {"team": "vision"}
    with xp.start_run(name=name, experiment=experiment, params=params, tags=tags) as run:
        for s in range(steps):
            xp.log_metric("loss", 2 * math.exp(-lr * s * 3) + 0.01, step=s)
            xp.log_metric("acc", 1 - math.exp(-lr * s * 3), step=s)
        xp.log_metric("f1", 0.5 + lr)
        ids[name] = run.id

train("alpha", 0.1, "cnn", "base")
with open("train.py", "a") as fh:
    fh.write("lr = 0.01  # tuned\n")
git("commit", "-qam", "tune the learning rate")
train("beta", 0.01, "cnn", "base")
with open("train.py", "a") as fh:
    fh.write("model = 'mlp'\n")
git("commit", "-qam", "try an mlp")
train("gamma", 0.001, "mlp", "other")

with xp.start_run(name="big") as run:
    for s in range(20000):
        xp.log_metric("loss", 100.0 if s == 12345 else 1.0 / (1 + s * 0.001), step=s)
    ids["big"] = run.id

with xp.start_run(name="art") as run:
    xp.log_metric("loss", 0.5)
    xp.log_artifact(write("red.png", png(40, 30, (220, 20, 60))), name="images/red.png")
    xp.log_artifact(write("green.jpg", image("JPEG", (20, 160, 60))), name="images/green.jpg")
    xp.log_artifact(write("blue.gif", image("GIF", (30, 60, 220))), name="images/blue.gif")
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30">'
           b'<rect width="40" height="30" fill="#f0a000"/>'
           b'<script>window.__xss=9</script></svg>')
    xp.log_artifact(write("orange.svg", svg), name="images/orange.svg")
    notes = "# Notes\n\nSome **bold** text and [a link](javascript:window.__xss=10).\n"
    xp.log_text(notes, "notes.md")
    xp.log_text("a,b\n1,<b>2</b>\n3,4\n", "table.csv")
    xp.log_text("<script>window.__xss=11</script>\n", "page.html")
    xp.log_artifact(write("blob.bin", bytes(range(256)) * 4), name="blob.bin")
    xp.log_text(sys.argv[1], "carried.txt")
    ids["art"] = run.id

print(json.dumps(ids))
"""


@dataclass
class Project:
    root: Path
    env: dict[str, str]
    ids: dict[str, str]  # run name -> id

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)


def isolated_env(home: Path) -> dict[str, str]:
    """The environment tests/conftest.py's ``_isolate`` gives a test, for processes started
    by module-scoped fixtures (which run before it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "XP_"))}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.com",
        GIT_COMMITTER_NAME="Test Committer",
        GIT_COMMITTER_EMAIL="committer@example.com",
    )
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    return env


def _git(root: Path, env: dict[str, str], *args: str, input: str | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=root, env=env, input=input, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def forge_run(root: Path, env: dict[str, str], run_id: str, files: dict[str, str]) -> str:
    """A run commit made with git plumbing, as a hostile clone could push it."""
    env = {**env, "GIT_INDEX_FILE": str(root / ".git" / "forge-index")}
    for path, text in files.items():
        sha = _git(root, env, "hash-object", "-w", "--stdin", input=text)
        _git(root, env, "update-index", "--add", "--cacheinfo", f"100644,{sha},{path}")
    tree = _git(root, env, "write-tree")
    parent = _git(root, env, "rev-parse", "HEAD")
    commit = _git(root, env, "commit-tree", tree, "-p", parent, "-m", f"xp: {HOSTILE_NAME}")
    _git(root, env, "update-ref", f"refs/xp/runs/{run_id}", commit)
    os.unlink(env["GIT_INDEX_FILE"])
    return commit


def build_project(root: Path, home: Path) -> Project:
    env = isolated_env(home)
    root.mkdir()
    _git(root, env, "init", "-q")
    (root / "train.py").write_text("import xp\nprint('train')\n")
    (root / ".gitignore").write_text("out/\n")
    _git(root, env, "add", ".")
    _git(root, env, "commit", "-qm", "init")
    script = root.parent / "log_runs.py"
    script.write_text(textwrap.dedent(LOG_RUNS))
    proc = subprocess.run(
        [sys.executable, str(script), CARRIED.decode()],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    ids: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
    carried = hashlib.sha256(CARRIED).hexdigest()
    secret = root.parent / "secret.txt"
    secret.write_text("SECRET: never served\n")
    # a cache object that is a symlink to a file outside the cache
    linked = "f" * 64
    link = root / ".git" / "xp" / "cache" / "sha256" / linked[:2] / linked[2:4] / linked
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    # and one that points at another object inside the cache: still not served
    inner = "e" * 64
    inner_link = link.parent.parent.parent / inner[:2] / inner[2:4] / inner
    inner_link.parent.mkdir(parents=True, exist_ok=True)
    inner_link.symlink_to(link.parent.parent.parent / carried[:2] / carried[2:4] / carried)
    meta = textwrap.dedent(
        f"""\
        format: 1
        id: {HOSTILE_ID}
        name: '{HOSTILE_NAME}'
        experiment: <script>window.__xss=2</script>
        status: finished
        start_time: '2026-01-01T00:00:00.000Z'
        end_time: '2026-01-01T00:01:00.000Z'
        duration: 60.0
        command: ['<b>python</b>', 'train.py']
        """
    )
    artifacts = "".join(
        f"- path: '{path}'\n  sha256: {sha}\n  size: {size}\n"
        for path, sha, size in sorted(
            [
                ("<img src=x onerror=window.__xss=7>.txt", carried, len(CARRIED)),
                ("../../../../etc/passwd", carried, len(CARRIED)),
                ("/etc/hostname", carried, len(CARRIED)),
                ("linked.txt", linked, 21),
                ("inner-link.txt", inner, len(CARRIED)),
                ("bad-sha.txt", "../../../../../etc/passwd", 10),
            ]
        )
    )
    forge_run(
        root,
        env,
        HOSTILE_ID,
        {
            ".xp/run/meta.yaml": meta,
            ".xp/run/params.yaml": "'<b onmouseover=window.__xss=3>p</b>':"
            " <script>window.__xss=4</script>\nlr: 0.5\n",
            ".xp/run/metrics.yaml": "'<i>m</i>': 1.5\nloss: 0.25\n",
            ".xp/run/tags.yaml": "t: <svg onload=window.__xss=6>\n"
            "link: javascript:window.__xss=5\n",
            ".xp/run/artifacts.yaml": artifacts,
            ".xp/run/series/<b>evil</b>.tsv": "step\tvalue\ttimestamp\n0\t1\t1767225600000\n"
            "1\t2\t1767225601000\n",
        },
    )
    ids["hostile"] = HOSTILE_ID
    return Project(root, env, ids)


# -- a model registry -------------------------------------------------------------------------

MODEL_NOTE = '<img src=x onerror="window.__xss=12">'  # a register tag's message, from anyone


def register_models(root: Path) -> dict[str, str]:
    """Three runs in ``root`` (cwd), registered with the real registry functions as churn
    v0.0.1 (production, then staging), v0.0.2 (production, then rolled back from it; its
    note is ``MODEL_NOTE``) and v0.0.3 (deregistered); the first run is team/fraud v0.0.1
    too. Returns the run ids by name."""
    import xp
    from xp.gitstore.repo import find_repo
    from xp.production.status import rollback
    from xp.sharing import registry

    ids = {}
    (root / "out").mkdir(exist_ok=True)
    for name, rmse in (("first", 0.5), ("second", 0.25), ("third", 0.75)):
        (root / "out" / "model.pkl").write_bytes(f"weights of {name}".encode())
        with xp.start_run(name=name, path=root) as run:
            xp.log_metric("rmse", rmse)
            xp.log_metric("r2", 1 - rmse)
            xp.log_artifact(root / "out" / "model.pkl")
        ids[name] = str(run.id)
    repo = find_repo(root)
    registry.register(repo, run=ids["first"], name="churn", message="the baseline")
    registry.register(repo, run=ids["second"], name="churn", message=MODEL_NOTE)
    registry.register(repo, run=ids["third"], name="churn")
    registry.register(repo, run=ids["first"], name="team/fraud", version="v1.0.0")
    registry.assign(repo, name="churn", version="v0.0.1", stage="production")
    registry.assign(repo, name="churn", version="v0.0.2", stage="production")
    rollback(repo, name="churn", stage="production")  # back to v0.0.1
    registry.assign(repo, name="churn", version="v0.0.2", stage="staging")
    registry.deregister(repo, name="churn", version="v0.0.3")
    return ids


# -- the server -------------------------------------------------------------------------------


@dataclass
class XpUi:
    url: str
    proc: subprocess.Popen[str]
    stderr: Path  # what the server wrote there (a file: a pipe nobody reads could fill up)

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """GET ``path`` (relative to the server's root): status, headers (lower case), body."""
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                return response.status, headers, response.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (status, body[:500])
        return json.loads(body)


@contextlib.contextmanager
def xp_ui(project: Project, *args: str) -> Iterator[XpUi]:
    """``xp ui --port 0 ARGS`` in the project, once it prints its URL; killed afterwards."""
    cmd = [sys.executable, "-m", "xp", "ui", "--port", "0", *args]
    err = project.root.parent / f"xp-ui-{os.getpid()}-{id(cmd)}.err"
    with (
        open(err, "w") as stderr,
        spawned(
            cmd, cwd=project.root, env=project.env, text=True, stdout=subprocess.PIPE, stderr=stderr
        ) as proc,
    ):
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "http://" in line, line + err.read_text()
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        try:
            yield XpUi(url, proc, err)
        finally:  # Ctrl-C, as a user stops it (and coverage.py saves its data); then SIGKILL
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=20)


# -- the browser ------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


@contextlib.contextmanager
def chromium(
    profile: Path, *, offline: bool = False, size: tuple[int, int] = (1400, 900)
) -> Iterator[Any]:
    """Debian's Chromium through Selenium and Debian's chromedriver (no browser download);
    ``offline``: every host name resolves nowhere and no proxy answers (file:// still works)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={size[0]},{size[1]}")
    if offline:
        options.add_argument("--proxy-server=http://127.0.0.1:9")
        options.add_argument("--proxy-bypass-list=<-loopback>")
        options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_window_size(*size)
        yield driver
    finally:
        driver.quit()


def wait_js(driver: Any, script: str, what: str, timeout: float = 30.0, *args: Any) -> Any:
    """Poll a script in the page until it returns something truthy (and return that)."""

    def ask() -> Any:
        try:
            return driver.execute_script(script, *args)
        except Exception:  # the page may be between two states
            return None

    try:
        return wait_for(ask, what, timeout=timeout, interval=0.05)
    except AssertionError:  # keep what the page looked like, for whoever reads the failure
        screenshot(driver, "failed-" + "".join(c if c.isalnum() else "-" for c in what) + ".png")
        raise


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def console_errors(driver: Any, allow: tuple[str, ...] = ()) -> list[str]:
    entries = driver.get_log("browser")
    return [
        e["message"]
        for e in entries
        if e["level"] == "SEVERE" and not any(a in e["message"] for a in allow)
    ]


# Count the pixels of the canvases matching ``selector`` within ``tol`` of colour ``hex``.
PIXELS_JS = """
const [sel, hex, tol] = arguments;
const want = [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
let n = 0;
for (const c of document.querySelectorAll(sel)) {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] <= 200) continue;
    if (want.every((v, k) => Math.abs(d[i + k] - v) <= tol)) n++;
  }
}
return n;
"""
