"""W3: comparing runs at scale: ``xp show`` cold (no index) and warm, the index update after
one new run, and ``xp.search_runs`` to a DataFrame, at 1,000, 10,000 and 100,000 runs, side by
side with ``mlflow.search_runs`` over the same runs.

Making 100,000 runs through the API takes long, so the repositories are written once with
``git fast-import`` (the same files, refs, parents and commit messages xp writes: the record
bytes come from ``RunRecord.to_files`` and ``xp.record.build.commit_message``) and cached under
``$XDG_CACHE_HOME/xp-bench/`` (``~/.cache`` by default); each side works on a hard-linked
copy. The MLflow store is cached the same way, filled through ``MlflowClient.log_batch``.

    python benchmarks/w3_query.py            # standalone: its own table (--quick: 1k, 10k)
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/w3_query.py`
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if p == "" or Path(p).resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from benchmarks.harness import (
    SMALL_PROJECT,
    Context,
    Metric,
    Workload,
    best_of,
    child_env,
    git,
    git_repo,
    xp_command,
)

FIXTURE_VERSION = "1"
SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (200, 500, 1_000)  # stand in for SIZES in --quick runs (a smoke test)
MLFLOW_CAP = 10_000  # filling MLflow's store costs ~10 ms a run: 100k would take ~20 minutes
WHERE = "metrics.acc > 0.9 and params.optimizer = 'adam'"
SORT = "-metrics.val_loss"
T0 = 1_700_000_000  # run times start here, 1 minute apart


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "xp-bench" / f"w3-v{FIXTURE_VERSION}"


def _label(n: int) -> str:
    return f"{n // 1000}k"


# -- the runs --------------------------------------------------------------------------------


def run_values(i: int) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
    """Params, final metrics and tags of run ``i``: a sweep over 10 params, 5 metrics."""
    rng = random.Random(i)
    params: dict[str, Any] = {
        "lr": rng.choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]),
        "batch_size": rng.choice([16, 32, 64, 128]),
        "epochs": rng.choice([10, 20, 50]),
        "optimizer": rng.choice(["adam", "sgd", "adamw"]),
        "model.depth": rng.randint(2, 12),
        "model.width": rng.choice([128, 256, 512]),
        "dropout": round(rng.random() * 0.5, 3),
        "weight_decay": rng.choice([0.0, 1e-5, 1e-4]),
        "seed": i,
        "dataset": "cifar10",
    }
    acc = rng.random()
    metrics = {
        "acc": acc,
        "loss": rng.random() * 2,
        "f1": acc * 0.9,
        "val_loss": rng.random() * 2,
        "val_acc": acc * 0.95,
    }
    tags = {"team": rng.choice(["vision", "nlp"]), "stage": "sweep"}
    return params, metrics, tags


def _record(i: int, baseline: str) -> Any:
    from xp import format as fmt
    from xp.record.build import iso_time as _iso
    from xp.record.model import RunRecord

    params, metrics, tags = run_values(i)
    start = T0 + 60 * i
    end = start + 30 + (i % 50)
    run_id = fmt.new_run_id(start)
    meta = {
        "experiment": "sweep" if i % 10 else "default",
        "start_time": _iso(start),
        "end_time": _iso(end),
        "duration": float(end - start),
        "command": ["python", "train.py"],
        "cwd": ".",
        "baseline": baseline,
        "branch": "main",
        "dirty": False,
        "xp_version": "0.1.0",
        "user": "bench",
        "host": "bench-host",
        "python": "3.11.7",
        "platform": "Linux",
    }
    status = "failed" if i % 97 == 0 else "finished"
    record = RunRecord(
        id=run_id,
        name=f"run-{i}",
        status=status,
        meta=meta,
        params=params,
        metrics=metrics,
        tags=tags,
        packages=("numpy==2.0.0", "torch==2.3.0"),
    )
    return record, start, end


def _fast_import_stream(n: int, baseline: str, out: Any) -> None:
    from xp import format as fmt
    from xp.record.build import commit_message

    ident = b"Bench Mark <bench@example.com>"
    for i in range(n):
        record, start, end = _record(i, baseline)
        parts = [
            b"commit " + fmt.run_ref(record.id).encode() + b"\n",
            ident.join([b"author ", f" {start} +0000\n".encode()]),
            ident.join([b"committer ", f" {end} +0000\n".encode()]),
        ]
        message = commit_message(record).encode()
        parts.append(b"data %d\n%s" % (len(message), message))
        parts.append(b"from " + baseline.encode() + b"\n")
        for rel, data in sorted(record.to_files().items()):
            path = f"{fmt.RECORD_DIR}/{rel}".encode()
            parts.append(b"M 100644 inline " + path + b"\ndata %d\n" % len(data) + data + b"\n")
        out.write(b"".join(parts) + b"\n")


def fixture(n: int) -> Path:
    """A cached repo holding ``n`` runs made as xp makes them; built once (100k: ~1 min)."""
    root = cache_dir() / f"xp-{n}"
    if (root / ".done").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    git_repo(root, SMALL_PROJECT)
    baseline = git(root, "rev-parse", "HEAD").strip()
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"],
        cwd=root,
        stdin=subprocess.PIPE,
        env=child_env(),
    )
    assert proc.stdin is not None
    _fast_import_stream(n, baseline, proc.stdin)
    proc.stdin.write(b"done\n")
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    git(root, "pack-refs", "--all")
    (root / ".done").write_text("ok\n")
    return root


def loose_fixture(n: int) -> Path:
    """The same repo with every run ref loose, as ``git fetch`` and xp's own runs leave them
    (``fixture`` packs them, as ``git gc`` would): packed-refs keeps only the branch."""
    root = cache_dir() / f"xp-{n}-loose"
    if (root / ".done").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    src = fixture(n)
    copy_repo(src, root)
    packed = (src / ".git" / "packed-refs").read_bytes().splitlines(keepends=True)
    kept = []
    for line in packed:
        sha, _, name = line.rstrip(b"\n").partition(b" ")
        if name.startswith(b"refs/xp/"):
            path = root / ".git" / name.decode()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(sha + b"\n")
        else:
            kept.append(line)
    packed_path = root / ".git" / "packed-refs"
    packed_path.unlink()  # a hard link to the packed fixture's file: never write through it
    packed_path.write_bytes(b"".join(kept))
    (root / ".done").write_text("ok\n")
    return root


def copy_repo(src: Path, dst: Path) -> Path:
    """A hard-linked copy (git never writes a file in place), minus any query index."""
    proc = subprocess.run(["cp", "-al", str(src), str(dst)], capture_output=True)
    if proc.returncode != 0:
        shutil.copytree(src, dst)
    for suffix in ("", "-wal", "-shm"):
        (dst / ".git" / "xp" / f"index.sqlite{suffix}").unlink(missing_ok=True)
    return dst


# -- xp --------------------------------------------------------------------------------------


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def sizes(ctx: Context) -> list[tuple[str, int]]:
    """(row label, runs): --quick measures small repos under the full sizes' rows."""
    return list(zip((_label(n) for n in SIZES), QUICK_SIZES if ctx.quick else SIZES, strict=True))


