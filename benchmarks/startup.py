"""Start-up: what every command pays before doing anything. `xp --help` must feel instant
(<= 120 ms), so the CLI and `import xp` load git, YAML and pandas only when used; and
`import xp.mlflow as mlflow` must not cost what `import mlflow` does (<= 150 ms)."""

from __future__ import annotations

import sys

from benchmarks.harness import Context, Metric, Workload, best_of, script, xp_command


def xp_side(ctx: Context) -> dict[str, float]:
    n, cwd = ctx.size(20, 3), ctx.workdir
    return {
        "help": best_of([*xp_command(), "--help"], n, cwd),
        "version": best_of([*xp_command(), "--version"], n, cwd),
        "import": best_of([sys.executable, "-c", "import xp"], n, cwd),
        "import_mlflow": best_of([sys.executable, "-c", "import xp.mlflow"], n, cwd),
        "python": best_of([sys.executable, "-c", "pass"], n, cwd),
    }


def mlflow_side(ctx: Context) -> dict[str, float]:
    exe = script("mlflow")
    if exe is None:
        raise RuntimeError("the mlflow command is not on PATH")
    n, cwd = ctx.size(10, 2), ctx.workdir
    return {
        "help": best_of([exe, "--help"], n, cwd),
        "version": best_of([exe, "--version"], n, cwd),
        "import": best_of([sys.executable, "-c", "import mlflow"], n, cwd),
        "import_mlflow": best_of([sys.executable, "-c", "import mlflow"], n, cwd),
    }


WORKLOAD = Workload(
    key="startup",
    title="CLI and import start-up (subprocess wall time, best of N)",
    metrics=(
        Metric("help", "xp --help", "ms", 0.120, peer_label="mlflow --help"),
        Metric("version", "xp --version", "ms", peer_label="mlflow --version"),
        Metric("import", 'python -c "import xp"', "ms", peer_label="import mlflow"),
        Metric(
            "import_mlflow", 'python -c "import xp.mlflow"', "ms", 0.150, peer_label="import mlflow"
        ),
        Metric("python", "python -c pass (floor)", "ms"),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=1,
    peer_repeat=1,
    order=50,
    notes=(
        "best of 20 (MLflow: 10) after one warm-up; console scripts from the interpreter's"
        " bin folder, not a pyenv shim",
    ),
    quick_notes=("quick: best of 3 (MLflow: 2)",),
)
