"""SIGKILL at random moments in the life of a run, of `xp commit` and of `xp gc`; after each
kill, the next xp command must find everything consistent (issue 10):

- run: a script logging runs one after the other (params, a metric series, an artifact, a
  tag) is killed; `xp recover` then leaves no journal, part or kept pack behind, every run
  reads back (finished ones whole, crashed ones as a gapless prefix of their steps), every
  artifact is in the cache, and `xp gc --grace 0` deletes none of them.
- commit: `xp commit` of a 300-file workspace is killed; no lock is left behind, the next
  `xp commit` works, and `xp show` lists only whole runs.
- gc: `xp gc --grace 0` is killed while it deletes; every object of a remaining run is still
  there (an object it had set aside is put back by the next gc), and the next gc works.

Every trial ends with `git fsck --strict`. The figure is the number of trials that broke a
rule (target 0). tests/tracking/test_sigkill.py runs a few trials of each (slow); this runs
many: `python benchmarks/run.py --only sigkill` or `python benchmarks/sigkill.py [--quick]`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # standalone: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    Context,
    Metric,
    Workload,
    child_env,
    git,
    standalone,
    write_files,
    xp_command,
    xp_project,
)

TRIALS = 100  # per scenario
QUICK_TRIALS = 2
RUNS = """
import os, time, xp
os.makedirs("out", exist_ok=True)
i = len(os.listdir("out"))
while True:
    with xp.start_run(name=f"r{i}", params={"i": i, "lr": 0.1}):
        for step in range(50):
            xp.log_metric("loss", 1.0 / (step + 1), step=step)
            time.sleep(0.004)
        path = f"out/m{i}.bin"
        with open(path, "wb") as fh:
            fh.write(os.urandom(2048))
        xp.log_artifact(path)
        xp.set_tag("t", "v")
    i += 1