def xp_side(ctx: Context) -> dict[str, float]:
    out: dict[str, float] = {}
    for lab, n in sizes(ctx):
        out.update(xp_loose(ctx, lab, n))
        out.update(xp_one(ctx, lab, n))
    return out


def _show_figures(repo: Path, suffix: str) -> dict[str, float]:
    """xp show cold (no index), warm, and with a filter and a sort, as subprocesses."""
    cmd = xp_command()
    index = repo / ".git" / "xp" / "index.sqlite"

    def drop_index(_: int) -> None:
        for end in ("", "-wal", "-shm"):
            Path(f"{index}{end}").unlink(missing_ok=True)

    from xp.query.index.pack import wait_for_packer

    out = {f"show_cold{suffix}": best_of([*cmd, "show"], 1, repo, warmup=0, before=drop_index)}
    # a cold look at many loose refs has them packed by a detached process: not timed below
    wait_for_packer(repo / ".git" / "xp")
    out |= {
        f"show_warm{suffix}": best_of([*cmd, "show"], 5, repo),
        f"show_filter{suffix}": best_of([*cmd, "show", "-w", WHERE, "-s", SORT], 5, repo),
    }
    out[f"show_all{suffix}"], out[f"show_all_mb{suffix}"] = wall_and_rss(
        [*cmd, "show", "-a"], repo, 3
    )
    first, last = run_ids(repo)
    out[f"diff{suffix}"] = best_of([*cmd, "diff", first, last], 5, repo)
    return out


# Runs a command and prints its wall time and peak RSS. A child's ru_maxrss counts the memory
# of the process it was forked from (Linux keeps the high-water mark across exec), so the
# command is started from this small process, not from the benchmark's, which holds pandas.
_RSS_WRAPPER = """
import os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - t0
proc.returncode = os.waitstatus_to_exitcode(status)
print(proc.returncode, wall, usage.ru_maxrss)
"""


