"""xp push / xp pull between two clones of one bare git remote, with a directory store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import xp
from tests.helpers import (
    Team,
    git,
    log_run,
    one_line_error,
    server_runs,
    spawned,
    wait_for,
    xp_main,
)
from xp.artifacts import cache
from xp.gitstore.repo import find_repo
from xp.sharing import push_pull
from xp.sharing.push_pull import push, upload_missing


def store_objects(store: Path) -> dict[str, os.stat_result]:
    return {p.name: p.stat() for p in (store / "sha256").rglob("*") if p.is_file()}


def test_two_clones_exchange_runs_and_20mb_artifact(team: Team) -> None:
    big = os.urandom(20 * 1024 * 1024)
    small = b"small artifact\n"
    ids = [
        log_run(team.a, {"model.bin": big, "notes/readme.txt": small}, name=f"r{i}")
        for i in range(2)
    ]
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "artifacts: 2 sent" in out  # identical content across runs is stored once
    assert "runs: 2 pushed to 'origin'" in out
    assert set(server_runs(team.bare)) == set(ids)  # listed in the catalog (format 2)
    assert "refs/xp/runs/" not in git(team.bare, "for-each-ref")
    code, out, err = xp_main("pull", cwd=team.b)
    assert code == 0, err
    assert "runs: 2 new" in out
    assert all(
        r.startswith("refs/xp/remotes/origin/catalog/")
        for r in git(team.b, "for-each-ref", "--format=%(refname)", "refs/xp/").split()
    )
    assert {r.id for r in xp.list_runs(team.b)} == set(ids)
    code, out, err = xp_main("get", ids[0], "-o", "restored", cwd=team.b)
    assert code == 0, err
    assert (team.b / "restored" / "model.bin").read_bytes() == big
    assert (team.b / "restored" / "notes" / "readme.txt").read_bytes() == small
    assert xp.get_run(ids[1], team.b).metrics == {"acc": 0.5}


def test_noop_push_sends_nothing(team: Team) -> None:
    log_run(team.a, {"m.bin": b"x" * 1000})
    repo = find_repo(team.a)
    first = push(repo)
    assert (first.upload.objects, len(first.pushed)) == (1, 1)
    again = push(repo)
    assert (again.upload.objects, again.upload.present, again.pushed) == (0, 1, [])
    assert again.up_to_date == 1


def test_pull_never_deletes_or_moves_local_runs(team: Team) -> None:
    a_run = log_run(team.a, {"a.bin": b"a"})
    assert xp_main("push", cwd=team.a)[0] == 0
    b_run = log_run(team.b, {"b.bin": b"b"})
    before = git(team.b, "rev-parse", f"refs/xp/runs/{b_run}")
    # Even an explicit prune of the tracking namespace leaves local runs alone.
    git(team.b, "fetch", "--prune", "origin", "+refs/xp/runs/*:refs/xp/remotes/origin/runs/*")
    code, _out, err = xp_main("pull", cwd=team.b)
    assert code == 0, err
    assert git(team.b, "rev-parse", f"refs/xp/runs/{b_run}") == before
    assert {r.id for r in xp.list_runs(team.b)} == {a_run, b_run}


def test_push_selected_runs_and_fetched_copies(team: Team, tmp_path: Path) -> None:
    r1 = log_run(team.a, {"1.bin": b"1"})
    r2 = log_run(team.a, {"2.bin": b"2"})
    code, _out, err = xp_main("push", "origin", r1, cwd=team.a)
    assert code == 0, err
    assert list(server_runs(team.bare)) == [r1]
    # b re-publishes a fetched run to another remote of its own.
    other = tmp_path / "other.git"
    git(tmp_path, "init", "-q", "--bare", str(other))
    git(team.b, "remote", "add", "mirror", str(other))
    assert xp_main("pull", cwd=team.b)[0] == 0
    code, _out, err = xp_main("push", "mirror", r1, cwd=team.b)
    assert code == 0, err
    assert list(server_runs(other)) == [r1]
    assert r2 not in server_runs(other)


def test_interrupted_push_resumes_without_resending(team: Team) -> None:
    """SIGKILL a push after some objects arrived; the rerun sends only the rest."""
    n = 240
    files = {f"f{i:03d}.bin": os.urandom(256 * 1024) for i in range(n)}
    log_run(team.a, files)
    # The push runs at the lowest priority so that this process, which watches it, is never
    # starved on a loaded machine into seeing it only after it finished.
    cmd = ["nice", "-n", "19", sys.executable, "-m", "xp", "push", "--jobs", "1"]
    with spawned(cmd, cwd=team.a, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        wait_for(
            lambda: (
                proc.poll() is not None
                or ((team.store / "sha256").is_dir() and len(store_objects(team.store)) >= 5)
            ),
            "5 objects to arrive",
            interval=0.002,
        )
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    arrived = store_objects(team.store)
    assert 5 <= len(arrived) < n, "the push finished before it could be interrupted"
    for sha in arrived:  # nothing partial under a final name
        assert cache.hash_file(team.store / "sha256" / sha[:2] / sha[2:4] / sha)[0] == sha
    assert "refs/xp/" not in git(team.bare, "for-each-ref")  # refs go only after objects

    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert f"artifacts: {n - len(arrived)} sent" in out
    assert f"{len(arrived)} already on 'store'" in out
    after = store_objects(team.store)
    assert len(after) == n
    for sha, st in arrived.items():  # the objects that had arrived were not written again
        assert (after[sha].st_ino, after[sha].st_mtime_ns) == (st.st_ino, st.st_mtime_ns)


def test_push_without_store_fails_clearly_when_runs_have_artifacts(
    repo: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    with xp.start_run():
        xp.log_metric("m", 1)
    code, _out, err = xp_main("push", cwd=repo)  # nothing to upload: no store needed
    assert code == 0, err
    log_run(repo, {"m.bin": b"1"})
    msg = one_line_error(*xp_main("push", cwd=repo)[::2])
    assert "no artifact remote is configured" in msg
    assert "xp remote add" in msg


def test_artifact_missing_everywhere_names_run_and_path(team: Team) -> None:
    run_id = log_run(team.a, {"lost.bin": b"gone soon"})
    sha = xp.get_run(run_id, team.a).artifacts[0].sha256
    obj = cache.object_path(team.a / ".git" / "xp" / "cache", sha)
    obj.unlink()
    code, _out, err = xp_main("push", cwd=team.a)
    msg = one_line_error(code, err)
    assert run_id in msg
    assert "lost.bin" in msg
    assert sha in msg
    assert "refs/xp/" not in git(team.bare, "for-each-ref")  # no ref without its objects


def test_upload_missing_takes_commits_as_a_hook_would(team: Team) -> None:
    run_id = log_run(team.a, {"h.bin": b"hook"})
    repo = find_repo(team.a)
    commit = git(team.a, "rev-parse", f"refs/xp/runs/{run_id}").strip()
    head = git(team.a, "rev-parse", "HEAD").strip()  # a branch commit without a record
    result = upload_missing(repo, commits=[commit, head])
    assert (result.store, result.objects, result.present) == ("store", 1, 0)
    assert upload_missing(repo, commits=[head]).store is None  # nothing to send: no store needed


def test_bad_git_remote_is_one_line(team: Team) -> None:
    msg = one_line_error(*xp_main("push", "nope", cwd=team.a)[::2])
    assert "no git remote 'nope'" in msg
    msg = one_line_error(*xp_main("pull", "nope", cwd=team.a)[::2])
    assert "origin" in msg
    git(team.a, "remote", "set-url", "origin", str(team.a.parent / "missing.git"))
    with xp.start_run():
        pass
    msg = one_line_error(*xp_main("push", cwd=team.a)[::2])
    assert "'origin' failed" in msg  # its ls-remote (format 2) or its push


def test_progress_bar_shows_bytes_rate_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    from xp.cli.progress import progress_bar

    with progress_bar("uploading", enabled=True) as bar:
        assert bar is not None
        bar(0, 2_000_000)
        bar(2_000_000, 2_000_000)
    err = capsys.readouterr().err
    assert "uploading" in err
    assert "2.0 MB/2.0 MB" in err
    assert "ETA 0:00" in err
    with progress_bar("quiet") as bar:  # not a terminal: no bar at all
        assert bar is None


def _published_runs_are_whole(team: Team) -> int:
    """Every run ref on the git remote has each of its artifacts in the store, whole;
    and no object in the store is partial under its final name. The number of runs."""
    import hashlib

    import yaml

    for path in (team.store / "sha256").rglob("*"):
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path
    refs = list(server_runs(team.bare).values())
    for ref in refs:
        entries = yaml.safe_load(git(team.bare, "show", f"{ref}:.xp/run/artifacts.yaml"))
        for entry in entries:
            sha = entry["sha256"]
            assert cache.object_path(team.store, sha).is_file(), (ref, entry["path"])
    return len(refs)


def test_a_fetch_killed_mid_update_leaves_no_lock_that_stops_the_next_push(team: Team) -> None:
    """A git fetch SIGKILLed while it updated the fetched catalog leaves `<bucket>.lock`; the
    next `xp push` removes it once it is clearly stale (never a live fetch's) and goes on."""
    from xp import format as fmt

    first = log_run(team.a, {"m.bin": b"1"}, name="first")
    code, _out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    bucket = fmt.bucket_of(first)
    tracking = fmt.catalog_prefix("origin") + bucket
    git(team.a, "update-ref", "-d", tracking)  # so the next push fetches this bucket again
    lock = team.a / ".git" / f"{tracking}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    os.utime(lock, (1, 1))  # long stale; a young one is waited for (STALE_LOCK_SECONDS)
    second = log_run(team.a, {"m.bin": b"2"}, name="second")
    code, _out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert not lock.exists()
    assert {first, second} <= set(server_runs(team.bare))
    assert git(team.a, "rev-parse", "-q", "--verify", tracking).strip()


def test_sigkill_during_xp_push_never_publishes_a_run_without_its_files(team: Team) -> None:
    """Kill `xp push` (and its git push) at random moments: a run the remote shows always
    has its artifacts in the store, and the next push finishes the job."""
    import random
    import subprocess
    import sys
    import time

    from tests.helpers import fsck, spawned

    trials = int(os.environ.get("XP_KILL_TRIALS", "6"))
    ids = [
        log_run(team.a, {"model.bin": os.urandom(3 << 20), "b.txt": os.urandom(64)}, name=f"r{i}")
        for i in range(4)
    ]
    cmd = [sys.executable, "-m", "xp", "push"]
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "xp", "push", "--help"], cwd=team.a, capture_output=True, check=True
    )
    startup = time.monotonic() - started  # a kill before this hits nothing of interest
    seen = []
    for n in range(trials):
        with spawned(cmd, cwd=team.a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as p:
            time.sleep(startup + random.uniform(0, 0.4))
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        seen.append(_published_runs_are_whole(team))
        fsck(team.bare)
        ids.append(log_run(team.a, {"model.bin": os.urandom(2 << 20)}, name=f"late{n}"))
    code, _out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert _published_runs_are_whole(team) == len(ids), seen


# -- the lean push (issue 18): runs packed beside the upload, bucket tips through one glob ----


@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch) -> None:
    """The packing and the glob refspec from the first run and bucket (a push of 1,000 runs
    uses both; these tests push a few)."""
    from xp.gitstore import remote

    monkeypatch.setattr(remote, "PACK_FROM", 1)
    monkeypatch.setattr(remote, "GLOB_FROM", 1)