"""


def xp_cmd(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*xp_command(), *args], cwd=repo, env=child_env(), capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"xp {' '.join(args)} exited {proc.returncode}: {proc.stderr[-300:]}")
    return proc


def kill_at(cmd: list[str], repo: Path, delay: float) -> None:
    """Start ``cmd`` in ``repo`` and SIGKILL it after ``delay`` seconds (or let it end)."""
    proc = subprocess.Popen(
        cmd, cwd=repo, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()


def consistent(repo: Path) -> list[str]:
    """What is wrong with the repository after a kill and the next xp command (none: [])."""
    problems = []
    fsck = subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling"], cwd=repo, capture_output=True, text=True
    )
    if fsck.returncode != 0 or "error" in fsck.stderr.lower():
        problems.append(f"git fsck: {(fsck.stdout + fsck.stderr).strip()[:200]}")
    left = [
        p.name
        for p in (repo / ".git" / "xp" / "journal").glob("*")
        if p.suffix in (".journal", ".part", ".failed", ".corrupt")
    ]
    if left:
        problems.append(f"journals left after recovery: {left}")
    keeps = list((repo / ".git" / "objects" / "pack").glob("*.keep"))
    if keeps:
        problems.append(f"kept packs left: {[k.name for k in keeps]}")
    # git's lock files (`<file>.lock`, O_EXCL); xp's worktrees.lock is a flock file that stays
    locks = [str(p) for p in (repo / ".git").rglob("*.lock") if p.name != "worktrees.lock"]
    if locks:
        problems.append(f"locks left: {locks}")
    shown = xp_cmd(repo, "show", "--all", "--format", "json", check=False)
    if shown.returncode != 0:
        return [*problems, f"xp show exited {shown.returncode}: {shown.stderr[-200:]}"]
    invalid = [d["run_id"] for d in json.loads(shown.stdout or "[]") if d["status"] == "invalid"]
    if invalid:
        problems.append(f"invalid runs: {invalid}")
    return problems


def runs_whole(repo: Path) -> list[str]:
    """Every run of the RUNS script reads back as logged; its artifacts are cached."""
    import xp
    from xp.artifacts import cache

    problems = []
    cache_dir = repo / ".git" / "xp" / "cache"
    for entry in xp.list_runs(path=repo):
        got = xp.get_run(entry.id, path=repo)
        steps = got.series("loss")["step"].tolist() if got.metrics else []
        if steps != list(range(len(steps))):
            problems.append(f"{entry.id}: steps {steps[:8]}... not 0..n")
        if got.status == "finished" and (len(steps) != 50 or not got.artifacts or not got.tags):
            problems.append(f"{entry.id}: finished but {len(steps)} points, {got.artifacts}")
        if got.status not in ("finished", "crashed"):
            problems.append(f"{entry.id}: status {got.status}")
        problems += [
            f"{entry.id}: artifact {a.path} missing from the cache"
            for a in got.artifacts
            if not cache.verify(cache_dir, a.sha256)
        ]
    return problems


def trial_run(repo: Path, rng: random.Random) -> list[str]:
    kill_at([sys.executable, "runs.py"], repo, rng.uniform(0.3, 2.5))
    xp_cmd(repo, "recover")
    problems = consistent(repo) + runs_whole(repo)
    xp_cmd(repo, "gc", "--grace", "0")
    return problems + [f"after xp gc: {p}" for p in runs_whole(repo)]


def trial_commit(repo: Path, rng: random.Random) -> list[str]:
    n = len(list((repo / "edits").iterdir()))
    (repo / "edits" / f"e{n}.txt").write_text(f"edit {n}\n")
    kill_at([*xp_command(), "commit", "-n", f"c{n}", "-m", "a message"], repo, rng.uniform(0, 0.8))
    problems = consistent(repo)
    after = xp_cmd(repo, "commit", "-n", f"after{n}", check=False)
    if after.returncode != 0:
        problems.append(f"the next xp commit failed: {after.stderr[-200:]}")
    return problems


def trial_gc(repo: Path, rng: random.Random) -> list[str]:
    import xp
    from xp.artifacts import cache

    ids = [e.id for e in xp.list_runs(path=repo)]
    xp_cmd(repo, "rm", *rng.sample(ids, k=3))  # garbage for gc to take
    old = time.time() - 7200
    for _sha, path in cache.iter_objects(repo / ".git" / "xp" / "cache"):
        os.utime(path, (old, old))
    kill_at([*xp_command(), "gc", "--grace", "0"], repo, rng.uniform(0, 0.8))
    problems = consistent(repo)
    if xp_cmd(repo, "gc", "--grace", "0", check=False).returncode != 0:
        problems.append("the next xp gc failed")
    problems += runs_whole(repo)
    aside = list((repo / ".git" / "xp" / "cache" / "tmp").glob("*.gc"))
    if aside:
        problems.append(f"objects still set aside after the next gc: {aside}")
    subprocess.run([sys.executable, "few_runs.py", "3"], cwd=repo, env=child_env(), check=True)
    return problems  # (3 new runs replace the ones removed)


def project(root: Path, scenario: str) -> Path:
    repo = xp_project(root)
    write_files(repo, {".gitignore": "outputs/\nout/\n__pycache__/\n", "runs.py": RUNS})
    (repo / "edits").mkdir()
    (repo / "edits" / "e0.txt").write_text("first\n")
    if scenario == "commit":
        write_files(repo, {f"src/f{i}.py": f"x = {i}\n" * 20 for i in range(300)})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "project")
    if scenario == "gc":  # runs to collect from
        few = RUNS.replace("import os,", "import os, sys,").replace(
            "while True:", "for _ in range(int(sys.argv[1])):"
        )
        (repo / "few_runs.py").write_text(few)
        subprocess.run([sys.executable, "few_runs.py", "10"], cwd=repo, env=child_env(), check=True)
    return repo


SCENARIOS: dict[str, Callable[[Path, random.Random], list[str]]] = {
    "run": trial_run,
    "commit": trial_commit,
    "gc": trial_gc,
}


def run_trials(root: Path, scenario: str, trials: int, seed: int = 10) -> list[list[str]]:
    """``trials`` kills in one repository; the problems each left (an empty list: none)."""
    repo = project(root / scenario, scenario)
    rng = random.Random(seed)
    return [SCENARIOS[scenario](repo, rng) for _ in range(trials)]


def xp_side(ctx: Context) -> dict[str, float]:
    out: dict[str, float] = {}
    trials = ctx.size(TRIALS, QUICK_TRIALS)
    for scenario in SCENARIOS:
        results = run_trials(ctx.workdir, scenario, trials)
        broken = [p for p in results if p]
        for problems in broken[:3]:
            print(f"sigkill {scenario}: {problems}", file=sys.stderr)
        out[f"{scenario}_broken"] = float(len(broken))
        out[f"{scenario}_trials"] = float(trials)
    return out


WORKLOAD = Workload(
    key="sigkill",
    title="SIGKILL at random moments of a run, xp commit, xp gc: trials left inconsistent",
    metrics=(
        Metric("run_broken", "runs: kills that left anything inconsistent", "n", 0.0),
        Metric("commit_broken", "xp commit: kills that left anything inconsistent", "n", 0.0),
        Metric("gc_broken", "xp gc: kills that left anything inconsistent", "n", 0.0),
        Metric("run_trials", "kills per scenario", "n"),
    ),
    xp=xp_side,
    repeat=1,
    order=95,
    notes=(f"{TRIALS} kills per scenario, each followed by git fsck --strict and xp's checks",),
    quick_notes=(f"quick: {QUICK_TRIALS} kills per scenario",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side})
