"""git-native: what only a git-native tracker does (issue 15).

- ``xp tag`` / ``xp note`` on a finished run: the command (start-up included, best of N),
  and ``xp.set_tag(run=)`` in-process (median); MLflow: ``MlflowClient().set_tag`` on a
  finished run of its sqlite store, the nearest thing it has.
- ``xp show`` at 10,000 runs with and without annotations (every run tagged after the
  fact): warm, best of N.
- ``xp bisect`` over 1,000 commits with a run on every commit: wall time, and how many
  steps and executed runs (kept in the JSON; the side fails past 11 steps or any run).
- ``xp verify MODEL@production``: the whole chain (two SSH-signed tags, the signed run
  commit, the tree re-hashed, the artifact re-hashed), best of N; needs ssh-keygen.
- Signing's cost per run: ``start_run`` .. ``end_run`` of 30 runs, unsigned and SSH-signed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.harness import (
    Context,
    Metric,
    Workload,
    best_of,
    child_env,
    git,
    settle,
    standalone,
    xp_command,
    xp_project,
)


def _runs(root: Path, n: int) -> list[str]:
    import xp

    ids = []
    for i in range(n):
        with xp.start_run(path=root, params={"i": i}) as run:
            xp.log_metric("val_loss", 0.3 + i * 1e-6)
        ids.append(str(run.id))
    return ids


def _history(root: Path, n: int, bad_at: int) -> list[str]:
    """n commits through git fast-import (level.txt changes in each; 0.45 from bad_at on)."""
    parent = git(root, "rev-parse", "HEAD").strip()
    stream = []
    for i in range(n):
        level = f"{0.45 if i >= bad_at else 0.30}{i:06d}\n".encode()
        stream.append(
            f"commit refs/heads/main\nmark :{i + 1}\n"
            f"committer Bench Mark <bench@example.com> {1790000000 + i} +0000\n"
            f"data {len(f'change {i}')}\nchange {i}\n"
            + (f"from {parent}\n" if i == 0 else "")
            + f"M 100644 inline level.txt\ndata {len(level)}\n"
        )
        stream.append(level.decode())
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=root,
        input="".join(stream).encode(),
        env=child_env(),
        check=True,
    )
    git(root, "checkout", "-q", "-f", "main")
    return git(root, "rev-list", "--reverse", f"{parent}..main").split()


def xp_side(ctx: Context) -> dict[str, float]:
    import xp

    out: dict[str, float] = {}
    root = xp_project(ctx.workdir / "proj")
    os.chdir(root)
    n = ctx.size(10_000, 200)
    ids = _runs(root, n)
    target = ids[len(ids) // 2]
    show = [*xp_command(), "show", "-n", "20"]
    settle()
    out["show_plain"] = best_of(show, ctx.size(5, 2), root)
    # tag / note: the command, and the API in-process
    k = ctx.size(10, 3)
    out["tag_cli"] = best_of([*xp_command(), "tag", target, "reviewed=yes"], k, root)
    out["note_cli"] = best_of([*xp_command(), "note", target, "looks fine"], k, root)
    times = []
    for i in range(ctx.size(20, 3)):
        start = time.perf_counter()
        xp.set_tag("round", i, run=target)
        times.append(time.perf_counter() - start)
    out["tag_api"] = statistics.median(times)
    # every run annotated (one note commit per run is what 10k `xp tag` calls would leave)
    for run_id in ids:
        xp.set_tag("reviewed", "yes", run=run_id)
    settle()
    out["show_annotated"] = best_of(show, ctx.size(5, 2), root)
    out["show_ratio"] = out["show_annotated"] / out["show_plain"]
    return out


def bisect_side(ctx: Context) -> dict[str, float]:
    """1,000 commits, a run on each (made from a clean checkout of it), then xp bisect."""
    import xp

    root = xp_project(ctx.workdir / "bisect")
    os.chdir(root)
    n = ctx.size(1000, 60)
    shas = _history(root, n, bad_at=n * 2 // 3)
    for sha in shas:
        (root / ".git" / "HEAD").write_text(sha + "\n")  # detached at sha, files as in sha
        (root / "level.txt").write_bytes(git(root, "show", f"{sha}:level.txt").encode())
        with xp.start_run(path=root):
            xp.log_metric("val_loss", float((root / "level.txt").read_text()))
    git(root, "checkout", "-q", "-f", "main")
    settle()
    cmd = [*xp_command(), "bisect", "-m", "val_loss", "--good", shas[0], "--bad", shas[-1]]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=child_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or f"first bad commit: {shas[n * 2 // 3]}" not in proc.stdout:
        raise RuntimeError(f"xp bisect failed: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    line = next(ln for ln in proc.stdout.splitlines() if "run(s) executed" in ln)
    steps, executed = int(line.split()[0]), int(line.split(", ")[1].split()[0])
    if steps > 11 or executed:
        raise RuntimeError(f"bisect took {steps} steps and executed {executed} runs")
    return {"bisect": elapsed, "bisect_steps": steps, "bisect_executed": executed}


def _keys(root: Path) -> Path:
    key = root.parent / "signing"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(key)], check=True
    )
    git(root, "config", "gpg.format", "ssh")
    git(root, "config", "user.signingKey", str(key))
    allowed = root.parent / "allowed_signers"
    allowed.write_text(f"bench@example.com {key.with_suffix('.pub').read_text()}")
    git(root, "config", "gpg.ssh.allowedSignersFile", str(allowed))
    return key


def _per_run(root: Path, n: int) -> float:
    import xp

    times = []
    for _ in range(n):
        start = time.perf_counter()
        with xp.start_run(path=root, params={"lr": 0.1}):
            xp.log_metric("acc", 0.9)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def signing_side(ctx: Context) -> dict[str, float]:
    import xp

    root = xp_project(ctx.workdir / "signing" / "proj")
    os.chdir(root)
    _keys(root)
    n = ctx.size(30, 5)
    out = {"run_unsigned": _per_run(root, n)}
    git(root, "config", "xp.sign", "true")
    out["run_signed"] = _per_run(root, n)
    out["sign_cost"] = out["run_signed"] - out["run_unsigned"]
    model = root / "outputs" / "model.pkl"
    model.parent.mkdir(exist_ok=True)
    model.write_bytes(os.urandom(1 << 20))
    with xp.start_run(path=root) as run:
        xp.log_metric("acc", 0.9)
        xp.log_artifact(model)
    version = xp.register_model(str(run.id), "churn", path=root).version
    xp.assign_stage("churn", version, "production", path=root)
    settle()
    out["verify"] = best_of([*xp_command(), "verify", "churn@production"], ctx.size(10, 2), root)
    return out


def mlflow_side(ctx: Context) -> dict[str, float]:
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{ctx.workdir}/mlflow.db")
    with mlflow.start_run() as run:
        mlflow.log_metric("val_loss", 0.3)
    client = MlflowClient()
    times = []
    for i in range(ctx.size(20, 3)):
        start = time.perf_counter()
        client.set_tag(run.info.run_id, "round", str(i))
        times.append(time.perf_counter() - start)
    return {"tag_api": statistics.median(times)}


def xp_all(ctx: Context) -> dict[str, float]:
    out = xp_side(ctx)
    out.update(bisect_side(ctx))
    if subprocess.run(["which", "ssh-keygen"], capture_output=True).returncode == 0:
        out.update(signing_side(ctx))
    return out


WORKLOAD = Workload(
    key="git-native",
    title="annotations, bisect, signed provenance (issue 15)",
    metrics=(
        Metric("tag_cli", "xp tag RUN k=v (command)", "ms", 0.100),
        Metric("note_cli", "xp note RUN TEXT (command)", "ms", 0.100),
        Metric(
            "tag_api",
            "xp.set_tag(run=) in-process",
            "ms",
            0.100,
            peer_label="MlflowClient().set_tag",
        ),
        Metric("show_plain", "xp show, 10k runs, no annotations", "ms"),
        Metric("show_annotated", "xp show, 10k runs, each annotated", "ms"),
        Metric("bisect", "xp bisect, 1,000 commits with runs", "s"),
        Metric("run_unsigned", "a run, unsigned", "ms"),
        Metric("run_signed", "a run, SSH-signed", "ms"),
        Metric("verify", "xp verify MODEL@production", "ms", 0.300),
    ),
    xp=xp_all,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=1,
    peer_repeat=1,
    order=90,
    notes=(
        "show with annotations should stay within 10 % of without (show_ratio in the JSON);"
        " bisect's steps and executed runs are in the JSON (bisect_steps, bisect_executed)",
    ),
    quick_notes=("quick: 200 runs, 60 commits",),
)

if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_all, "mlflow": mlflow_side})
