"""Crafted records: what a fetched run built to hurt costs `xp show` (issue 10: any crafted
record, `xp show` <= 1 s and <= 200 MB RSS).

Each case is one run made with git plumbing (`hash-object`, `mktree`, `commit-tree`,
`update-ref`) in a repository of its own, beside one ordinary run: a 300-byte YAML alias
bomb, 100,000 metrics, 100,000 series files, a 5 MB tag, 5,000-deep nesting, a 5,000-digit
number, ref names that are not UTF-8. The figures are the worst case's wall time and peak
RSS of a cold `xp show --all` (its index is built in the same call), and for information the
worst `xp diff` against the ordinary run. tests/sharing/test_hostile.py checks what each
case shows; this measures what it costs.
`python benchmarks/run.py --only hostile` or `python benchmarks/hostile_records.py`.
"""

from __future__ import annotations

import json
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
    git_repo,
    standalone,
    xp_command,
)

BOMB = "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
RUN_ID = "1nhost11e00001"
META = f"format: 1\nid: {RUN_ID}\nname: crafted\nstatus: finished\n"


def cases(quick: bool) -> dict[str, dict[str, bytes | str]]:
    """Case name -> record files (path below .xp/run/ -> content)."""
    n = 10_000 if quick else 100_000
    return {
        "alias-bomb": {"meta.yaml": META, "params.yaml": BOMB, "tags.yaml": BOMB},
        "many-metrics": {
            "meta.yaml": META,
            "metrics.yaml": "".join(f"m{i}: {i}\n" for i in range(n)),
        },
        "many-series": {
            "meta.yaml": META,
            "metrics.yaml": "loss: 1\n",
            **{f"series/s{i}.tsv": "step\tvalue\ttimestamp\n0\t1\t1\n" for i in range(n)},
        },
        "huge-file": {"meta.yaml": META, "tags.yaml": "t: '" + "x" * (5 << 20) + "'\n"},
        "deep": {"meta.yaml": META, "params.yaml": "a: " + "[" * 5000 + "]" * 5000 + "\n"},
        "digits": {"meta.yaml": META, "metrics.yaml": "m: " + "9" * 5000 + "\n"},
        "bad-bytes": {
            "meta.yaml": META + "start_time: '99999-01-01T00:00:00Z'\n",
            "series/loss.tsv": b"step\tvalue\ttimestamp\n0\t\xff\t1\n",
            "packages.txt": b"\xff\xfe==1\n",
            "artifacts.yaml": "- a string\n",
        },
    }


def forge(repo: Path, files: dict[str, bytes | str]) -> str:
    """The run commit of ``files``, made with plumbing and given a ref; returns the commit."""

    def run(*args: str, data: bytes | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=repo, input=data, capture_output=True, check=True)
        return proc.stdout.decode().strip()

    blobs: dict[bytes, str] = {}

    def tree(entries: dict[str, bytes | str]) -> str:
        here, below = [], {}  # type: ignore[var-annotated]
        for path, content in entries.items():
            head, _, rest = path.partition("/")
            if rest:
                below.setdefault(head, {})[rest] = content
                continue
            data = content.encode() if isinstance(content, str) else content
            if data not in blobs:
                blobs[data] = run("hash-object", "-w", "--stdin", data=data)
            here.append(f"100644 blob {blobs[data]}\t{path}\n")
        here += [f"040000 tree {tree(sub)}\t{name}\n" for name, sub in below.items()]
        return run("mktree", data="".join(here).encode())

    commit = run("commit-tree", tree({f".xp/run/{p}": c for p, c in files.items()}), "-m", "x")
    run("update-ref", f"refs/xp/runs/{RUN_ID}", commit)
    for name in (b"refs/xp/runs/caf\xc3\xa9", b"refs/xp/runs/\xff\xfe"):
        subprocess.run([b"git", b"update-ref", name, commit.encode()], cwd=repo, check=True)
    run("pack-refs", "--all")
    return commit


MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux -> MiB
print(proc.returncode, seconds, rss)
"""


def measure(repo: Path, *args: str) -> tuple[int, float, float]:
    """(exit code, wall seconds, peak RSS in MiB) of ``xp ARGS`` in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, *xp_command(), *args],
        cwd=repo,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    code, seconds, rss = proc.stdout.split()
    return int(code), float(seconds), float(rss)


def xp_side(ctx: Context) -> dict[str, float]:
    worst = {"show": 0.0, "rss": 0.0, "diff": 0.0}
    for name, files in cases(ctx.quick).items():
        repo = git_repo(ctx.workdir / name, {"train.py": "print(1)\n"})
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import xp\nwith xp.start_run(name='mine'):\n  xp.log_metric('a', 1)",
            ],
            cwd=repo,
            env=child_env(),
            check=True,
        )
        forge(repo, files)
        code, seconds, rss = measure(repo, "show", "--all")
        if code != 0:
            raise RuntimeError(f"xp show exited {code} on the {name} case")
        listed = subprocess.run(
            [*xp_command(), "show", "--all", "--format", "json"],
            cwd=repo,
            env=child_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        assert len(json.loads(listed.stdout)) == 2, name
        _code, diff_seconds, _rss = measure(repo, "diff", "mine", RUN_ID)
        print(
            f"hostile {name}: show {seconds:.3f} s {rss:.0f} MiB, diff {diff_seconds:.3f} s",
            file=sys.stderr,
        )
        worst["show"] = max(worst["show"], seconds)
        worst["rss"] = max(worst["rss"], rss)
        worst["diff"] = max(worst["diff"], diff_seconds)
    return {"show": worst["show"], "rss_mb": worst["rss"], "diff": worst["diff"], "at": time.time()}


WORKLOAD = Workload(
    key="hostile",
    title="xp show of crafted (fetched) records: the worst case's time and memory",
    metrics=(
        Metric("show", "xp show --all, cold, worst case", "s", 1.0),
        Metric("rss_mb", "xp show peak RSS, worst case, MiB", "n", 200.0),
        Metric("diff", "xp diff against the crafted run, worst case", "s"),
    ),
    xp=xp_side,
    repeat=1,
    order=97,
    notes=(
        "cases: a 300-byte alias bomb, 100,000 metrics, 100,000 series files, a 5 MB tag,"
        " 5,000-deep nesting, a 5,000-digit number, bytes that are not UTF-8",
    ),
    quick_notes=("quick: 10,000 metrics and series",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side})
