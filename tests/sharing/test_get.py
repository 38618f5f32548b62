"""xp get: restore artifacts and cached inputs, verified, and never outside the target."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import xp
from tests.helpers import Team, git, log_run, one_line_error, xp_main
from xp.artifacts import cache


def cache_of(root: Path) -> Path:
    return root / ".git" / "xp" / "cache"


def test_get_all_some_and_folders(repo: Path) -> None:
    run_id = log_run(repo, {"model.bin": b"M" * 100, "plots/a.png": b"A", "plots/b.png": b"B"})
    code, out, err = xp_main("get", run_id, "-o", "all", cwd=repo)
    assert code == 0, err
    assert (repo / "all" / "model.bin").read_bytes() == b"M" * 100
    assert (repo / "all" / "plots" / "b.png").read_bytes() == b"B"
    code, out, err = xp_main("get", run_id, "plots", "-o", "some", cwd=repo)
    assert code == 0, err
    assert sorted(p.name for p in (repo / "some").rglob("*") if p.is_file()) == ["a.png", "b.png"]
    msg = one_line_error(*xp_main("get", run_id, "nothing.txt", cwd=repo)[::2])
    assert "has no artifact or input 'nothing.txt'" in msg
    assert "model.bin" in msg
    code, out, err = xp_main("get", run_id, "-l", cwd=repo)
    assert code == 0
    assert "plots/a.png" in out


def test_link_kinds(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = log_run(repo, {"w.bin": b"weights"})
    sha = xp.get_run(run_id).artifacts[0].sha256
    obj = cache.object_path(cache_of(repo), sha)
    assert xp_main("get", run_id, "-o", "copied", cwd=repo)[0] == 0
    copied = repo / "copied" / "w.bin"
    assert copied.stat().st_ino != obj.stat().st_ino  # the default: a file of its own
    assert copied.stat().st_mode & stat.S_IWUSR
    with open(copied, "r+b") as fh:  # retraining rewrites the model in place (root can)
        fh.write(b"RETRAIN")
    assert cache.verify(cache_of(repo), sha)  # the cached object (and the run) are intact
    assert xp_main("get", run_id, "-o", "linked", "--link", "hardlink", cwd=repo)[0] == 0
    linked = repo / "linked" / "w.bin"
    assert linked.stat().st_ino == obj.stat().st_ino  # opted in: the cached object itself
    assert not linked.stat().st_mode & stat.S_IWUSR  # read-only: writes would hit the cache
    monkeypatch.setenv("XP_CACHE_LINK", "hardlink,copy")
    assert xp_main("get", run_id, "-o", "env", cwd=repo)[0] == 0
    assert (repo / "env" / "w.bin").stat().st_ino == obj.stat().st_ino
    msg = one_line_error(*xp_main("get", run_id, "--link", "symlink", cwd=repo)[::2])
    assert "unknown link kind 'symlink'" in msg


def test_existing_files_need_force(repo: Path) -> None:
    run_id = log_run(repo, {"a.txt": b"new"})
    out = repo / "dest"
    out.mkdir()
    (out / "a.txt").write_bytes(b"old, mine")
    msg = one_line_error(*xp_main("get", run_id, "-o", "dest", cwd=repo)[::2])
    assert "exists with other content" in msg
    assert (out / "a.txt").read_bytes() == b"old, mine"
    assert xp_main("get", run_id, "-o", "dest", "--force", cwd=repo)[0] == 0
    assert (out / "a.txt").read_bytes() == b"new"
    code, _out, err = xp_main("get", run_id, "-o", "dest", cwd=repo)  # same content: fine
    assert code == 0
    assert "1 files already up to date" in err


def _hostile_commit(repo: Path, artifacts_yaml: str) -> str:
    """A branch commit carrying a run record written by someone else."""
    rec = repo / ".xp" / "run"
    rec.mkdir(parents=True)
    (rec / "meta.yaml").write_text("id: 0000000hostil\nname: evil\n")
    (rec / "artifacts.yaml").write_text(artifacts_yaml)
    git(repo, "add", ".xp")
    git(repo, "commit", "-qm", "hostile record")
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize(
    ("entry", "expect"),
    [
        ("- path: ../escape.txt\n  sha256: {sha}\n  size: 4\n", "not a clean relative path"),
        ("- path: /etc/evil\n  sha256: {sha}\n  size: 4\n", "not a clean relative path"),
        ("- path: ok.txt\n  sha256: ../../../../etc/passwd\n  size: 4\n", "valid sha256"),
        ("- !!python/object/apply:os.system ['echo hi']\n", "invalid YAML"),
    ],
)
def test_hostile_records_are_refused(repo: Path, entry: str, expect: str) -> None:
    sha = cache.add_bytes(cache_of(repo), b"evil")
    _hostile_commit(repo, entry.format(sha=sha))
    msg = one_line_error(*xp_main("get", "HEAD", "-o", "out", cwd=repo)[::2])
    assert expect in msg
    assert not (repo / "out").exists()
    assert not (repo / "escape.txt").exists()


def test_symlink_out_of_target_is_refused(repo: Path, tmp_path: Path) -> None:
    run_id = log_run(repo, {"sub/x.txt": b"x"})
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "target").mkdir()
    (repo / "target" / "sub").symlink_to(outside)
    msg = one_line_error(*xp_main("get", run_id, "-o", "target", cwd=repo)[::2])
    assert "outside" in msg
    assert list(outside.iterdir()) == []


def test_corrupt_local_object_is_fetched_again(team: Team) -> None:
    run_id = log_run(team.a, {"c.bin": b"good bytes"})
    assert xp_main("push", cwd=team.a)[0] == 0
    sha = xp.get_run(run_id, team.a).artifacts[0].sha256
    obj = cache.object_path(cache_of(team.a), sha)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"bit rot")
    code, _out, err = xp_main("get", run_id, "-o", "r", cwd=team.a)
    assert code == 0, err
    assert (team.a / "r" / "c.bin").read_bytes() == b"good bytes"
    assert cache.verify(cache_of(team.a), sha)
    # Corrupt again, and no remote has it: the error names run, path and hash.
    os.chmod(obj, 0o644)
    obj.write_bytes(b"bit rot")
    remote_obj = cache.object_path(team.store, sha)
    remote_obj.unlink()
    msg = one_line_error(*xp_main("get", run_id, "-o", "r2", cwd=team.a)[::2])
    assert "corrupt" in msg
    assert "c.bin" in msg
    assert sha in msg


def test_corrupt_remote_object_is_detected(team: Team) -> None:
    run_id = log_run(team.a, {"d.bin": b"data data"})
    assert xp_main("push", cwd=team.a)[0] == 0
    sha = xp.get_run(run_id, team.a).artifacts[0].sha256
    remote_obj = cache.object_path(team.store, sha)
    os.chmod(remote_obj, 0o644)
    remote_obj.write_bytes(b"tampered!")
    assert xp_main("pull", cwd=team.b)[0] == 0
    msg = one_line_error(*xp_main("get", run_id, "-o", "r", cwd=team.b)[::2])
    assert run_id in msg
    assert sha in msg
    assert "corrupt" in msg
    assert not cache.object_path(cache_of(team.b), sha).exists()
    assert not (team.b / "r" / "d.bin").exists()


def test_missing_everywhere_names_run_path_and_hash(team: Team) -> None:
    run_id = log_run(team.a, {"m.bin": b"mmm"})
    assert xp_main("push", "--no-artifacts", cwd=team.a)[0] == 0
    assert xp_main("pull", cwd=team.b)[0] == 0
    sha = xp.get_run(run_id, team.a).artifacts[0].sha256
    msg = one_line_error(*xp_main("get", run_id, cwd=team.b)[::2])
    assert run_id in msg
    assert "m.bin" in msg
    assert sha in msg
    assert "xp push" in msg


def test_cached_inputs_restore_in_another_clone(team: Team) -> None:
    data = team.a / "data"
    (data / "parts").mkdir(parents=True)
    (data / "train.csv").write_text("x,y\n1,2\n")
    (data / "parts" / "p1.csv").write_text("p1\n")
    (team.a / "labels.txt").write_text("cat\ndog\n")
    with xp.start_run() as run:
        xp.log_input("data", cache=True)
        xp.log_input("labels.txt", cache=True)
        xp.log_input("train.py")  # hashed only: nothing to restore
    assert xp_main("push", cwd=team.a)[0] == 0
    assert xp_main("pull", cwd=team.b)[0] == 0
    code, _out, err = xp_main("get", run.id, "data", "labels.txt", "-o", "in", cwd=team.b)
    assert code == 0, err
    got = team.b / "in"
    assert (got / "data" / "train.csv").read_text() == "x,y\n1,2\n"
    assert (got / "data" / "parts" / "p1.csv").read_text() == "p1\n"
    assert (got / "labels.txt").read_text() == "cat\ndog\n"
    code, _out, err = xp_main("get", run.id, "data/parts/p1.csv", "-o", "one", cwd=team.b)
    assert code == 0, err
    assert [p.name for p in (team.b / "one").rglob("*") if p.is_file()] == ["p1.csv"]
    msg = one_line_error(*xp_main("get", run.id, "train.py", cwd=team.b)[::2])
    assert "without cache=True" in msg


def test_uncached_inputs_are_skipped_unless_asked_for(repo: Path) -> None:
    """The README's pattern: log_input without cache=True, artifacts cached."""
    (repo / "data").mkdir()
    (repo / "data" / "rows.csv").write_text("a\nb\n")
    (repo / "folder").mkdir()
    (repo / "folder" / "part.csv").write_text("p\n")
    (repo / "model.bin").write_bytes(b"weights")
    with xp.start_run() as run:
        xp.log_input("data/rows.csv")
        xp.log_input("folder")  # a folder input: not even its manifest is stored
        xp.log_artifact("model.bin")
    code, _out, err = xp_main("get", run.id, "-o", "out", cwd=repo)
    assert code == 0, err
    assert [p.name for p in (repo / "out").rglob("*") if p.is_file()] == ["model.bin"]
    assert "skipped 2 data input(s)" in err
    assert "data/rows.csv" in err
    assert "folder" in err
    msg = one_line_error(*xp_main("get", run.id, "data/rows.csv", "-o", "o2", cwd=repo)[::2])
    assert "data input data/rows.csv" in msg
    assert "cache=True" in msg
    assert not (repo / "o2").exists()