def _staged(repo: Path) -> str:
    return git(repo, "for-each-ref", "refs/xp/pushing/")


def test_a_push_packs_its_runs_beside_the_upload_and_stages_nothing_after(
    team: Team, lean: None
) -> None:
    ids = [log_run(team.a, {f"{i}.bin": bytes([i]) * 100}) for i in range(4)]
    tips = {i: git(team.a, "rev-parse", f"refs/xp/runs/{i}").strip() for i in ids}
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "runs: 4 pushed" in out
    assert server_runs(team.bare) == tips
    assert _staged(team.a) == ""
    assert not (team.a / ".git" / "refs" / "xp" / "pushing").exists()
    # the runs' commits are in a pack of the clone now (their loose copies stay until gc)
    packed = git(
        team.a, "verify-pack", "-v", *map(str, (team.a / ".git/objects/pack").glob("*.idx"))
    )
    assert all(sha in packed for sha in tips.values())
    assert len(store_objects(team.store)) == 4
    # b sees every run and every artifact byte
    assert xp_main("pull", "--artifacts", cwd=team.b)[0] == 0


def test_a_failed_upload_moves_no_ref_and_stops_the_packing(
    team: Team, lean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xp.gitstore import remote

    log_run(team.a, {"model.bin": b"weights" * 1000})
    started: list[remote.Packing] = []
    real = remote.start_packing

    def watched(*args: object, **kw: object) -> remote.Packing | None:
        packing = real(*args, **kw)  # type: ignore[arg-type]
        if packing is not None:
            started.append(packing)
        return packing

    monkeypatch.setattr(remote, "start_packing", watched)
    team.store.write_text("a file where the store's folder should be\n")  # every upload fails
    code, _out, err = xp_main("push", cwd=team.a)
    assert "upload" in one_line_error(code, err)
    assert server_runs(team.bare) == {}  # no ref without its artifact
    assert git(team.bare, "for-each-ref", "refs/xp/") == ""
    assert started
    assert all(p.proc.returncode is not None for p in started)  # stopped and reaped
    team.store.unlink()
    code, out, err = xp_main("push", cwd=team.a)  # the store is a folder again
    assert code == 0, err
    assert "runs: 1 pushed" in out


_KILLED_PUSH = """
import sys
import xp.gitstore.remote as remote
remote.PACK_FROM = remote.GLOB_FROM = 1
from xp.cli import main
sys.exit(main(["push"]))
"""


def test_a_push_killed_before_its_refs_land_leaves_the_remote_consistent(
    team: Team,
) -> None:
    """SIGKILL while the remote's pre-receive hook holds the push (artifacts uploaded, runs
    packed and staged, no ref moved): the remote lists nothing, the next push clears the
    dead push's staged refs and lands every run with its files."""
    ids = [log_run(team.a, {f"{i}.bin": bytes([i]) * 50}) for i in range(3)]
    marker = team.bare.parent / "held"
    hook = team.bare / "hooks" / "pre-receive"
    hook.write_text(f'#!/bin/sh\ncat >/dev/null\ntouch "{marker}"\nsleep 60\nexit 1\n')
    hook.chmod(0o755)
    with spawned(
        [sys.executable, "-c", _KILLED_PUSH],
        cwd=team.a,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        wait_for(marker.exists, "the push to reach the server's pre-receive hook")
        assert _staged(team.a) != ""  # the push is under way: its tips are staged
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    hook.unlink()
    assert git(team.bare, "for-each-ref", "refs/xp/") == ""
    assert len(store_objects(team.store)) == 3  # uploaded first: harmless without refs
    for token in (team.a / ".git" / "refs" / "xp" / "pushing").iterdir():
        os.utime(token, (time.time() - 3700,) * 2)  # an hour later: cleared as dead
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "runs: 3 pushed" in out
    assert set(server_runs(team.bare)) == set(ids)
    assert _staged(team.a) == ""  # the dead push's staged refs are gone too


# -- the overlapped push (issue 18): buckets built while the artifacts upload ---------------


def _uploads_watched(monkeypatch: pytest.MonkeyPatch, during: object) -> list[str]:
    """Wrap the store's upload: ``during(sha)`` runs before each object is sent; the objects
    started, in order."""
    from xp.artifacts.artifact_store import ArtifactStore

    seen: list[str] = []
    real = ArtifactStore.upload

    def upload(self: ArtifactStore, src: Path, sha: str, on_bytes: object = None) -> int:
        during(sha)  # type: ignore[operator]
        seen.append(sha)
        return real(self, src, sha, on_bytes)  # type: ignore[arg-type]

    monkeypatch.setattr(ArtifactStore, "upload", upload)
    return seen


def test_the_buckets_are_built_while_the_artifacts_upload_and_pushed_after(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upload waits (up to 30 s) for the first bucket commit to be written: a push that
    built its buckets only after the upload would fail here. No ref reaches the remote
    before the last object has."""
    import threading

    from xp.gitstore import catalog as git_catalog

    ids = [log_run(team.a, {f"{i}.bin": bytes([i]) * 300}) for i in range(6)]
    built = threading.Event()
    real_write = git_catalog.write_bucket

    def write_bucket(*args: object, **kw: object) -> str:
        tip = real_write(*args, **kw)  # type: ignore[arg-type]
        built.set()
        return tip

    monkeypatch.setattr(git_catalog, "write_bucket", write_bucket)
    remote_refs: list[str] = []

    def during(_sha: str) -> None:
        assert built.wait(30), "the buckets were not built during the upload"
        remote_refs.append(git(team.bare, "for-each-ref", "refs/xp/"))

    _uploads_watched(monkeypatch, during)
    result = push(find_repo(team.a))
    assert result.upload.objects == 6
    assert sorted(result.pushed) == sorted(ids)
    assert remote_refs == [""] * 6  # every object went up before any ref moved
    assert set(server_runs(team.bare)) == set(ids)
    assert len(store_objects(team.store)) == 6


def test_a_push_failing_while_it_builds_stops_the_upload_and_moves_no_ref(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building the buckets fails while the upload runs: no more objects start, no ref
    moves, nothing is remembered as sent, and the next push sends the rest."""
    from xp.errors import StorageError
    from xp.sharing import catalog

    n = 30
    ids = [log_run(team.a, {f"{i}.bin": os.urandom(100)}) for i in range(n)]

    def summaries(*_args: object, **_kw: object) -> object:
        raise StorageError("disk full while writing the buckets; free disk space")

    real_summaries = catalog._summaries
    monkeypatch.setattr(catalog, "_summaries", summaries)
    seen = _uploads_watched(monkeypatch, lambda _sha: time.sleep(0.05))
    with pytest.raises(StorageError, match="disk full"):
        push(find_repo(team.a), jobs=1)
    arrived = len(store_objects(team.store)) if (team.store / "sha256").is_dir() else 0
    assert arrived == len(seen) < n, "the upload ran on after the push failed"
    assert git(team.bare, "for-each-ref", "refs/xp/") == ""
    monkeypatch.setattr(catalog, "_summaries", real_summaries)
    result = push(find_repo(team.a))
    assert (result.upload.objects, result.upload.present) == (n - arrived, arrived)
    assert set(server_runs(team.bare)) == set(ids)
    assert len(store_objects(team.store)) == n


def test_a_folder_store_is_flushed_once_after_its_last_object_and_before_any_ref(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder store's files are not fsynced one by one: one ``syncfs`` of its file
    system after the upload makes them durable before `git push` moves a ref (a crash can
    then lose refs, never leave one naming a lost file). A push sending nothing flushes
    nothing."""
    from xp import fsutil

    calls: list[tuple[Path, int, str]] = []
    real = fsutil.sync_filesystem

    def sync(folder: Path) -> None:
        real(folder)
        calls.append(
            (folder, len(store_objects(team.store)), git(team.bare, "for-each-ref", "refs/xp/"))
        )

    monkeypatch.setattr(fsutil, "sync_filesystem", sync)
    monkeypatch.setattr(push_pull, "FSYNC_EACH", 2)  # more than that: one syncfs
    ids = [log_run(team.a, {f"{i}.bin": bytes([i]) * 64}) for i in range(3)]
    code, _out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert calls == [(team.store, 3, "")]
    assert set(server_runs(team.bare)) == set(ids)
    assert xp_main("push", cwd=team.a)[0] == 0
    assert len(calls) == 1


def test_a_push_of_a_few_objects_fsyncs_each_file_and_folder_not_the_disk(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hook's push of a run or two: each file fsynced before its rename, then the folders
    naming them (and the fan-out folders made for them), before any ref moves; no syncfs,
    which would wait for everything else the disk has to write."""
    from xp import fsutil

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))

    def no_syncfs(folder: Path) -> None:
        raise AssertionError("syncfs for a push of one object")

    monkeypatch.setattr(fsutil, "sync_filesystem", no_syncfs)
    monkeypatch.setattr(os, "fsync", fsync)
    log_run(team.a, {"one.bin": b"one object"})
    code, _out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    [obj] = store_objects(team.store)
    final = team.store / "sha256" / obj[:2] / obj[2:4]
    folders = [str(final), str(final.parent), str(final.parent.parent), str(team.store)]
    stored = [p for p in synced if p.startswith(str(team.store))]
    assert any("/tmp/" in p for p in stored[:1])  # the file, before its rename
    assert stored[1:] == folders  # deepest first: each new name is durable before its parent
