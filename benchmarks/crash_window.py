"""Crash window: how much logging a SIGKILLed training script loses. The journal's contract
is a flush at least every second (docs/format.md), so `xp recover` should bring back every
point up to at most one second before the kill. The figure is the seconds between the kill
and the last point recovered; the training loop logs a point every ~2 ms.

Runs with the benchmark runner (`python benchmarks/run.py --only crash`) or alone:
`python benchmarks/crash_window.py [--quick]`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # standalone: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    Context,
    Metric,
    Workload,
    child_env,
    standalone,
    xp_command,
    xp_project,
)

LOOP = """
import time, xp
run = xp.start_run(name="victim")
print(run.id, flush=True)
for i in range(10**9):
    xp.log_metric("loss", 1.0 / (i + 1), step=i)
    time.sleep(0.002)
"""


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    (repo / "victim.py").write_text(LOOP)
    proc = subprocess.Popen(
        [sys.executable, "victim.py"], cwd=repo, env=child_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        time.sleep(1.5 if ctx.quick else 3.0)  # the scenario: training for a while, then the kill
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    subprocess.run(
        [*xp_command(), "recover"], cwd=repo, env=child_env(), capture_output=True, check=True
    )
    os.chdir(repo)
    import xp

    series = xp.get_run(run_id).series("loss")
    last = series["timestamp"].max().timestamp()
    return {"lost": killed_at - last, "points": float(len(series))}


WORKLOAD = Workload(
    key="crash",
    title="SIGKILL during training: logging lost (kill time - last recovered point)",
    metrics=(Metric("lost", "seconds of logging lost to a SIGKILL", "s", 1.0),),
    xp=xp_side,
    repeat=3,
    order=90,
    notes=("the journal is flushed every 0.5 s; the contract is at least every second",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side})
