"""Artifacts: `log_artifact` of a 50 MB and a 1 GB file (hash + store in the cache), against
hashlib alone on the same file (the floor: reading and hashing once). The peer doing the same
job the same way is MLflow's in-process `mlflow.log_artifact` (a copy into its local artifact
store); `dvc add` (DVC's command: hash, copy into its cache, link back) is a second line, a
CLI whose figure includes DVC's start-up. Also `xp get` of the 1 GB artifact into a fresh
folder (materialise: reflink, else a read-only hard link, else copy).

Runs with the benchmark runner (`python benchmarks/run.py --only artifacts`) or alone:
`python benchmarks/artifacts.py [--quick]`.
"""

from __future__ import annotations

import hashlib
import os
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
    age,
    child_env,
    git,
    git_repo,
    random_file,
    script,
    settle,
    standalone,
    xp_command,
    xp_project,
)

MB = 1_000_000
SIZES = {"50mb": (50 * MB, 5 * MB), "1gb": (1000 * MB, 20 * MB)}  # key -> (full, quick)


def hashlib_seconds(path: Path) -> float:
    start = time.perf_counter()
    with open(path, "rb") as fh:
        hashlib.file_digest(fh, "sha256")
    return time.perf_counter() - start


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    os.chdir(repo)
    import xp
    from xp.artifacts import cache

    out: dict[str, float] = {}
    for key, (full, quick) in SIZES.items():
        path = random_file(repo / "outputs" / f"{key}.bin", ctx.size(full, quick), seed=len(key))
        settle()
        hashlib_seconds(path)  # untimed: the file is read from the page cache by every side
        out[f"hashlib_{key}"] = hashlib_seconds(path)
        start = time.perf_counter()
        cache.hash_file(path)
        out[f"hash_file_{key}"] = time.perf_counter() - start
        with xp.start_run() as run:
            start = time.perf_counter()
            xp.log_artifact(path)
            out[f"log_{key}"] = time.perf_counter() - start
    settle()
    start = time.perf_counter()
    subprocess.run(
        [*xp_command(), "get", run.id, "-o", str(ctx.workdir / "restored")],
        cwd=repo,
        env=child_env(),
        capture_output=True,
        check=True,
    )
    out["get_1gb"] = time.perf_counter() - start
    return out


def mlflow_side(ctx: Context) -> dict[str, float]:
    """In-process ``mlflow.log_artifact`` into MLflow's default local store, like xp's call."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{ctx.workdir / 'mlflow.db'}")
    mlflow.MlflowClient().search_experiments()  # creates the store before timing
    out: dict[str, float] = {}
    for key, (full, quick) in SIZES.items():
        path = random_file(
            ctx.workdir / "outputs" / f"{key}.bin", ctx.size(full, quick), seed=len(key)
        )
        settle()
        hashlib_seconds(path)  # untimed: the file is in the page cache, as on the other sides
        with mlflow.start_run():
            start = time.perf_counter()
            mlflow.log_artifact(str(path))
            out[f"log_{key}"] = time.perf_counter() - start
    return out


def dvc_side(ctx: Context) -> dict[str, float]:
    exe = script("dvc")
    if exe is None:
        raise RuntimeError("the dvc command is not on PATH")
    repo = git_repo(ctx.workdir / "project", {"train.py": "print('train')\n"})
    subprocess.run([exe, "init", "-q"], cwd=repo, env=child_env(), check=True)
    age(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "dvc init")
    out: dict[str, float] = {}
    for key, (full, quick) in SIZES.items():
        path = random_file(repo / "outputs" / f"{key}.bin", ctx.size(full, quick), seed=len(key))
        settle()
        hashlib_seconds(path)
        start = time.perf_counter()
        subprocess.run(
            [exe, "add", "-q", str(path.relative_to(repo))],
            cwd=repo,
            env=child_env(),
            capture_output=True,
            check=True,
        )
        out[f"log_{key}"] = time.perf_counter() - start
    return out


WORKLOAD = Workload(
    key="artifacts",
    title="log_artifact of 50 MB and 1 GB (hash + store) vs hashlib, mlflow.log_artifact, dvc add",
    metrics=(
        Metric("hashlib_50mb", "hashlib.sha256 alone, 50 MB (floor)", "s"),
        Metric("hash_file_50mb", "xp cache.hash_file, 50 MB", "s"),
        Metric("log_50mb", "log_artifact, 50 MB", "s", peer_label="mlflow.log_artifact"),
        Metric(
            "log_50mb", "log_artifact, 50 MB, vs dvc add", "s", peer="dvc", peer_label="dvc add"
        ),
        Metric("hashlib_1gb", "hashlib.sha256 alone, 1 GB (floor)", "s"),
        Metric("hash_file_1gb", "xp cache.hash_file, 1 GB", "s"),
        Metric("log_1gb", "log_artifact, 1 GB", "s", peer_label="mlflow.log_artifact"),
        Metric("log_1gb", "log_artifact, 1 GB, vs dvc add", "s", peer="dvc", peer_label="dvc add"),
        Metric("get_1gb", "xp get of the 1 GB artifact (subprocess)", "s"),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    extra_peers=(("dvc", dvc_side),),
    repeat=3,
    peer_repeat=1,
    order=70,
    notes=(
        "log_artifact hashes while it copies into the cache (reflink first where the file"
        " system has it); mlflow.log_artifact copies the file into its local artifact store"
        " in-process (no hash); `dvc add` is a subprocess, so its figure includes DVC's"
        " start-up",
    ),
    quick_notes=("quick: 5 MB and 20 MB files",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side, "mlflow": mlflow_side, "dvc": dvc_side})
