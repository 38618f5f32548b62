"""Runs on a shared git server at scale: one ref per run (format 1) against the run catalog
(format 2: 256 bucket refs), over `git daemon` and a smart-HTTP server (lighttpd running
`git http-backend`, as tests/ serve it) on 127.0.0.1, protocol v0 and v2 (issue 14).

How the N runs are made, quickly and faithfully: one real run is recorded by xp in a small
project (``SMALL_PROJECT``); `git fast-import` then writes N run commits into the server,
each the seed run's tree (the project plus its `.xp/run` record) with its own `meta.yaml`
(its id) and `metrics.yaml` (its own values), on the seed's baseline, under
`refs/xp/runs/<id>` with distinct ids, committed one second apart (a team's history, oldest
first). The format-1 server is that; its refs are packed, as a server's are after `git gc`.
The format-2 server is a copy of it that xp itself migrated, the way a team's server becomes
format 2: `xp push` from a clone lists every run in its bucket and deletes the per-run refs in
one atomic push. Its history is therefore exactly what xp writes (per bucket, a chain of
commits of at most 16 parents, each committed a second after its newest run:
docs/format.md, section 1); the migration's time is reported too. A third server holds the
project alone: what a colleague who never uses xp pays is measured against it.

Timed for each server, layout and protocol version: a fresh clone + `xp init` + `git fetch`
of the runs; a no-op `git fetch` with xp's refspecs; the first `xp show -n 3` after that fetch
and the next one; (v2) `xp push` of 5 new runs and with nothing new; a colleague's plain clone,
no-op fetch and push of a new branch; then `git gc` on each server (once: it does not depend
on how the server is reached).
The servers are measured one after the other on the same repositories, so the second one
holds the 5 runs (and the branches) the first one's pushes added.

`python benchmarks/ref_scale.py --sizes 1600,10000,100000` prints the table (100k: ~15 min;
`--servers daemon` or `http` for one); `python benchmarks/run.py --only R1` times 10,000 runs
(--quick: 1,600).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # standalone: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Context, Metric, Workload, child_env, git, xp_command, xp_project

SEED_RUN = """
import xp
with xp.start_run(name="seed", params={"lr": 0.01, "depth": 6}):
    for step in range(20):
        xp.log_metric("loss", 1 / (step + 1), step=step)
    xp.log_metric("acc", 0.9)
"""


FIVE_RUNS = """
import xp
for i in range(5):
    with xp.start_run(name=f"five-{i}"):
        xp.log_metric("acc", i / 10)
"""


def env() -> dict[str, str]:
    return {**child_env(), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def timed(cmd: list[str], cwd: Path, *, protocol: int | None = None) -> float:
    if protocol is not None and cmd[0] == "git":
        # Over 1 MiB (a v0 fetch wanting 100k per-run refs) git sends its request chunked,
        # which lighttpd refuses (HTTP 411): a bigger buffer sends it whole, as git advises.
        cmd = ["git", "-c", f"protocol.version={protocol}", "-c", "http.postBuffer=64m", *cmd[1:]]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}: {proc.stderr.strip()[-500:]}")
    return took


def xp(cwd: Path, *args: str) -> float:
    return timed([*xp_command(), *args], cwd)


def seed_project(root: Path) -> tuple[Path, str]:
    """A small xp project with one real run; (its folder, the run's commit)."""
    seed = xp_project(root)
    (seed / "seed.py").write_text(SEED_RUN)
    git(seed, "add", "seed.py")
    git(seed, "commit", "-q", "--no-verify", "-m", "seed script")
    subprocess.run([sys.executable, "seed.py"], cwd=seed, env=env(), check=True)
    ref = git(seed, "for-each-ref", "--format=%(objectname)", "refs/xp/runs/").split()
    return seed, ref[0]


def fast_import(server: Path, seed: Path, run: str, n: int) -> list[str]:
    """n run commits like ``run`` into ``server`` (bare) under refs/xp/runs/<id>; the ids."""
    from xp import format as fmt

    baseline = git(seed, "rev-parse", f"{run}^").strip()
    xp_tree = git(seed, "rev-parse", f"{run}:.xp").strip()
    meta = git(seed, "show", f"{run}:.xp/run/meta.yaml")
    old_id = next(line for line in meta.splitlines() if line.startswith("id:")).split()[1]
    git(seed, "push", "-q", "--no-verify", str(server), f"{run}:refs/heads/seed-run", "HEAD:main")
    git(server, "update-ref", "-d", "refs/heads/seed-run")  # objects stay: no gc yet
    start_ms = 1_700_000_000_000
    ids = []
    chunks: list[bytes] = []
    for i in range(n):
        run_id = fmt.derived_run_id(start_ms + i * 1000, f"bench-{i}")
        ids.append(run_id)
        body = meta.replace(old_id, run_id).encode()
        metrics = f"acc: {0.5 + (i % 997) / 2000:.6f}\nloss: {1 / (i + 2):.6f}\n".encode()
        message = f"xp: run-{i} acc={0.5 + (i % 997) / 2000:.3f}".encode()
        when = (start_ms + i * 1000) // 1000
        chunks.append(
            b"commit refs/xp/runs/%s\ncommitter Bench <bench@example.com> %d +0000\n"
            b"data %d\n%s\nfrom %s\nM 040000 %s .xp\n"
            b"M 100644 inline .xp/run/meta.yaml\ndata %d\n%s\n"
            b"M 100644 inline .xp/run/metrics.yaml\ndata %d\n%s\n\n"
            % (
                run_id.encode(),
                when,
                len(message),
                message,
                baseline.encode(),
                xp_tree.encode(),
                len(body),
                body,
                len(metrics),
                metrics,
            )
        )
    proc = subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=server,
        input=b"".join(chunks),
        env=env(),
        capture_output=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode()[-500:])
    # A server that has been up is packed, with deltas (git gc / git's auto gc): without that
    # every clone would pay a fresh delta search over all N runs' objects.
    git(server, "repack", "-a", "-d", "-q")
    git(server, "pack-refs", "--all")
    return ids


