"""Run xp's benchmarks side by side with their peers and print one table.

    python benchmarks/run.py                 # everything, full size (several minutes)
    python benchmarks/run.py --quick         # small sizes, one repetition: a smoke run
    python benchmarks/run.py --only W1,W4    # some workloads (keys: --list)
    python benchmarks/run.py --peers none    # xp only

Every side of every repetition runs in a fresh Python process in a fresh temporary directory
that is deleted afterwards, so no run sees another's caches, threads or files. Results go to
benchmarks/results/<time>.json too.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import pkgutil
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Import as the package `benchmarks`, never as loose modules from this folder (a workload file
# must not shadow an installed module of the same name).
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if p == "" or Path(p).resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import benchmarks  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    Context,
    Workload,
    child_env,
    git,
    missing_modules,
    peer_version,
)

RESULT_MARK = "XPBENCH-RESULT "
NOT_WORKLOADS = {"run", "harness"}


def discover() -> dict[str, tuple[str, Workload]]:
    """Every module in benchmarks/ defining WORKLOAD, by key: key -> (module name, workload)."""
    found: dict[str, tuple[str, Workload]] = {}
    for info in pkgutil.iter_modules(benchmarks.__path__):
        if info.name.startswith("_") or info.name in NOT_WORKLOADS:
            continue
        name = f"benchmarks.{info.name}"
        workload = getattr(importlib.import_module(name), "WORKLOAD", None)
        if not isinstance(workload, Workload):
            continue
        if workload.key.lower() in {k.lower() for k in found}:
            raise SystemExit(f"two workloads use the key {workload.key!r}; rename one")
        found[workload.key] = (name, workload)
    return dict(sorted(found.items(), key=lambda kv: (kv[1][1].order, kv[0])))


# -- one side, in its own process ------------------------------------------------------------


def child_main(module: str, side: str, ctx_json: str) -> None:
    """Inside the fresh process: run the side and print its timings as the last line."""
    workload: Workload = importlib.import_module(module).WORKLOAD
    ctx = Context(**{**json.loads(ctx_json), "workdir": Path.cwd()})
    extra = dict(workload.extra_peers)
    fn = workload.xp if side == "xp" else extra.get(side, workload.peer_side)
    assert fn is not None
    result = fn(ctx)
    sys.stdout.flush()
    print(RESULT_MARK + json.dumps({k: float(v) for k, v in result.items()}))


def _rmtree(path: Path) -> None:
    def retry(func: Any, p: str, exc: BaseException) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755)
        with contextlib.suppress(FileNotFoundError):
            func(p)

    shutil.rmtree(path, onexc=retry) if sys.version_info >= (3, 12) else shutil.rmtree(
        path, onerror=lambda f, p, e: retry(f, p, e[1])
    )


def run_side(module: str, key: str, side: str, ctx: Context, timeout: float) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix=f"xp-bench-{key}-{side}-"))
    payload = json.dumps({"quick": ctx.quick, "no_cap": ctx.no_cap})
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE / "run.py"), "--child", module, side, payload],
            cwd=workdir,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        _rmtree(workdir)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{key} {side} side exited {proc.returncode}: {tail}")
    return {k: float(v) for k, v in json.loads(lines[-1][len(RESULT_MARK) :]).items()}


# -- the whole run ---------------------------------------------------------------------------


@dataclass
class SideResult:
    name: str  # "xp" or the peer's name
    runs: list[dict[str, float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # wall time of each side process
    median: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    skipped: str | None = None


@dataclass
class Row:
    workload: str
    label: str
    unit: str
    xp: float | None
    peer: str | None
    peer_value: float | None
    ratio: float | None
    target: float | None
    passed: bool | None


def measure(
    module: str, wl: Workload, side: str, name: str, ctx: Context, repeat: int, timeout: float
) -> SideResult:
    result = SideResult(name=name)
    for i in range(repeat):
        print(f"  {wl.key} {name} {i + 1}/{repeat} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            result.runs.append(run_side(module, wl.key, side, ctx, timeout))
            result.seconds.append(round(time.perf_counter() - start, 3))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            result.error = str(exc)
            return result
    keys = {k for run in result.runs for k in run}
    result.median = {
        k: statistics.median(run[k] for run in result.runs if k in run) for k in sorted(keys)
    }
    return result


def rows_of(wl: Workload, xp: SideResult, peers: dict[str, SideResult]) -> list[Row]:
    """One row per metric: xp's median and, where it has the figure, the metric's peer's."""
    rows = []
    for m in wl.metrics:
        x = xp.median.get(m.key)
        peer_name = m.peer or wl.peer
        peer = peers.get(peer_name) if peer_name else None
        p = peer.median.get(m.key) if peer is not None else None
        rows.append(
            Row(
                workload=wl.key,
                label=m.label,
                unit=m.unit,
                xp=x,
                peer=(m.peer_label or peer_name) if p is not None else None,
                peer_value=p,
                ratio=p / x if p is not None and x else None,
                target=m.target,
                passed=None if m.target is None or x is None else x <= m.target,
            )
        )
    return rows


