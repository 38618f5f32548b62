"""One `git push` through the pre-push hook (issue 14 item 3: <= 0.15 CPU-s): a run with a
100 kB random artifact is logged (untimed), then plain `git push` to a bare repository on this
disk uploads the artifact and sends the run; the figure is the CPU of the whole process tree
(git, the hook's `git-xp`, the git processes it starts; `getrusage(RUSAGE_CHILDREN)`), median
of the pushes. Three stores: a folder, moto's S3 server through the direct SigV4 path, and the
same server through s3fs (`XP_S3_DIRECT=0`: what every S3 push cost before). Alone:
`python benchmarks/hook_push.py [--quick]`.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # standalone: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Context, Metric, Workload, child_env, git, standalone, xp_project

LOG_RUN = """
import os, sys
import xp
os.makedirs("out", exist_ok=True)
with open("out/model.bin", "wb") as fh:
    fh.write(os.urandom(100_000))
with xp.start_run(name=sys.argv[1]):
    xp.log_artifact("out/model.bin")
"""


def _pushes(ctx: Context, name: str, environ: dict[str, str], store: list[str]) -> list[float]:
    """CPU seconds of each of the pushes to a fresh project whose default store is ``store``
    (the arguments of `xp remote add`)."""
    root = xp_project(ctx.workdir / name)
    bare = ctx.workdir / f"{name}.git"
    git(ctx.workdir, "init", "-q", "--bare", str(bare))
    xp = [sys.executable, "-m", "xp"]
    subprocess.run(
        [*xp, "remote", "add", "store", *store, "--default"],
        cwd=root,
        env=environ,
        check=True,
        capture_output=True,
    )
    (root / ".gitignore").write_text("out/\n__pycache__/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "store")
    git(root, "remote", "add", "origin", str(bare))
    git(root, "push", "-q", "-u", "origin", "main")
    subprocess.run([*xp, "init"], cwd=root, env=environ, check=True, capture_output=True)
    script = ctx.workdir / "log_run.py"
    script.write_text(LOG_RUN)
    cpu = []
    for i in range(ctx.size(7, 3)):
        subprocess.run(
            [sys.executable, str(script), f"{name}-{i}"],
            cwd=root,
            env=environ,
            check=True,
            capture_output=True,
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(
            ["git", "push", "-q"], cwd=root, env=environ, capture_output=True, text=True
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0 or "uploaded 1 artifact" not in proc.stderr:
            raise RuntimeError(f"{name}: push {i} failed: {proc.stderr.strip()[-400:]}")
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return cpu


def xp_side(ctx: Context) -> dict[str, float]:
    from tests.helpers import moto_server

    environ = {
        **child_env(),
        # the hook runs `git-xp`: this interpreter's
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(ctx.workdir / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(ctx.workdir / "no-aws-credentials"),
    }
    out: dict[str, float] = {}
    out["folder_cpu"] = statistics.median(
        _pushes(ctx, "folder", environ, [str(ctx.workdir / "store")])
    )
    with moto_server(child_env()) as endpoint:
        import s3fs  # type: ignore[import-untyped]

        s3fs.S3FileSystem(
            key="testing", secret="testing", client_kwargs={"endpoint_url": endpoint}
        ).mkdir("hook")
        s3 = ["s3://hook/{}", "--endpoint-url", endpoint]
        for key, name, extra in (
            ("s3_cpu", "direct", {}),
            ("s3fs_cpu", "s3fs", {"XP_S3_DIRECT": "0"}),
        ):
            args = [s3[0].format(name), *s3[1:]]
            out[key] = statistics.median(_pushes(ctx, name, {**environ, **extra}, args))
    return out


WORKLOAD = Workload(
    key="hook",
    title="one git push through the pre-push hook: a run with a 100 kB artifact",
    metrics=(
        Metric("folder_cpu", "CPU of one push (process tree), folder store", "ms", target=0.15),
        Metric("s3_cpu", "CPU of one push (process tree), S3 store", "ms", target=0.15),
        Metric("s3fs_cpu", "the same through s3fs (XP_S3_DIRECT=0, as before)", "ms"),
    ),
    xp=xp_side,
    repeat=1,
    order=87,
    needs=("moto", "s3fs"),
    needs_hint='pip install -e ".[test]"',
    notes=(
        "plain git push to a bare repository on this disk; S3 is moto's server on 127.0.0.1;"
        " median of 7 pushes per store (3 with --quick)",
    ),
    quick_notes=("quick: 3 pushes per store",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side})