class Daemon:
    """`git daemon` serving ``base``'s bare repositories, push enabled; HttpServer shares its
    waiting and stopping."""

    def __init__(self, base: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        flags = ["--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1"]
        self.proc = subprocess.Popen(
            ["git", "daemon", *flags, f"--base-path={base}", f"--port={self.port}", str(base)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def wait(self, name: str) -> None:
        for _ in range(300):
            ok = subprocess.run(["git", "ls-remote", self.url(name)], capture_output=True)
            if ok.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{type(self).__name__} did not answer")

    def stop(self) -> None:
        os.killpg(self.proc.pid, 9)
        self.proc.wait()


class HttpServer(Daemon):
    """lighttpd serving ``base``'s bare repositories through `git http-backend` (CGI), push
    enabled, as tests/helpers.http_git_server does."""

    LIGHTTPD = "/usr/sbin/lighttpd"

    def __init__(self, base: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True)
        backend = Path(exec_path.stdout.strip()) / "git-http-backend"
        conf = base.parent / f"lighttpd-{self.port}.conf"
        conf.write_text(
            f'server.document-root = "{base}"\n'
            'server.bind = "127.0.0.1"\n'
            f"server.port = {self.port}\n"
            'server.modules = ("mod_alias", "mod_setenv", "mod_cgi")\n'
            f'server.errorlog = "{base.parent / "lighttpd.log"}"\n'
            f'server.upload-dirs = ("{base.parent}")\n'
            "server.stream-request-body = 2\n"
            f'alias.url = ("/git" => "{backend}")\n'
            '$HTTP["url"] =~ "^/git" {\n'
            '  cgi.assign = ("" => "")\n'
            f'  setenv.set-environment = ("GIT_PROJECT_ROOT" => "{base}",'
            ' "GIT_HTTP_EXPORT_ALL" => "", "GIT_CONFIG_NOSYSTEM" => "1")\n'
            "}\n"
        )
        self.proc = subprocess.Popen(
            [self.LIGHTTPD, "-D", "-f", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/git/{name}"


SERVERS = {"daemon": Daemon, "http": HttpServer}


def user_side(work: Path, url: str, protocol: int, label: str) -> dict[str, float]:
    """An xp user: fresh clone + xp init + fetch of the runs, no-op fetch, show cold/warm."""
    clone = work / f"user-{label}-v{protocol}"
    out: dict[str, float] = {}
    start = time.perf_counter()
    timed(["git", "clone", "-q", url, clone.name], work, protocol=protocol)
    xp(clone, "init")
    timed(["git", "fetch", "-q", "origin"], clone, protocol=protocol)
    out["clone_runs"] = time.perf_counter() - start
    out["noop_fetch"] = min(
        timed(["git", "fetch", "-q", "origin"], clone, protocol=protocol) for _ in range(3)
    )
    out["show_first"] = xp(clone, "show", "-n", "3")
    out["show_next"] = min(xp(clone, "show", "-n", "3") for _ in range(3))
    if protocol == 2:  # xp push of 5 new runs from this clone, then with nothing new
        if label == "old":  # a format-1 project pushes per-run refs (and does not migrate)
            config = clone / ".xp" / "config.yaml"
            text = config.read_text()
            assert "format: 2\n" in text, text
            config.write_text(text.replace("format: 2\n", "format: 1\n"))
        (clone / "five.py").write_text(FIVE_RUNS)
        subprocess.run([sys.executable, "five.py"], cwd=clone, env=env(), check=True)
        out["push5"] = xp(clone, "push")
        out["push_noop"] = xp(clone, "push")
    shutil.rmtree(clone)
    return out


def colleague_side(work: Path, url: str, protocol: int, label: str) -> dict[str, float]:
    """Someone who never uses xp: plain clone, no-op fetch, push of a new branch."""
    clone = work / f"plain-{label}-v{protocol}"
    out = {"plain_clone": timed(["git", "clone", "-q", url, clone.name], work, protocol=protocol)}
    out["plain_fetch"] = min(
        timed(["git", "fetch", "-q", "origin"], clone, protocol=protocol) for _ in range(3)
    )
    pushes = []
    for k in range(3):
        (clone / "note.txt").write_text(f"{label} {protocol} {k}\n")
        git(clone, "add", "note.txt")
        git(clone, "commit", "-q", "-m", f"note {k}")
        pushes.append(
            timed(
                ["git", "push", "-q", "origin", f"HEAD:refs/heads/topic-{label}-{protocol}-{k}"],
                clone,
                protocol=protocol,
            )
        )
    out["plain_push"] = min(pushes)
    shutil.rmtree(clone)
    return out


def measure(
    work: Path,
    n: int,
    protocols: tuple[int, ...] = (0, 2),
    servers: tuple[str, ...] = ("daemon", "http"),
    layouts: tuple[str, ...] = ("old", "new"),
) -> dict[str, float]:
    """Every figure for ``n`` runs, keyed ``<server>:<layout>_<what>_v<protocol>`` (and
    ``<layout>_gc``, ``migrate``, ``build``)."""
    base = work / "srv"
    base.mkdir(parents=True)
    seed, run = seed_project(work / "seed")
    for name in ("old.git", "base.git"):
        git(base, "init", "-q", "--bare", "-b", "main", name)
    git(seed, "push", "-q", "--no-verify", str(base / "base.git"), "HEAD:main")
    out: dict[str, float] = {"runs": float(n)}
    start = time.perf_counter()
    fast_import(base / "old.git", seed, run, n)
    out["build"] = time.perf_counter() - start
    shutil.copytree(base / "old.git", base / "new.git", symlinks=True)
    for name in ("old.git", "new.git", "base.git"):  # anonymous pushes over HTTP
        git(base / name, "config", "http.receivepack", "true")
    for kind in servers:
        server = SERVERS[kind](base)
        try:
            server.wait("old.git")
            if "migrate" not in out:
                mig = work / "migrator"
                git(work, "clone", "-q", server.url("new.git"), mig.name)
                xp(mig, "init")
                out["migrate"] = xp(mig, "push")
                left = git(base / "new.git", "for-each-ref", "refs/xp/runs/").count("\n")
                if left:
                    raise RuntimeError(f"{left} per-run refs left after the migration")
                shutil.rmtree(mig)
                git(base / "new.git", "repack", "-a", "-d", "-q")  # as the old one is
                git(base / "new.git", "pack-refs", "--all")
            for protocol in protocols:
                for label in layouts:
                    figures = user_side(work, server.url(f"{label}.git"), protocol, label)
                    out.update({f"{kind}:{label}_{k}_v{protocol}": v for k, v in figures.items()})
                for label in ("base", *layouts):
                    figures = colleague_side(
                        work, server.url(f"{label}.git"), protocol, f"{label}-{kind}"
                    )
                    out.update({f"{kind}:{label}_{k}_v{protocol}": v for k, v in figures.items()})
        finally:
            server.stop()
    for label in layouts:
        start = time.perf_counter()
        git(base / f"{label}.git", "gc", "-q")
        out[f"{label}_gc"] = time.perf_counter() - start
    return out


ROWS = (
    ("fresh clone + xp init + fetch runs", "clone_runs"),
    ("no-op git fetch with xp's refspecs", "noop_fetch"),
    ("first `xp show -n 3` after that fetch", "show_first"),
    ("next `xp show -n 3`", "show_next"),
    ("`xp push` of 5 new runs from that clone (v2)", "push5"),
    ("`xp push` with nothing new (v2)", "push_noop"),
    ("colleague: plain clone", "plain_clone"),
    ("colleague: no-op fetch", "plain_fetch"),
    ("colleague: push a new branch", "plain_push"),
)


def table(results: dict[int, dict[str, float]]) -> str:
    sizes = sorted(results)
    kinds = [
        k for k in SERVERS if any(key.startswith(f"{k}:") for r in results.values() for key in r)
    ]
    head = "| with N runs on the server | server | layout | " + " | ".join(f"{n:,}" for n in sizes)
    lines = [head + " |", "|---|---|---|" + "---|" * len(sizes)]
    names = {"base": "no xp refs", "old": "per-run refs", "new": "catalog"}
    for label, key in ROWS:
        layouts = ("base", "old", "new") if key.startswith("plain") else ("old", "new")
        for kind in kinds:
            for layout in layouts:
                cells = []
                for n in sizes:
                    r = results[n]
                    v0 = r.get(f"{kind}:{layout}_{key}_v0")
                    v2 = r.get(f"{kind}:{layout}_{key}_v2")
                    figures = [f"{v:.2f}" for v in (v0, v2) if v is not None]
                    cells.append(" / ".join(figures) or "-")
                unit = " (s)" if "(v2)" in label else " (v0 / v2, s)"
                row = f"| {label}{unit} | {kind} | {names[layout]} | "
                lines.append(row + " | ".join(cells) + " |")
    for layout in ("old", "new"):
        cells = [f"{results[n].get(f'{layout}_gc', float('nan')):.2f}" for n in sizes]
        lines.append(f"| server `git gc` (s) | | {names[layout]} | " + " | ".join(cells) + " |")
    for label, key in (
        ("xp migrating the server", "migrate"),
        ("building it (fast-import)", "build"),
    ):
        cells = [f"{results[n][key]:.2f}" for n in sizes]
        lines.append(f"| {label} (s) | | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def xp_side(ctx: Context) -> dict[str, float]:
    r = measure(ctx.workdir, ctx.size(10_000, 1_600))

    def worst(what: str, versions: tuple[int, ...] = (0, 2)) -> float:
        return max(r[f"{k}:new_{what}_v{v}"] for k in SERVERS for v in versions)

    return {
        **r,
        "noop_fetch": worst("noop_fetch"),
        "clone_runs": worst("clone_runs"),
        "show_first": worst("show_first", (2,)),
        "show_next": worst("show_next", (2,)),
        "push_ratio": max(
            r[f"{k}:new_plain_push_v{v}"] / r[f"{k}:base_plain_push_v{v}"]
            for k in SERVERS
            for v in (0, 2)
        ),
    }


WORKLOAD = Workload(
    key="R1",
    title="runs on a shared git server (daemon, HTTP): the run catalog at 10,000 runs",
    metrics=(
        Metric("noop_fetch", "no-op git fetch (worse of v0, v2)", target=1.0),
        Metric("clone_runs", "fresh clone + xp init + fetch runs", target=10.0),
        Metric("show_first", "first xp show -n 3 after the fetch", target=3.0),
        Metric("show_next", "next xp show -n 3", target=0.3),
        Metric("push_ratio", "colleague's push vs a server without runs", unit="x", target=1.1),
    ),
    xp=xp_side,
    repeat=1,
    order=95,
    notes=("100k: python benchmarks/ref_scale.py --sizes 100000",),
)


def main() -> None:
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--sizes", default="1600,10000", help="comma-separated run counts")
    parser.add_argument("--servers", default="daemon,http", help="daemon, http or both")
    parser.add_argument("--layouts", default="old,new", help="old (per-run refs), new or both")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args()
    servers = tuple(k for k in args.servers.split(",") if k)
    if unknown := set(servers) - set(SERVERS):
        parser.error(f"unknown server {sorted(unknown)}: daemon or http")
    results = {}
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            layouts = tuple(k for k in args.layouts.split(",") if k in ("old", "new"))
            results[n] = measure(Path(tmp), n, servers=servers, layouts=layouts)
        print(f"{n} runs done", file=sys.stderr)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
