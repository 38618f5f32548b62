"""W2: a sweep: 1,000 runs in one process, each start_run, 10 params, 3 metrics, end_run.
What matters is the cost per run, paid by every hyper-parameter search.

The file system's floor is measured in the same process: the file operations a run commit
cannot avoid (``OBJECTS_PER_RUN`` new loose objects, each a create, write, chmod and rename;
one line appended to the recorded-commits log; a ref written through its lock file), made
with bare ``os`` calls, without and with an fsync per file. xp's per-run figure minus the
floor is what xp's Python costs above the disk."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from types import ModuleType

from benchmarks.harness import Context, Metric, Workload, settle, xp_project


def many_runs(api: ModuleType, n: int) -> dict[str, float]:
    """The same calls for xp and MLflow."""
    first = 0.0
    t0 = time.perf_counter()
    for r in range(n):
        api.start_run()
        api.log_params({f"param_{i}": r * 10 + i for i in range(10)})
        api.log_metrics({"loss": 1.0 / (r + 1), "accuracy": r / n, "f1": 0.5})
        api.end_run()
        if r == 0:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return {"per_run": total / n, "first_run": first, "total": total}


# A W2 run writes 3 blobs (meta, params, metrics; tags and packages repeat), the record
# folder's tree, .xp's tree, the root tree and the commit (strace of one run).
OBJECTS_PER_RUN = 7


def fs_floor(root: Path, n: int, fsync: bool) -> float:
    """Seconds per run of a run commit's file operations alone, in a git-like layout."""
    objects, refs = root / "objects", root / "refs"
    shutil.rmtree(root, ignore_errors=True)
    for d in range(256):
        (objects / f"{d:02x}").mkdir(parents=True)
    refs.mkdir()
    body = os.urandom(200)
    log = os.open(root / "recorded", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    t0 = time.perf_counter()
    for r in range(n):
        for o in range(OBJECTS_PER_RUN):
            name = f"{(r * OBJECTS_PER_RUN + o) % 256:02x}"
            tmp = objects / name / f"tmp_obj_{r}_{o}"
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchmod(fd, 0o444)
            os.write(fd, body)
            if fsync:
                os.fsync(fd)
            os.close(fd)
            os.replace(tmp, objects / name / f"{r:08d}{o:030d}")
        os.write(log, body[:41])
        lock = refs / f"run{r}.lock"
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, body[:41])
        if fsync:
            os.fsync(fd)
        os.close(fd)
        os.replace(lock, refs / f"run{r}")
    per_run = (time.perf_counter() - t0) / n
    os.close(log)
    shutil.rmtree(root, ignore_errors=True)
    return per_run


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    os.chdir(repo)
    import xp

    settle()
    n = ctx.size(1000, 50)
    c0 = time.process_time()
    out = many_runs(xp, n)
    out["cpu_per_run"] = (time.process_time() - c0) / n
    out["floor"] = fs_floor(ctx.workdir / "floor", n, fsync=False)
    out["floor_fsync"] = fs_floor(ctx.workdir / "floor", n, fsync=True)
    return out


def mlflow_side(ctx: Context) -> dict[str, float]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{ctx.workdir / 'mlflow.db'}")
    mlflow.MlflowClient().search_experiments()  # creates the store before timing
    settle()
    return many_runs(mlflow, ctx.size(1000, 50))


WORKLOAD = Workload(
    key="W2",
    title="1,000 runs of 10 params + 3 metrics, start_run .. end_run each",
    metrics=(
        Metric("per_run", "per run: start_run .. end_run", "ms", 0.003),
        Metric("cpu_per_run", "per run: CPU time (xp's process)", "ms"),
        Metric("floor", "file-system floor per run (same creates + renames, bare os calls)", "ms"),
        Metric("floor_fsync", "file-system floor per run, an fsync per file", "ms"),
        Metric("total", "total", "s"),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=3,
    peer_repeat=1,
    order=20,
    notes=(
        "params and metrics go in as one log_params / log_metrics call per run (MLflow's"
        " batch path)",
    ),
    quick_notes=("quick: 50 runs",),
)
