"""`xp init`, `xp commit`, `xp recover` and the error boundary, as a user meets them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xp
from tests.helpers import git, invoke, server_runs, user_error
from xp.cli import main
from xp.format import bucket_of


def test_commit_records_workspace_files(repo: Path) -> None:
    (repo / "metrics.json").write_text(json.dumps({"rmse": 0.31, "eval": {"r2": 0.8}}))
    (repo / "model.bin").write_bytes(b"weights")
    (repo / "data.csv").write_text("1,2\n")
    result = invoke(
        "commit",
        "-n",
        "baseline",
        "-m",
        "first try",
        "--param",
        "extra=5",
        "--metric",
        "speed=12.5",
        "--artifact",
        "model.bin",
        "--data",
        "data.csv",
    )
    assert result.exit_code == 0, result.output
    run_id = result.stdout.split()[0]
    assert "baseline" in result.stdout
    assert "rmse=0.31" in result.stdout
    got = xp.get_run(run_id)
    assert got.params == {"lr": 0.1, "model.depth": 3, "extra": 5}
    assert got.metrics == {"rmse": 0.31, "eval.r2": 0.8, "speed": 12.5}
    assert [a.path for a in got.artifacts] == ["model.bin"]
    assert [i.path for i in got.inputs] == ["data.csv"]
    assert got.meta["message"] == "first try"
    body = git(repo, "log", "-1", "--format=%B", f"refs/xp/runs/{run_id}")
    assert body.startswith("xp: baseline eval.r2=0.8 rmse=0.31 speed=12.5\n\nfirst try\n")
    assert git(repo, "show", f"refs/xp/runs/{run_id}:.xp/run/params.yaml") == (
        "extra: 5\nlr: 0.1\nmodel.depth: 3\n"
    )


def test_commit_twice_gives_two_runs_same_tree(repo: Path) -> None:
    a = invoke("commit").stdout.split()[0]
    b = invoke("commit").stdout.split()[0]
    assert a != b
    ta = git(repo, "rev-parse", f"refs/xp/runs/{a}^{{tree}}")
    tb = git(repo, "rev-parse", f"refs/xp/runs/{b}^{{tree}}")
    assert ta != tb  # the record differs (id, times); the code tree is the same:
    assert git(repo, "rev-parse", f"refs/xp/runs/{a}:train.py") == git(
        repo, "rev-parse", f"refs/xp/runs/{b}:train.py"
    )


def test_commit_uses_configured_files(repo: Path) -> None:
    (repo / ".xp").mkdir()
    (repo / ".xp" / "config.yaml").write_text(
        "params: [conf/hp.json]\nmetrics: [out/scores.yaml]\nartifacts: [out/model]\n"
        "data: [missing.csv]\n"
    )
    (repo / "conf").mkdir()
    (repo / "conf" / "hp.json").write_text('{"opt": {"lr": 0.01}}')
    (repo / "out" / "model").mkdir(parents=True)
    (repo / "out" / "model" / "w.bin").write_bytes(b"w")
    (repo / "out" / "scores.yaml").write_text("acc: 0.9\n")
    result = invoke("commit")
    assert result.exit_code == 0, result.output
    assert "missing.csv" in result.stderr
    got = xp.get_run(result.stdout.split()[0])
    assert got.params == {"opt.lr": 0.01}
    assert got.metrics == {"acc": 0.9}
    assert [a.path for a in got.artifacts] == ["model/w.bin"]
    assert any("missing.csv" in w for w in got.meta["warnings"])


@pytest.mark.parametrize(
    ("setup", "args", "expect"),
    [
        (lambda r: (r / "params.yaml").write_text("a: [1\n"), [], "params.yaml line"),
        (
            lambda r: (r / "metrics.json").write_text("{bad"),
            [],
            "metrics.json line 1: invalid JSON",
        ),
        (lambda r: (r / "metrics.json").write_text('{"m": "x"}'), [], "not a number"),
        (
            lambda r: (r / "params.yaml").write_text("- 1\n- 2\n"),
            [],
            "params.yaml must hold a mapping of params, got list",
        ),
        (lambda r: (r / "metrics.json").mkdir(), [], "cannot read metric file"),
        (lambda r: None, ["--metric", "acc=high"], "not a number"),
        (lambda r: None, ["--param", "noequals"], "KEY=VALUE"),
        (lambda r: None, ["--param", "bad*key=1"], "rename it"),
        (lambda r: None, ["--artifact", "nope.bin"], "does not exist"),
        (lambda r: None, ["--data", ".."], "outside the repository"),
        (
            lambda r: (r / ".xp").mkdir() or (r / ".xp/config.yaml").write_text("- x\n"),
            [],
            "must be a mapping",
        ),
        (
            lambda r: (
                (r / ".xp").mkdir() or (r / ".xp/config.yaml").write_text("max_file_size: lots\n")
            ),
            [],
            "expected a size",
        ),
    ],
)
def test_commit_user_errors(repo: Path, setup, args: list[str], expect: str) -> None:  # type: ignore[no-untyped-def]
    setup(repo)
    before = git(repo, "for-each-ref")
    line = user_error(invoke("commit", *args))
    assert expect in line
    assert git(repo, "for-each-ref") == before  # no half-written run
    assert not list((repo / ".git" / "xp" / "journal").glob("*.journal"))


def test_empty_params_and_metrics_files_are_no_values(repo: Path) -> None:
    (repo / "params.yaml").write_text("")
    (repo / "metrics.json").write_text("")
    result = invoke("commit")
    assert result.exit_code == 0, result.output
    got = xp.get_run(result.stdout.split()[0])
    assert (got.params, got.metrics) == ({}, {})


def test_not_a_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert "not a git repository" in user_error(invoke("commit"))
    assert "not a git repository" in user_error(invoke("init"))


def test_bare_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(tmp_path, "init", "-q", "--bare", "b.git")
    monkeypatch.chdir(tmp_path / "b.git")
    assert "bare git repository" in user_error(invoke("commit"))


def test_init_is_idempotent_and_undoable(repo: Path, tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "remote.git")
    git(repo, "remote", "add", "origin", str(tmp_path / "remote.git"))
    config_before = (repo / ".git" / "config").read_text()
    first = invoke("init")
    assert first.exit_code == 0
    assert (repo / ".xp" / "config.yaml").exists()
    assert "installed pre-push" in first.stdout
    after_first = (repo / ".git" / "config").read_text()
    second = invoke("init")
    assert "nothing changed" in second.stdout
    assert (repo / ".git" / "config").read_text() == after_first
    # No push refspec: git alone decides which branches `git push` sends (push.default).
    assert "remote.origin.push" not in git(repo, "config", "--list")
    assert git(repo, "config", "--get-all", "remote.origin.fetch").split() == [
        "+refs/heads/*:refs/remotes/origin/*",
        "+refs/xp/runs/*:refs/xp/remotes/origin/runs/*",
        "+refs/xp/catalog/*:refs/xp/remotes/origin/catalog/*",
        "+refs/xp/monitoring/*:refs/xp/remotes/origin/monitoring/*",
        "+refs/notes/xp*:refs/xp/remotes/origin/notes*",
    ]
    assert git(repo, "config", "notes.xp.mergeStrategy").strip() == "cat_sort_uniq"
    assert invoke("init", "--undo").exit_code == 0
    assert git(repo, "config", "--get-all", "remote.origin.fetch").split() == [
        "+refs/heads/*:refs/remotes/origin/*"
    ]
    assert "remote.origin.push" not in git(repo, "config", "--list")
    assert "notes.xp" not in git(repo, "config", "--list")
    assert config_before.count("[remote") == 1


def test_init_keeps_an_existing_push_setup_and_removes_the_old_xp_one(
    repo: Path, tmp_path: Path
) -> None:
    git(tmp_path, "init", "-q", "--bare", "remote.git")
    git(repo, "remote", "add", "origin", str(tmp_path / "remote.git"))
    git(repo, "config", "remote.origin.push", "refs/heads/main:refs/heads/main")
    invoke("init")
    assert git(repo, "config", "--get-all", "remote.origin.push").split() == [
        "refs/heads/main:refs/heads/main"
    ]
    invoke("init", "--undo")
    assert git(repo, "config", "--get-all", "remote.origin.push").split() == [
        "refs/heads/main:refs/heads/main"
    ]
    assert "no git remote 'up'" in user_error(invoke("init", "--remote", "up"))
    # What an older xp init wrote: HEAD beside its run refspecs. xp init takes it back out.
    git(repo, "config", "--unset-all", "remote.origin.push")
    for spec in ("HEAD", "refs/xp/runs/*:refs/xp/runs/*", "refs/notes/xp*:refs/notes/xp*"):
        git(repo, "config", "--add", "remote.origin.push", spec)
    git(repo, "config", "remote.origin.xp-addedpushhead", "true")
    changed = invoke("init").stdout
    assert "git's own rules" in changed
    assert "remote.origin.push" not in git(repo, "config", "--list")
    assert "xp-addedpushhead" not in git(repo, "config", "--list")


def test_plain_git_push_and_fetch_carry_runs(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    invoke("init")
    run_id = invoke("commit", "-n", "shared").stdout.split()[0]
    # git's own rule stands: plain `git push` of a branch without upstream is refused...
    assert subprocess.run(["git", "push", "-q", "origin"], cwd=repo).returncode != 0
    assert git(remote, "for-each-ref") == ""
    # ...and `git push origin main` sends the branch, and the runs with it (the pre-push hook).
    git(repo, "push", "-q", "-u", "origin", "main")
    assert git(remote, "for-each-ref", "--format=%(refname)").split() == [
        "refs/heads/main",
        f"refs/xp/catalog/{bucket_of(run_id)}",  # the run catalog (docs/format.md, section 1)
    ]
    second = invoke("commit", "-n", "second").stdout.split()[0]
    git(repo, "push", "-q")  # plain push, now that main has an upstream
    assert second in server_runs(remote)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    git(
        clone,
        "config",
        "--add",
        "remote.origin.fetch",
        "+refs/xp/catalog/*:refs/xp/remotes/origin/catalog/*",
    )
    git(clone, "fetch", "-q", "--prune", "origin")
    assert xp.get_run(run_id, path=clone).name == "shared"
    # a local run in the clone survives `git fetch --prune`
    os.chdir(clone)
    local_id = invoke("commit", "-n", "local").stdout.split()[0]
    git(clone, "fetch", "-q", "--prune", "origin")
    assert {r.id for r in xp.list_runs()} == {run_id, second, local_id}


def test_main_maps_errors_to_exit_codes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["commit", "--param", "x"]) == 1
    assert main(["no-such-command"]) == 2
    assert main(["--help"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_git_xp_entry_point(repo: Path) -> None:
    exe = Path(sys.executable).parent / "git-xp"
    if not exe.exists():
        pytest.skip("git-xp console script not installed next to this python")
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["git", "xp", "commit", "-n", "via-git"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "via-git" in proc.stdout


def test_disk_full_style_write_error(repo: Path) -> None:
    """A file-size limit makes every large write fail as a full disk would (EFBIG)."""
    (repo / "big.bin").write_bytes(os.urandom(300_000))
    (repo / ".gitignore").write_text("big.bin\n")
    script = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
        "from xp.cli import main\n"
        "raise SystemExit(main(['commit', '--artifact', 'big.bin']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "File too large" in lines[0]
    assert "Traceback" not in proc.stderr
    assert git(repo, "for-each-ref", "refs/xp") == ""
    assert not list((repo / ".git" / "xp" / "cache").rglob("*.tmp"))
    # and after the "disk" has room again, everything works
    assert invoke("commit", "--artifact", "big.bin").exit_code == 0
    # git itself hitting the limit (snapshotting a large file) is reported, not a traceback
    (repo / ".gitignore").unlink()
    proc = subprocess.run(
        [sys.executable, "-c", script.replace("'--artifact', 'big.bin'", "")],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "file size limit" in proc.stderr


_COMMIT_TOKENS = st.sampled_from(
    ["-n", "--name", "-m", "--message", "-e", "--experiment", "--param", "--metric",
     "--artifact", "--data", "--name=a", "--param=x=1", "-m=x", "--help", "-h", "--", "-x",
     "--nam", "a", "b=2", "-", "", "--message=", "lr=0.1", "-nfoo"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_COMMIT_TOKENS, max_size=7))
def test_quick_commit_parses_as_click_does(args: list[str]) -> None:
    """`xp commit`'s options read before click loads (commit_body.parse) are click's own
    reading of them, or left to click."""
    from xp.cli.commit import commit
    from xp.cli.commit_body import parse

    quick = parse(args)
    if quick is None:
        return
    ctx = commit.make_context("commit", list(args))
    assert quick == ctx.params


def test_quick_commit_ends_as_the_click_command_does(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The click-free `xp commit` and click's give the same output, errors and exit codes."""
    (repo / "metrics.json").write_text(json.dumps({"rmse": 0.123456789, "n": 3}))
    args = ["-n", "same", "--message=why", "--param", "lr=1e-3", "--metric", "speed=12.5"]
    assert main(["commit", *args]) == 0
    quick = capsys.readouterr()
    clicked = invoke("commit", *args)
    assert clicked.exit_code == 0
    quick_id, click_id = quick.out.split()[0], clicked.stdout.split()[0]
    assert quick.out.replace(quick_id, "ID") == clicked.stdout.replace(click_id, "ID")
    assert "rmse=0.1235" in quick.out
    assert quick.err == clicked.stderr
    for bad in (["--param", "x"], ["--artifact", "nope.bin"]):
        assert main(["commit", *bad]) == 1
        err = capsys.readouterr().err
        assert err == invoke("commit", *bad).stderr
        assert err.startswith("xp: error: ")
        assert err.count("\n") == 1


