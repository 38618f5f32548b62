"""Hooks installed into real repos, run by the real git CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import xp
from tests.helpers import ROOT, Team, git, hook_push_loading, log_run, server_runs, xp_main
from xp.cli import cli
from xp.format import bucket_of
from xp.gitstore.repo import find_repo
from xp.hooks import install as githooks


def _env(with_xp: bool = True) -> dict[str, str]:
    path = os.environ["PATH"]
    if with_xp:
        path = f"{Path(sys.executable).parent}{os.pathsep}{path}"
    else:  # a PATH with git but without any xp
        path = os.pathsep.join(
            p
            for p in path.split(os.pathsep)
            if not (Path(p) / "xp").exists() and not (Path(p) / "git-xp").exists()
        )
    return {**os.environ, "PATH": path}


def _git(
    repo: Path, *args: str, with_xp: bool = True, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=_env(with_xp), capture_output=True, text=True
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_shipped_shims_match_what_install_writes() -> None:
    for name in githooks.HOOKS:
        shipped = ROOT / "hooks" / name
        assert shipped.read_text() == githooks.shim(name)
        assert os.access(shipped, os.X_OK)
    assert (ROOT / ".pre-commit-hooks.yaml").exists()


def test_install_status_uninstall_keep_foreign_hooks(repo: Path) -> None:
    hooks_dir = repo / ".git" / "hooks"
    hooks_dir.mkdir(exist_ok=True)
    mine = hooks_dir / "pre-commit"
    mine.write_text("#!/bin/sh\necho legacy-ran >> legacy.log\n")
    mine.chmod(0o755)
    result = CliRunner().invoke(cli, ["hooks", "install"])
    assert result.exit_code == 0, result.output
    assert "kept your pre-commit hook as pre-commit.legacy" in result.stdout
    states = {s.name: s.state for s in githooks.status(find_repo())}
    assert states == {
        "pre-commit": "installed+legacy",
        "pre-push": "installed",
        "post-checkout": "installed",
    }
    assert "already installed" in CliRunner().invoke(cli, ["hooks", "install"]).stdout
    (repo / "a.txt").write_text("a\n")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-qm", "a")
    assert (repo / "legacy.log").read_text() == "legacy-ran\n"  # the old hook still runs
    CliRunner().invoke(cli, ["hooks", "uninstall"])
    assert mine.read_text().startswith("#!/bin/sh\necho legacy-ran")
    assert not (hooks_dir / "pre-push").exists()
    assert not (hooks_dir / "pre-commit.legacy").exists()


def test_failing_legacy_hook_blocks(repo: Path) -> None:
    hooks_dir = repo / ".git" / "hooks"
    hooks_dir.mkdir(exist_ok=True)
    (hooks_dir / "pre-commit").write_text("#!/bin/sh\necho no >&2\nexit 1\n")
    (hooks_dir / "pre-commit").chmod(0o755)
    githooks.install(find_repo())
    (repo / "a.txt").write_text("a\n")
    _git(repo, "add", "a.txt")
    assert _git(repo, "commit", "-qm", "a", ok=False).returncode != 0


def test_core_hooks_path_is_respected(repo: Path) -> None:
    git(repo, "config", "core.hooksPath", "my-hooks")
    githooks.install(find_repo(), names=("pre-commit",))
    assert githooks.is_ours(repo / "my-hooks" / "pre-commit")
    assert not (repo / ".git" / "hooks" / "pre-commit").exists() or not githooks.is_ours(
        repo / ".git" / "hooks" / "pre-commit"
    )


def test_unknown_hook_name(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["hooks", "install", "--hook", "post-merge"])
    assert result.exit_code == 1
    assert "unknown hook 'post-merge'" in result.stderr


def test_pre_commit_refuses_large_files_and_bad_params(repo: Path) -> None:
    githooks.install(find_repo())
    (repo / ".xp").mkdir()
    (repo / ".xp" / "config.yaml").write_text("hooks:\n  max_file_size: 1KB\n")
    (repo / "big.bin").write_bytes(b"x" * 5000)
    _git(repo, "add", "big.bin")
    proc = _git(repo, "commit", "-qm", "big", ok=False)
    assert proc.returncode != 0
    assert "big.bin is 5.0 kB, over the 1.0 kB limit" in proc.stderr
    assert "log_artifact" in proc.stderr
    assert "{path}" not in proc.stderr
    # The default limit is the template's 10MB, said in the unit it is written in.
    (repo / ".xp" / "config.yaml").write_text("hooks:\n  check_files: true\n")
    (repo / "big.bin").write_bytes(b"x" * 10_000_001)
    _git(repo, "add", "big.bin")
    proc = _git(repo, "commit", "-qm", "big", ok=False)
    assert "big.bin is 10.0 MB, over the 10.0 MB limit" in proc.stderr
    (repo / ".xp" / "config.yaml").write_text("hooks:\n  max_file_size: 10MiB\n")
    (repo / "big.bin").write_bytes(b"x" * (10 * 2**20 + 1))
    _git(repo, "add", "big.bin")
    proc = _git(repo, "commit", "-qm", "big", ok=False)
    assert "over the 10.0 MiB limit" in proc.stderr
    _git(repo, "reset", "-q", "big.bin")
    (repo / "params.yaml").write_text("lr: [0.1\n")
    _git(repo, "add", "params.yaml")
    proc = _git(repo, "commit", "-qm", "params", ok=False)
    assert "params.yaml line" in proc.stderr
    # each check can be switched off
    (repo / ".xp" / "config.yaml").write_text("hooks:\n  check_files: false\n")
    _git(repo, "commit", "-qm", "params")


def test_pre_commit_refuses_a_stale_run_record(repo: Path) -> None:
    with xp.start_run(name="r") as run:
        xp.log_metric("m", 1.0)
    githooks.install(find_repo())
    _git(repo, "checkout", "-q", "-b", "from-run", f"refs/xp/runs/{run.id}")
    (repo / "notes.md").write_text("a new file: the code is no longer the run's\n")
    _git(repo, "add", "notes.md")
    proc = _git(repo, "commit", "-qm", "edit", ok=False)
    assert proc.returncode != 0
    assert f"describes run {run.id}" in proc.stderr
    _git(repo, "rm", "-r", "-q", "--cached", ".xp/run")
    _git(repo, "commit", "-qm", "edit without the record")


def test_record_unchanged_code_is_fine(repo: Path) -> None:
    with xp.start_run() as run:
        pass
    githooks.install(find_repo())
    _git(repo, "checkout", "-q", "-b", "from-run", f"refs/xp/runs/{run.id}")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "same code")


def test_hooks_without_xp_on_path(repo: Path) -> None:
    githooks.install(find_repo())  # no fallback path recorded
    (repo / "a.txt").write_text("a\n")
    _git(repo, "add", "a.txt", with_xp=False)
    proc = _git(repo, "commit", "-qm", "a", with_xp=False)
    assert "pre-commit hook skipped: xp is not on PATH" in proc.stderr


def test_pre_push_without_xp_blocks_only_pushes_of_runs(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    with xp.start_run() as run:
        pass
    githooks.install(find_repo())
    _git(repo, "push", "-q", "origin", "main", with_xp=False)  # a branch: fine
    ref = f"refs/xp/runs/{run.id}"
    proc = _git(repo, "push", "-q", "origin", f"{ref}:{ref}", with_xp=False, ok=False)
    assert proc.returncode != 0
    assert "xp is not on PATH" in proc.stderr
    env = {**_env(with_xp=False), "XP_SKIP_PUSH": "1"}
    subprocess.run(["git", "push", "-q", "origin", f"{ref}:{ref}"], cwd=repo, env=env, check=True)
    _git(repo, "push", "-q", "origin", f":{ref}")  # a deletion passes through the hook


@pytest.mark.parametrize("flag", ["0"])
def test_post_checkout_of_files_does_nothing(repo: Path, flag: str) -> None:
    result = CliRunner().invoke(cli, ["hook", "post-checkout", "HEAD", "HEAD", flag])
    assert result.exit_code == 0
    assert result.output == ""


def _clone_b(tmp_path: Path, remote: Path) -> Path:
    clone = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    return clone


def test_plain_git_push_uploads_artifacts_and_checkout_materialises(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote.git"
    store = tmp_path / "store"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert runner.invoke(cli, ["remote", "add", "store", str(store), "--default"]).exit_code == 0
    assert runner.invoke(cli, ["hooks", "install"]).exit_code == 0
    (repo / ".gitignore").write_text("outputs/\n")
    _git(repo, "add", ".gitignore", ".xp/config.yaml")
    _git(repo, "commit", "-qm", "xp setup")
    (repo / "outputs").mkdir()
    payload = os.urandom(200_000)
    (repo / "outputs" / "model.bin").write_bytes(payload)
    with xp.start_run(name="shared") as run:
        xp.log_artifact("outputs/model.bin")
    proc = _git(repo, "push", "origin", "main")  # git push of a branch: + runs + artifacts
    assert "uploaded 1 artifact objects" in proc.stderr
    assert len([p for p in store.rglob("*") if p.is_file()]) == 1
    # clone B: plain fetch brings the run; checking out a branch made from it puts the file back
    clone = _clone_b(tmp_path, remote)
    monkeypatch.chdir(clone)
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    _git(clone, "fetch", "-q", "origin")
    assert xp.get_run(run.id).name == "shared"
    assert CliRunner().invoke(cli, ["hooks", "install"]).exit_code == 0
    # plain git names a catalog entry <bucket ref>:<run id> (docs/format.md, section 1)
    entry = f"refs/xp/remotes/origin/catalog/{bucket_of(run.id)}:{run.id}"
    proc = _git(clone, "checkout", "-q", "-b", "from-run", entry)
    assert (clone / "outputs" / "model.bin").read_bytes() == payload
    assert "put 1 artifact files in place" in proc.stderr
    for path in (repo, clone, remote):
        subprocess.run(
            ["git", "fsck", "--strict", "--no-dangling"], cwd=path, check=True, capture_output=True
        )


def test_pre_push_with_the_artifact_remote_down_aborts(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    runner = CliRunner()
    runner.invoke(cli, ["init"])
    store = tmp_path / "store"
    assert runner.invoke(cli, ["remote", "add", "store", str(store), "--default"]).exit_code == 0
    store.write_text("a file where the store folder should be: every write fails, even as root")
    githooks.install(find_repo())
    (repo / "m.bin").write_bytes(b"m" * 100)
    with xp.start_run():
        xp.log_artifact("m.bin")
    proc = _git(repo, "push", "origin", "main", ok=False)
    assert proc.returncode != 0
    assert "push stopped" in proc.stderr
    assert proc.stderr.count("xp:") == 1
    assert git(remote, "for-each-ref", "refs/xp") == ""  # git sent no run ref


def test_post_checkout_rehashes_what_it_places(team: Team) -> None:
    """A corrupt cached object is never copied into the work tree: it is fetched again."""
    (team.a / "out").mkdir()  # ignored: only the hook can bring it back
    (team.a / "out" / "model.bin").write_bytes(b"the model")
    with xp.start_run() as run:
        xp.log_artifact("out/model.bin")
    code, _out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    commit = xp.get_run(run.id).commit
    sha = xp.get_run(run.id).artifacts[0].sha256
    obj = team.a / ".git" / "xp" / "cache" / "sha256" / sha[:2] / sha[2:4] / sha
    obj.chmod(0o644)
    obj.write_bytes(b"the modeL")  # one bit flipped in the cache
    (team.a / "out" / "model.bin").unlink()
    git(team.a, "checkout", "-q", "--detach", commit)
    result = CliRunner().invoke(cli, ["hook", "post-checkout", "HEAD", commit, "1"])
    assert result.exit_code == 0, result.stderr
    assert (team.a / "out" / "model.bin").read_bytes() == b"the model"
    assert (team.a / "out" / "model.bin").stat().st_ino != obj.stat().st_ino  # a copy
    assert obj.read_bytes() == b"the model"  # the cache was repaired from the store
    for path in (team.store / "sha256").rglob("*"):
        if path.is_file():
            path.chmod(0o644)
            path.write_bytes(b"rotten")  # now the store's copy is bad too
    obj.chmod(0o644)
    obj.write_bytes(b"rotten")
    (team.a / "out" / "model.bin").unlink()
    result = CliRunner().invoke(cli, ["hook", "post-checkout", "HEAD", commit, "1"])
    assert "out/model.bin not written: its cached copy was corrupt" in result.stderr
    assert not (team.a / "out" / "model.bin").exists()
    git(team.a, "checkout", "-q", "main")


def test_xps_own_pushes_of_runs_do_not_start_the_hook_in_python(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`xp push` and the hook's own push of runs mark their `git push` so the pre-push shim
    exits in the shell (no Python start); a hook kept as pre-push.legacy still runs."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert runner.invoke(cli, ["remote", "add", "store", str(tmp_path / "store")]).exit_code == 0
    legacy_log, xp_log = tmp_path / "legacy.log", tmp_path / "xp.log"
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-push").write_text(f'#!/bin/sh\ncat >/dev/null\necho legacy >> "{legacy_log}"\n')
    (hooks / "pre-push").chmod(0o755)
    assert runner.invoke(cli, ["hooks", "install"]).exit_code == 0
    assert (hooks / "pre-push.legacy").exists()
    bin_dir = tmp_path / "bin"  # `git-xp` comes first on the shim's lookup: it logs, then runs xp
    bin_dir.mkdir()
    xp_exe = Path(sys.executable).parent / "xp"
    (bin_dir / "git-xp").write_text(f'#!/bin/sh\necho "$*" >> "{xp_log}"\nexec "{xp_exe}" "$@"\n')
    (bin_dir / "git-xp").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    git(repo, "add", ".xp/config.yaml")
    git(repo, "commit", "-qm", "xp setup")
    git(repo, "push", "-q", "origin", "main")  # a branch push: the hook runs in Python
    assert xp_log.read_text().count("hook pre-push") == 1
    with xp.start_run(name="one"):
        xp.log_metric("loss", 0.5)
    pushed = runner.invoke(cli, ["push"])
    assert pushed.exit_code == 0, pushed.output
    assert xp_log.read_text().count("hook pre-push") == 1  # xp push: the shim exited early
    assert legacy_log.read_text().count("legacy") == 2  # the legacy hook ran both times
    assert len(server_runs(remote)) == 1


def test_the_pre_push_hook_loads_only_what_an_upload_takes(team: Team) -> None:
    """Every `git push` runs the hook (issue 14: <= 0.15 CPU-s): it is dispatched without
    click, reads the run's manifest without PyYAML, moves one object without a thread pool,
    and leaves fsspec alone for a folder store."""
    log_run(team.a, {"model.bin": os.urandom(100_000)})
    heavy = ("click", "yaml", "xp.cli.app", "concurrent.futures", "fsspec", "pandas")
    last, out, err = hook_push_loading(
        team, (*heavy, "xp.sharing.registry", "dulwich.repo", "xp.record.model")
    )
    assert last == "0 loaded: []", out + err
    assert "xp: uploaded 1 artifact objects (100.0 kB) to store" in err
    assert "xp: sent 1 run to origin with this push" in err
    assert len(server_runs(team.bare)) == 1


def test_the_pre_push_hook_outside_a_repository_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "hook", "pre-push", "origin", "url"],
        cwd=tmp_path,
        input="",
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("xp: error: ")


def test_a_run_the_remote_holds_at_another_commit_stops_the_push_saying_what_to_do(
    team: Team,
) -> None:
    """Format 2: a run is an entry in a catalog bucket, never merged, so `git fetch` and
    pushing again cannot help; the hook names the run, how to compare the two copies and
    how to push the branch meanwhile."""
    run_id = log_run(team.a, {"m.bin": b"model"})
    git(team.a, "commit", "-q", "--allow-empty", "-m", "work")
    _git(team.a, "push", "-q", "origin", "main")
    tip = git(team.a, "rev-parse", f"refs/xp/runs/{run_id}").strip()
    other = git(team.a, "commit-tree", f"{tip}^{{tree}}", "-m", "rewritten").strip()
    git(team.a, "update-ref", f"refs/xp/runs/{run_id}", other)  # as if recorded elsewhere
    git(team.a, "commit", "-q", "--allow-empty", "-m", "more work")
    proc = _git(team.a, "push", "origin", "main", ok=False)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("xp:")]
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert f"origin holds run {run_id} at a commit yours does not descend from" in line, line
    assert "xp merges annotations" not in line
    assert server_runs(team.bare)[run_id] == tip  # the remote's copy untouched
    assert git(team.a, "rev-parse", f"refs/xp/runs/{run_id}").strip() == other  # ours kept
    # what the line says to do works: fetch, compare, push the branch alone
    assert "`git fetch origin`" in line
    _git(team.a, "fetch", "-q", "origin")
    compare = f"`xp diff {run_id} refs/xp/remotes/origin/runs/{run_id}`"
    assert compare in line
    code, _out, err = xp_main(*compare.strip("`").split()[1:], cwd=team.a)
    assert code == 0, err
    assert "`XP_SKIP_PUSH=1 git push`" in line
    skipped = subprocess.run(
        ["git", "push", "-q", "origin", "main"],
        cwd=team.a,
        env={**_env(), "XP_SKIP_PUSH": "1"},
        capture_output=True,
        text=True,
    )
    assert skipped.returncode == 0, skipped.stderr
    assert git(team.bare, "rev-parse", "main") == git(team.a, "rev-parse", "main")


def test_annotations_another_clone_pushed_first_are_merged_by_the_hook(team: Team) -> None:
    """Notes from another clone are no fast-forward of ours: the hook fetches and merges
    them and sends the merge, as `xp push` does, instead of stopping the push."""
    run_id = log_run(team.a, {"m.bin": b"model"})
    git(team.a, "commit", "-q", "--allow-empty", "-m", "work")
    _git(team.a, "push", "-q", "origin", "main")
    assert xp_main("init", cwd=team.b)[0] == 0
    _git(team.b, "pull", "-q", "origin", "main")
    _git(team.b, "fetch", "-q", "origin")
    assert xp_main("tag", run_id, "by=a", cwd=team.a)[0] == 0
    git(team.a, "commit", "-q", "--allow-empty", "-m", "a tags")
    _git(team.a, "push", "-q", "origin", "main")
    assert xp_main("tag", run_id, "seen=b", cwd=team.b)[0] == 0  # without a's note
    git(team.b, "commit", "-q", "--allow-empty", "-m", "b tags")
    proc = _git(team.b, "push", "origin", "HEAD:refs/heads/b-work", ok=False)
    assert proc.returncode == 0, proc.stderr
    assert "xp: sent 1 annotation ref to origin with this push" in proc.stderr
    fresh = team.a.parent / "fresh"
    git(team.a.parent, "clone", "-q", str(team.bare), fresh.name)
    assert xp_main("init", cwd=fresh)[0] == 0
    _git(fresh, "fetch", "-q", "origin")
    assert xp.get_run(run_id, fresh).tags.items() >= {"by": "a", "seen": "b"}.items()