def show(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "n":  # a count: runs, trials, artifacts lost
        return f"{value:,.0f}"
    if unit == "us":
        return f"{value * 1e6:.2f} us"
    if unit == "ms":
        return f"{value * 1e3:.1f} ms"
    if unit == "%":
        return f"{value * 100:.4g} %"
    if unit == "MB":  # a size, not a time: the one unit that is not seconds
        return f"{value:.2f} MB"
    if unit == "x":  # a ratio, not a time
        return f"{value:.2f}x"
    return f"{value:.3f} s"


def table(rows: list[Row]) -> str:
    head = ("workload", "xp", "peer", "peer time", "peer/xp", "target", "result")
    body = [
        (
            f"{r.workload} {r.label}",
            show(r.xp, r.unit),
            r.peer or "-",
            show(r.peer_value, r.unit),
            f"{r.ratio:.1f}x" if r.ratio is not None else "-",
            f"<= {show(r.target, r.unit)}" if r.target is not None else "-",
            {None: "-", True: "pass", False: "FAIL"}[r.passed],
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    right = {1, 3, 4, 5}

    def fmt(line: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(head), rule, *(fmt(line) for line in body)])


def machine() -> dict[str, Any]:
    import xp

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "git": git(HERE, "--version").strip(),
        "xp": xp.__version__,
    }
    with contextlib.suppress(RuntimeError):
        info["xp_commit"] = git(HERE, "rev-parse", "HEAD").strip()
        info["xp_dirty"] = bool(git(HERE, "status", "--porcelain", "--", "src").strip())
    for name in ("mlflow", "dvc", "wandb"):
        info[name] = peer_version(name)
    info["load_before"] = [round(x, 2) for x in os.getloadavg()]
    return info


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/run.py", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    ap.add_argument("--only", help="comma-separated workload keys (see --list)")
    ap.add_argument(
        "--peers",
        default="auto",
        help="auto (every installed peer), none, or a comma-separated list (mlflow,dvc)",
    )
    ap.add_argument("--repeat", type=int, help="processes per side (default: per workload)")
    ap.add_argument(
        "--no-cap", action="store_true", help="run peers at full size where that takes minutes"
    )
    ap.add_argument("--json", type=Path, help="where to write the results (default: results/)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per side process")
    ap.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    ap.add_argument(
        "--long", action="store_true", help="also the long workloads (T3), which --only names"
    )
    return ap.parse_args(argv)


def selected(
    found: dict[str, tuple[str, Workload]], only: str | None, long: bool = False
) -> list[tuple[str, Workload]]:
    if not only:
        return [entry for entry in found.values() if long or not entry[1].long]
    by_key = {k.lower(): v for k, v in found.items()}
    wanted = [w.strip().lower() for w in only.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in by_key]
    if unknown:
        raise SystemExit(f"unknown workload {', '.join(unknown)}; choose from {', '.join(found)}")
    picked = {by_key[w][0] for w in wanted}
    return [entry for entry in found.values() if entry[0] in picked]  # table order


def peers_wanted(spec: str) -> set[str] | None:
    """None means every installed peer."""
    if spec == "auto":
        return None
    return {p.strip() for p in spec.split(",") if p.strip() and p.strip() != "none"}


def compile_xp() -> None:
    """xp's bytecode, written before anything is timed, as ``pip install`` writes it: a
    source checkout (``pip install -e``) otherwise compiles on the first timed start."""
    import compileall

    import xp

    compileall.compile_dir(str(Path(xp.__file__).parent), quiet=2)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child_main(*argv[1:4])
        return 0
    args = parse_args(argv)
    found = discover()
    if args.list:
        for key, (module, wl) in found.items():
            print(f"{key:10} {wl.title}  [{module}; peer: {wl.peer or '-'}]")
        return 0
    ctx = Context(workdir=Path(), quick=args.quick, no_cap=args.no_cap)
    compile_xp()
    wanted = peers_wanted(args.peers)
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *argv],
        "quick": args.quick,
        "machine": machine(),
        "workloads": [],
    }
    rows: list[Row] = []
    notes: list[str] = []
    errors = 0
    for module, wl in selected(found, args.only, args.long):
        missing = missing_modules(wl.needs)
        if missing:
            notes.append(f"{wl.key}: left out, needs {', '.join(missing)}; {wl.needs_hint}")
            continue
        reps = args.repeat or (1 if args.quick else wl.repeat)
        xp_res = measure(module, wl, "xp", "xp", ctx, reps, args.timeout)
        peer_results: dict[str, SideResult] = {}
        sides = [(wl.peer, "peer", wl.peer_side)] if wl.peer else []
        sides += [(name, name, side) for name, side in wl.extra_peers]
        for peer_name, side_name, side_fn in sides:
            if peer_name is None or side_fn is None:
                continue
            if wanted is not None and peer_name not in wanted:
                res = SideResult(name=peer_name, skipped="not selected (--peers)")
            elif peer_version(peer_name) is None:
                res = SideResult(name=peer_name, skipped="not installed")
                notes.append(f"{wl.key}: {peer_name} is not installed; pip install -e '.[bench]'")
            else:
                preps = args.repeat or (1 if args.quick else wl.peer_repeat)
                res = measure(module, wl, side_name, peer_name, ctx, preps, args.timeout)
            peer_results[peer_name] = res
        for res in (xp_res, *peer_results.values()):
            if res.error:
                errors += 1
                notes.append(f"{wl.key}: {res.name} failed: {res.error}")
        shown = {k: v for k, v in peer_results.items() if not v.skipped}
        peer_res = peer_results.get(wl.peer) if wl.peer else None
        wl_rows = rows_of(wl, xp_res, shown)
        rows += wl_rows
        notes += [f"{wl.key}: {n}" for n in (wl.quick_notes if args.quick else wl.notes)]
        report["workloads"].append(
            {
                "key": wl.key,
                "title": wl.title,
                "module": module,
                "xp": asdict(xp_res),
                "peer": asdict(peer_res) if peer_res is not None else None,
                "extra_peers": {
                    name: asdict(res) for name, res in peer_results.items() if name != wl.peer
                },
                "rows": [asdict(r) for r in wl_rows],
                "metrics": [asdict(m) for m in wl.metrics],
            }
        )
    print(table(rows))
    for note in notes:
        print(f"  * {note}")
    info = report["machine"]
    info["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"  machine: {info['platform']}, {info['cpus']} CPUs, Python {info['python']},"
        f" {info['git']}, mlflow {info['mlflow'] or '-'}, dvc {info['dvc'] or '-'};"
        f" load average {info['load_before'][0]} before, {info['load_after'][0]} after"
    )
    out = args.json or HERE / "results" / (
        dt.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "") + ".json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"  results: {out}")
    if errors:
        return 1
    if args.strict and any(r.passed is False for r in rows):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