def test_dataclasses_without_inspect_still_document_and_inspect_is_real() -> None:
    """``xp commit`` imports dataclasses with a stand-in for ``inspect`` (issue 18): a class
    without a docstring still gets its signature as docstring, the real
    module loads then, and a later ``import inspect`` is the real module."""
    code = (
        "import sys\n"
        "from xp.cli.quick import defer_inspect\n"
        "defer_inspect()\n"
        "import dataclasses\n"
        "assert 'inspect' not in sys.modules and 'ast' not in sys.modules\n"
        "@dataclasses.dataclass\n"
        "class A:\n"
        "    x: int\n"
        "    y: str = 'a'\n"
        "import inspect\n"
        "assert A.__doc__ == \"A(x: int, y: str = 'a')\", A.__doc__\n"
        "assert dataclasses.inspect is inspect is sys.modules['inspect']\n"
        "assert type(inspect).__name__ == 'module' and callable(inspect.getsource)\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "ok"


def test_xp_commit_loads_neither_click_nor_the_renderer(repo: Path) -> None:
    """`xp commit` is typed after every training step (issue 18: <= 100 ms): its common
    forms run before click is imported, and neither the table renderer nor PyYAML (the
    config's parse is cached; a params file of plain nested mappings is read by fastyaml)
    nor dulwich (gitstore serialises the run's objects itself) nor hashlib (OpenSSL: the
    run's name and objects hash with CPython's own SHA) load."""
    (repo / "params.yaml").write_text("lr: 0.01\nmodel:\n  depth: 6\n  name: rf\n")
    assert invoke("commit").exit_code == 0  # the config's parse is cached from here on
    code = (
        "import sys\n"
        "from xp.cli import main\n"
        "assert main(['commit', '-m', 'x', '--param', 'a=1']) == 0\n"
        "heavy = ('click', 'xp.cli.render', 'xp.cli.app', 'yaml', 'pandas', 'fsspec', 'dulwich',"
        " 'hashlib', 'xp.artifacts.cache', 'platform')\n"
        "print('loaded:', [m for m in heavy if m in sys.modules])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "loaded: []", out.stdout