def wall_and_rss(cmd: list[str], cwd: Path, n: int) -> tuple[float, float]:
    """Best wall time of ``n`` runs of ``cmd`` (after one warm-up), and the largest peak RSS
    of any of them in MB (``wait4``'s ``ru_maxrss``: that process alone)."""
    times, peak = [], 0.0
    for i in range(n + 1):
        proc = subprocess.run(
            [sys.executable, "-c", _RSS_WRAPPER, *cmd],
            cwd=cwd,
            env=child_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        code, wall, kib = proc.stdout.split()
        if code != "0":
            raise RuntimeError(f"{' '.join(cmd)} exited {code}")
        if i:
            times.append(float(wall))
            peak = max(peak, int(kib) / 1024)  # KiB on Linux
    return min(times), peak


def run_ids(repo: Path) -> tuple[str, str]:
    """Two run ids far apart in the ref listing (found untimed), for ``xp diff``."""
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/xp/runs/").split()
    return refs[0].rsplit("/", 1)[1], refs[-1].rsplit("/", 1)[1]


def xp_loose(ctx: Context, lab: str, n: int) -> dict[str, float]:
    """The figures of ``xp show`` with every run ref loose."""
    repo = copy_repo(loose_fixture(n), ctx.workdir / f"repo-loose-{n}")
    return _show_figures(repo, f"_loose_{lab}")


def xp_one(ctx: Context, lab: str, n: int) -> dict[str, float]:
    repo = copy_repo(fixture(n), ctx.workdir / f"repo-{n}")
    os.chdir(repo)
    out = _show_figures(repo, f"_{lab}")
    from xp.gitstore.repo import find_repo
    from xp.query.index import Index
    from xp.tracking.run import commit_record

    git_repo_ = find_repo(repo)
    record, start, end = _record(n + 1, git(repo, "rev-parse", "HEAD").strip())
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    commit_record(git_repo_, record, tree, git(repo, "rev-parse", "HEAD").strip(), start, end)
    with Index(git_repo_) as ix:
        out[f"update_{lab}"], changed = _timed(ix.sync)
        assert changed == 1, changed

    import xp

    out[f"create_{lab}"] = create_runs(5)

    import pandas  # noqa: F401  # imported before timing, as on the MLflow side

    out[f"search_{lab}"], frame = _timed(lambda: xp.search_runs(path=repo))
    assert len(frame) == n + 6, len(frame)
    out[f"search_filter_{lab}"], _ = _timed(
        lambda: xp.search_runs(WHERE, order_by=["metrics.val_loss DESC"], path=repo)
    )
    return out


def create_runs(k: int) -> float:
    """The best of ``k`` runs made in-process (``start_run``, one param, ``end_run``) in the
    current repo: what one more run costs among the runs already there."""
    import xp

    best = math.inf
    for i in range(k):
        t0 = time.perf_counter()
        xp.start_run()
        xp.log_param("i", i)
        xp.end_run()
        best = min(best, time.perf_counter() - t0)
    return best


# -- MLflow ----------------------------------------------------------------------------------


def mlflow_fixture(n: int) -> Path:
    """A cached MLflow SQLite store with the same runs (params, metrics, tags, times)."""
    root = cache_dir() / f"mlflow-{n}"
    if (root / ".done").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    from mlflow.entities import Metric as MlMetric
    from mlflow.entities import Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.create_experiment("sweep", artifact_location=str(root / "artifacts"))
    for i in range(n):
        params, metrics, tags = run_values(i)
        start = (T0 + 60 * i) * 1000
        run = client.create_run(exp, start_time=start, run_name=f"run-{i}")
        client.log_batch(
            run.info.run_id,
            metrics=[MlMetric(k, v, start, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        status = "FAILED" if i % 97 == 0 else "FINISHED"
        client.set_terminated(run.info.run_id, status, end_time=start + 30_000)
    (root / ".done").write_text("ok\n")
    return root


def mlflow_side(ctx: Context) -> dict[str, float]:
    import mlflow
    import pandas  # noqa: F401  # imported before timing, as on the xp side

    out: dict[str, float] = {}
    for lab, n in sizes(ctx):
        if n > MLFLOW_CAP and not ctx.no_cap:
            continue
        src = mlflow_fixture(n)
        db = ctx.workdir / f"mlflow-{n}.db"
        shutil.copyfile(src / "mlflow.db", db)
        mlflow.set_tracking_uri(f"sqlite:///{db}")
        exp = mlflow.get_experiment_by_name("sweep")
        assert exp is not None
        out[f"search_{lab}"], frame = _timed(
            lambda exp=exp, n=n: mlflow.search_runs([exp.experiment_id], max_results=n)
        )
        assert len(frame) == n, len(frame)
        out[f"search_filter_{lab}"], _ = _timed(
            lambda exp=exp, n=n: mlflow.search_runs(
                [exp.experiment_id],
                filter_string="metrics.acc > 0.9 and params.optimizer = 'adam'",
                order_by=["metrics.val_loss DESC"],
                max_results=n,
            )
        )
    return out


def _metrics() -> tuple[Metric, ...]:
    rows: list[Metric] = []
    for n in SIZES:
        lab = _label(n)
        big = n == 100_000

        def target(value: float, big: bool = big) -> float | None:
            return value if big else None  # issue 18's targets are for 100,000 runs

        rows += [
            Metric(
                f"show_cold_{lab}",
                f"{n:,} runs: xp show, cold (index built), refs packed",
                "s",
                3.0 if n == 10_000 else target(10.0),
            ),
            Metric(
                f"show_cold_loose_{lab}",
                f"{n:,} runs: xp show, cold, refs loose",
                "s",
                target(10.0),
            ),
            Metric(f"show_warm_{lab}", f"{n:,} runs: xp show, warm, refs packed", "s", target(0.2)),
            Metric(
                f"show_warm_loose_{lab}",
                f"{n:,} runs: xp show, warm, refs loose",
                "s",
                target(0.3),
            ),
            Metric(
                f"show_filter_{lab}",
                f"{n:,} runs: xp show --where --sort, warm",
                "s",
                target(0.3),
            ),
            Metric(
                f"show_filter_loose_{lab}",
                f"{n:,} runs: xp show --where --sort, warm, refs loose",
                "s",
                target(0.3),
            ),
            Metric(f"show_all_{lab}", f"{n:,} runs: xp show -a, warm", "s", target(1.0)),
            Metric(
                f"show_all_mb_{lab}",
                f"{n:,} runs: xp show -a, peak RSS",
                "MB",
                target(150.0),
            ),
            Metric(
                f"diff_loose_{lab}",
                f"{n:,} runs: xp diff of two runs, refs loose",
                "s",
                target(0.3),
            ),
            Metric(f"update_{lab}", f"{n:,} runs: index update after 1 new run", "ms", 0.05),
            Metric(
                f"create_{lab}",
                f"{n:,} runs: one more run (start_run .. end_run), refs packed",
                "ms",
                target(0.005),
            ),
            Metric(
                f"search_{lab}",
                f"{n:,} runs: search_runs -> DataFrame",
                "s",
                target(1.0),
                "mlflow.search_runs",
            ),
            Metric(
                f"search_filter_{lab}",
                f"{n:,} runs: search_runs filter + sort",
                "s",
                None,
                "mlflow.search_runs",
            ),
        ]
    return tuple(rows)


WORKLOAD = Workload(
    key="W3",
    title="Compare runs: xp show and search_runs at 1k / 10k / 100k runs",
    metrics=_metrics(),
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=1,
    peer_repeat=1,
    order=30,
    notes=(
        "runs of 10 params, 5 metrics, 2 tags; repos made once with git fast-import and"
        " cached in ~/.cache/xp-bench (first run: a few minutes)",
        "refs packed: as after `git gc`; refs loose: one file per run ref, as `git fetch` and"
        " xp's own runs leave them",
        f"filter: {WHERE!r}, sorted by val_loss descending",
        f"MLflow holds {MLFLOW_CAP:,} runs at most (filling its store costs ~10 ms a run);"
        " --no-cap fills 100,000",
        "xp show timings are whole processes (python start-up included); search_runs and"
        " the index update are timed inside one process",
    ),
    quick_notes=("quick: 200 / 500 / 1,000 runs stand in for 1k / 10k / 100k",),
)


def _main() -> None:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 / 500 / 1,000 runs: a smoke run")
    ap.add_argument("--no-cap", action="store_true", help="MLflow at 100k runs too")
    ap.add_argument("--peers", default="mlflow", help="'none' for xp only")
    args = ap.parse_args()
    results = {}
    for side, fn in (("xp", xp_side), ("mlflow", mlflow_side)):
        if side == "mlflow" and args.peers == "none":
            continue
        with tempfile.TemporaryDirectory(prefix=f"xp-w3-{side}-") as tmp:
            cwd = os.getcwd()
            try:
                ctx = Context(Path(tmp), quick=args.quick, no_cap=args.no_cap)
                results[side] = fn(ctx)
            except ImportError as exc:
                print(f"{side}: skipped ({exc})", file=sys.stderr)
            finally:
                os.chdir(cwd)
    xp_res, ml_res = results.get("xp", {}), results.get("mlflow", {})
    print(f"{'W3':<52} {'xp':>10} {'mlflow':>10} {'ratio':>7} {'target':>8}")
    for m in WORKLOAD.metrics:
        if m.key not in xp_res:
            continue
        scale = {"s": 1, "ms": 1e3, "us": 1e6, "MB": 1}[m.unit]
        x, p = xp_res[m.key], ml_res.get(m.key)
        ratio = f"{p / x:.1f}x" if p and x else ""
        target = ""
        if m.target is not None:
            target = ("ok " if x <= m.target else "MISS ") + f"{m.target * scale:g}"
        ps = f"{p * scale:.3f}" if p is not None and not math.isnan(p) else "-"
        print(f"{m.label:<52} {x * scale:>8.3f}{m.unit:<2} {ps:>10} {ratio:>7} {target:>8}")


if __name__ == "__main__":
    _main()
