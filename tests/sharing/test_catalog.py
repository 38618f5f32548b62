"""The run catalog (format 2): runs published in 256 bucket refs on a git remote.

Real bare remotes and a real `git daemon`; races are real concurrent pushes (one of them
started by the server's own pre-receive hook, so the race happens every time).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import xp
from tests.helpers import Team, assert_summaries_whole, fsck, git, log_run, server_runs, xp_main
from tests.sharing.test_e2e import daemon  # noqa: F401 - the git daemon fixture
from xp.format import bucket_of
from xp.gitstore import catalog
from xp.gitstore.repo import find_repo
from xp.sharing.catalog import migrate_remote, publish


def _id_in(bucket: str, stem: str) -> str:
    """A run id (any plain name may stand for a run) that falls in ``bucket``."""
    n = 0
    while bucket_of(f"{stem}{n}") != bucket:
        n += 1
    return f"{stem}{n}"


def _head(path: Path, ref: str) -> str:
    return git(path, "rev-parse", ref).strip()


def test_push_lists_runs_in_buckets_of_gitlinks_and_server_gc_keeps_them(team: Team) -> None:
    ids = [log_run(team.a, {f"{i}.bin": bytes([i])}) for i in range(3)]
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "runs: 3 pushed" in out
    refs = git(team.bare, "for-each-ref", "--format=%(refname)", "refs/xp/").split()
    assert refs == sorted({f"refs/xp/catalog/{bucket_of(i)}" for i in ids})
    tips = server_runs(team.bare)
    assert tips == {i: _head(team.a, f"refs/xp/runs/{i}") for i in ids}
    for ref in refs:  # each bucket commit has the run tips it added as parents
        parents = git(team.bare, "rev-list", "--parents", "-n1", ref).split()[1:]
        listed = git(team.bare, "ls-tree", ref).split()
        assert set(parents) <= set(listed[2::4])
    git(team.bare, "gc", "-q", "--prune=now")
    for sha in tips.values():  # every run still whole on the server after gc
        assert git(team.bare, "cat-file", "-t", sha).strip() == "commit"
        git(team.bare, "ls-tree", "-r", sha)
    fsck(team.bare)
    # b: plain git fetch with xp's refspecs, then show/get/resolve find the catalog runs
    assert xp_main("init", cwd=team.b)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    assert {r.id for r in xp.list_runs(team.b)} == set(ids)
    code, out, err = xp_main("diff", ids[0], ids[1], cwd=team.b)  # resolves by id
    assert code == 0, err
    copy = f"refs/xp/remotes/origin/runs/{ids[0]}"  # the name a catalog run goes by
    code, out, err = xp_main("diff", copy, ids[1], cwd=team.b)
    assert code == 0, err
    assert xp.get_run(ids[2], team.b).metrics == {"acc": 0.5}
    # a bundle names a catalog run by the copy ref it stands for, made only while it bundles
    bundle = team.b.parent / "runs.tar"
    code, _out, err = xp_main("bundle", "create", str(bundle), ids[0], cwd=team.b)
    assert code == 0, err
    assert "refs/xp/remotes/origin/runs/" not in git(team.b, "for-each-ref")
    code, _out, err = xp_main("bundle", "import", str(bundle), cwd=team.a)
    assert code == 0, err


def test_again_and_moved_runs_and_a_non_fast_forward_is_refused(team: Team) -> None:
    run_id = log_run(team.a, {"a.bin": b"a"})
    repo = find_repo(team.a)
    first = publish(repo, remote="origin", runs={run_id: _head(team.a, f"refs/xp/runs/{run_id}")})
    assert (first.pushed, first.up_to_date) == ([run_id], 0)
    again = publish(repo, remote="origin", runs={run_id: _head(team.a, f"refs/xp/runs/{run_id}")})
    assert (again.pushed, again.up_to_date, again.tries) == ([], 1, 1)
    # the run moves forward (a commit on top of it): the catalog follows
    tip = _head(team.a, f"refs/xp/runs/{run_id}")
    newer = git(team.a, "commit-tree", f"{tip}^{{tree}}", "-p", tip, "-m", "moved").strip()
    moved = publish(repo, remote="origin", runs={run_id: newer})
    assert moved.pushed == [run_id]
    assert server_runs(team.bare)[run_id] == newer
    # an unrelated commit under the same id is refused, the rest of the push goes
    other = git(team.a, "commit-tree", f"{tip}^{{tree}}", "-m", "unrelated").strip()
    second = log_run(team.a, {"b.bin": b"b"})
    mixed = publish(
        repo,
        remote="origin",
        runs={run_id: other, second: _head(team.a, f"refs/xp/runs/{second}")},
    )
    assert mixed.pushed == [second]
    assert mixed.rejected
    assert "non-fast-forward" in mixed.rejected[0][1]
    assert server_runs(team.bare) == {
        run_id: newer,
        second: _head(team.a, f"refs/xp/runs/{second}"),
    }


_RACER = """
import sys
from xp.gitstore.repo import find_repo
from xp.sharing.catalog import migrate_remote, publish
repo = find_repo(sys.argv[1])
done = publish(repo, remote="origin", runs={{sys.argv[2]: sys.argv[3]}})
assert done.pushed == [sys.argv[2]], done
"""


@pytest.mark.parametrize("glob", [False, True], ids=["refspec-per-bucket", "staged-glob"])
def test_a_racing_writer_in_the_same_bucket_is_retried_and_both_land(
    team: Team, glob: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's pre-receive hook pushes b's run into the same bucket while a's push waits
    for it: a's push is stale when it lands, xp reads the bucket again and pushes again.
    Leased alike whether the bucket tip goes as its own refspec or through the staged glob
    a push of many buckets uses (``gitstore.remote.GLOB_FROM``)."""
    if glob:
        from xp.gitstore import remote

        monkeypatch.setattr(remote, "GLOB_FROM", 1)
    mine = log_run(team.a, {"a.bin": b"a"})
    theirs = log_run(team.b, {"b.bin": b"b"})
    racer_id = _id_in(bucket_of(mine), "racer")
    assert xp_main("push", "origin", theirs, cwd=team.b)[0] == 0  # b's run objects are there
    script = team.bare.parent / "racer.py"
    script.write_text(textwrap.dedent(_RACER.format()))
    marker = team.bare.parent / "raced"
    hook = team.bare / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\ncat >/dev/null\n"
        f'[ -e "{marker}" ] && exit 0\ntouch "{marker}"\n'
        "unset GIT_DIR GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n"
        f'exec "{sys.executable}" "{script}" "{team.b}" {racer_id}'
        f" {_head(team.b, f'refs/xp/runs/{theirs}')} >/dev/null\n"
    )
    hook.chmod(0o755)
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "runs: 1 pushed" in out
    assert marker.exists()
    listed = server_runs(team.bare)
    assert listed[mine] == _head(team.a, f"refs/xp/runs/{mine}")
    assert listed[racer_id] == _head(team.b, f"refs/xp/runs/{theirs}")
    assert theirs in listed
    # a's bucket commit was rebuilt on top of the racer's: both are in its first-parent line
    bucket = f"refs/xp/catalog/{bucket_of(mine)}"
    subjects = git(team.bare, "log", "--first-parent", "--format=%s", bucket).splitlines()
    assert [s for s in subjects if s.startswith("xp catalog")] == [
        f"xp catalog {bucket[-2:]}: +1 runs"
    ] * 2
    assert_summaries_whole(team.bare)  # the rebuilt bucket's summary lists both runs


_WRITER = """
import sys
from xp.gitstore.repo import find_repo
from xp.sharing.catalog import migrate_remote, publish
repo = find_repo(sys.argv[1])
runs = dict(zip(sys.argv[2::2], sys.argv[3::2]))
done = publish(repo, remote="origin", runs=runs)
print(done.tries)
"""


def test_six_writers_into_one_bucket_at_once_all_land(tmp_path: Path, daemon: str) -> None:  # noqa: F811
    clones = []
    for n in range(6):
        clone = tmp_path / f"w{n}"
        git(tmp_path, "clone", "-q", daemon, clone.name)
        (clone / "f.txt").write_text(f"{n}\n")
        git(clone, "add", "f.txt")
        git(clone, "-c", "user.name=w", "-c", "user.email=w@x", "commit", "-qm", f"w{n}")
        clones.append(clone)
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    want: dict[str, str] = {}
    procs = []
    for n, clone in enumerate(clones):
        ids = [_id_in("00", f"w{n}x"), _id_in("00", f"w{n}y")]
        sha = _head(clone, "HEAD")
        want.update(dict.fromkeys(ids, sha))
        args = [a for i in ids for a in (i, sha)]
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(clone), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    tries = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        tries.append(int(out.strip()))
    assert server_runs(daemon) == want
    assert max(tries) >= 1


def test_a_format_1_remote_is_migrated_at_the_first_push(team: Team) -> None:
    old = [log_run(team.a, {f"{i}.bin": bytes([i])}) for i in range(3)]
    git(team.a, "push", "-q", "--no-verify", "origin", "refs/xp/runs/*:refs/xp/runs/*")
    assert len(git(team.bare, "for-each-ref", "refs/xp/runs/").splitlines()) == 3
    # b, an older clone, has the per-run copies fetched the format-1 way
    git(team.b, "fetch", "-q", "origin", "+refs/xp/runs/*:refs/xp/remotes/origin/runs/*")
    new = log_run(team.a, {"new.bin": b"n"})
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "runs: 1 pushed" in out
    assert "3 runs moved from per-run refs into the catalog" in out
    assert git(team.bare, "for-each-ref", "refs/xp/runs/") == ""
    assert set(server_runs(team.bare)) == {*old, new}
    assert_summaries_whole(team.bare)  # migrated runs are summarised from their records
    # b: its stale per-run copies and the catalog agree; it sees all four
    assert xp_main("pull", cwd=team.b)[0] == 0
    assert {r.id for r in xp.list_runs(team.b)} == {*old, new}
    fsck(team.bare)


def test_a_format_1_project_keeps_per_run_refs(team: Team) -> None:
    cfg = team.a / ".xp" / "config.yaml"
    cfg.write_text("format: 1\n" + cfg.read_text())
    assert "format: 1" in cfg.read_text()
    run_id = log_run(team.a, {"a.bin": b"a"})
    assert xp_main("push", cwd=team.a)[0] == 0
    refs = git(team.bare, "for-each-ref", "--format=%(refname)", "refs/xp/").split()
    assert refs == [f"refs/xp/runs/{run_id}"]


def test_old_and_new_layout_mixed_on_one_remote(team: Team) -> None:
    listed = log_run(team.a, {"a.bin": b"a"})
    assert xp_main("push", cwd=team.a)[0] == 0
    # an older xp pushed a per-run ref after the migration
    late = log_run(team.a, {"b.bin": b"b"})
    git(team.a, "push", "-q", "--no-verify", "origin", f"refs/xp/runs/{late}")
    assert xp_main("pull", cwd=team.b)[0] == 0
    assert {r.id for r in xp.list_runs(team.b)} == {listed, late}
    code, _out, err = xp_main("diff", listed, late, cwd=team.b)
    assert code == 0, err
    # the next push from a new xp folds it in
    assert xp_main("push", cwd=team.a)[0] == 0
    assert git(team.bare, "for-each-ref", "refs/xp/runs/") == ""
    assert set(server_runs(team.bare)) == {listed, late}


def _hostile_bucket(
    team: Team, bucket: str, entries: list[tuple[str, str, str]], parent: str
) -> str:
    """A bucket commit on the server listing ``entries`` (mode, sha, name) as given."""
    lines = "".join(
        f"{mode} {'commit' if mode == '160000' else 'blob'} {sha}\t{name}\n"
        for mode, sha, name in entries
    )
    tree = git(team.bare, "mktree", "--missing", input_text=lines).strip()
    commit = git(team.bare, "commit-tree", tree, "-p", parent, "-m", "hostile").strip()
    git(team.bare, "update-ref", f"refs/xp/catalog/{bucket}", commit)
    return commit


def test_hostile_bucket_contents_are_skipped_with_a_warning(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = log_run(team.a, {"a.bin": b"a"})
    assert xp_main("push", cwd=team.a)[0] == 0
    tip = server_runs(team.bare)[good]
    blob = git(team.bare, "hash-object", "-w", "--stdin", input_text="x").strip()
    bucket = bucket_of(good)
    wrong = _id_in("ff" if bucket != "ff" else "fe", "wrong")
    _hostile_bucket(
        team,
        bucket,
        [
            ("160000", tip, good),
            ("100644", blob, _id_in(bucket, "blob")),  # not a gitlink
            ("160000", tip, "..evil"),  # not a run id
            ("160000", tip, wrong),  # in the wrong bucket
            ("160000", "1" * 40, _id_in(bucket, "gone")),  # a commit nobody has
        ],
        tip,
    )
    code, _out, err = xp_main("pull", cwd=team.b)
    assert code == 0, err
    assert "skipped" in err
    assert "Traceback" not in err
    assert {r.id for r in xp.list_runs(team.b)} == {good}
    code, _out, err = xp_main("show", cwd=team.b)
    assert code == 0, err
    # a bucket tree too big to be one xp wrote is not read at all
    monkeypatch.setattr(catalog, "MAX_TREE_BYTES", 10)
    assert catalog.remote_runs(find_repo(team.b)) == {}
    names = set(os.listdir(team.b / ".git"))
    assert "..evil" not in names


def test_rm_remote_drops_the_entry_and_the_run_leaves_the_server(team: Team) -> None:
    keep = log_run(team.a, {"k.bin": b"k"})
    drop = log_run(team.a, {"d.bin": b"d"})
    assert xp_main("push", cwd=team.a)[0] == 0
    dropped = server_runs(team.bare)[drop]
    code, out, err = xp_main("rm", drop, "--remote", "origin", cwd=team.a)
    assert code == 0, err
    assert "1 deleted on 'origin'" in out
    assert list(server_runs(team.bare)) == [keep]
    assert drop not in {r.id for r in xp.list_runs(team.a)}
    git(team.bare, "reflog", "expire", "--expire=now", "--all")
    git(team.bare, "gc", "-q", "--prune=now")
    gone = subprocess.run(["git", "cat-file", "-e", dropped], cwd=team.bare, capture_output=True)
    assert gone.returncode != 0  # a removal is a new root: nothing keeps the run alive
    fsck(team.bare)


def _old_runs(clone: Path, bucket: str, n: int, days_ago: int) -> dict[str, str]:
    """``n`` run commits in ``bucket`` made ``days_ago`` days ago (one minute apart, written
    out of order), under refs/xp/runs/<id> in ``clone``: run id -> tip."""
    import time

    head = _head(clone, "HEAD")
    tree = _head(clone, "HEAD^{tree}")
    start = int(time.time()) - days_ago * 86400
    out: dict[str, str] = {}
    for k in reversed(range(n)):
        run_id = _id_in(bucket, f"old{days_ago}x{k}x")
        env = {**os.environ, "GIT_COMMITTER_DATE": f"@{start + 60 * k} +0000"}
        proc = subprocess.run(
            ["git", "commit-tree", tree, "-p", head, "-m", f"xp: {run_id}"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        out[run_id] = proc.stdout.strip()
        git(clone, "update-ref", f"refs/xp/runs/{run_id}", out[run_id])
    return out


def _bucket_history(bare: Path, ref: str) -> list[tuple[str, list[str], int, int]]:
    """(commit, parents, author date, committer date) of every catalog commit behind ``ref``
    (the bucket chain, not the runs it keeps)."""
    fmt_ = "%H%x09%P%x09%at%x09%ct%x09%s"
    out = []
    for line in git(bare, "log", f"--format={fmt_}", ref).splitlines():
        sha, parents, at, ct, subject = line.split("\t")
        if subject.startswith("xp catalog"):
            out.append((sha, parents.split(), int(at), int(ct)))
    return out


def _assert_cheap_to_walk(bare: Path, ref: str) -> list[tuple[str, list[str], int, int]]:
    """docs/format.md: no bucket commit has more than 16 parents, and each is committed at
    least one second after every parent."""
    history = _bucket_history(bare, ref)
    dates = dict(line.split() for line in git(bare, "log", "--all", "--format=%H %ct").splitlines())
    for sha, parents, _at, ct in history:
        assert len(parents) <= catalog.MAX_PARENTS, sha
        assert all(ct >= int(dates[p]) + 1 for p in parents), sha
    return history


def test_a_publish_of_weeks_old_runs_chains_few_parent_commits_dated_after_them(
    team: Team,
) -> None:
    import time

    fresh = log_run(team.a, {"a.bin": b"a"})
    assert xp_main("push", cwd=team.a)[0] == 0
    bucket = bucket_of(fresh)
    ref = f"refs/xp/catalog/{bucket}"
    before = _head(team.bare, ref)
    old = _old_runs(team.a, bucket, 20, days_ago=30)  # a colleague's runs from last month
    published = publish(find_repo(team.a), remote="origin", runs=old)
    assert sorted(published.pushed) == sorted(old)
    assert server_runs(team.bare) == {**old, fresh: server_runs(team.bare)[fresh]}
    history = _assert_cheap_to_walk(team.bare, ref)
    _tip, parents, author, committed = history[0]
    assert len(history) == 3  # the first push, one link (15 runs), the tip (its base + 5)
    assert history[1][0] in parents
    assert history[2][0] == before
    assert abs(author - time.time()) < 120  # git log shows when it was published
    before_ct = history[2][3]
    assert committed > history[1][3] > before_ct  # monotonic along the chain
    # the tip lists every run; the link changes no entry (it only carries parents)
    assert git(team.bare, "rev-parse", f"{history[1][0]}^{{tree}}").strip() == (
        git(team.bare, "rev-parse", f"{before}^{{tree}}").strip()
    )
    git(team.bare, "gc", "-q", "--prune=now")
    for sha in old.values():
        assert git(team.bare, "cat-file", "-t", sha).strip() == "commit"
    fsck(team.bare)
    assert xp_main("pull", cwd=team.b)[0] == 0
    assert {r.id for r in xp.list_runs(team.b)} == {fresh, *old}


def test_a_migration_and_a_removal_keep_bucket_commits_narrow_and_every_run_reachable(
    team: Team,
) -> None:
    old = _old_runs(team.a, "3f", 40, days_ago=90)
    old.update(_old_runs(team.a, "40", 3, days_ago=60))
    git(team.a, "push", "-q", "--no-verify", "origin", "refs/xp/runs/*:refs/xp/runs/*")
    result = migrate_remote(find_repo(team.b), remote="origin")
    assert result.migrated == 43
    assert git(team.bare, "for-each-ref", "refs/xp/runs/") == ""
    assert server_runs(team.bare) == old
    big = _assert_cheap_to_walk(team.bare, "refs/xp/catalog/3f")
    assert len(big) == 3  # 40 runs: 16 + 15 + 9 parents
    small = _assert_cheap_to_walk(team.bare, "refs/xp/catalog/40")
    assert len(small) == 1
    assert len(small[0][1]) == 3
    newest = max(
        int(git(team.bare, "log", "-1", "--format=%ct", s))
        for i, s in old.items()
        if bucket_of(i) == "3f"
    )
    assert big[0][3] == newest + 1  # dated just after its newest run, not now
    fsck(team.bare)
    # removal: a new root chain, the removed run unreachable, the others kept
    gone = sorted(i for i in old if bucket_of(i) == "3f")[0]
    removed = publish(find_repo(team.b), remote="origin", remove=[gone])
    assert removed.removed == [gone]
    after = _assert_cheap_to_walk(team.bare, "refs/xp/catalog/3f")
    assert len(after) == 3  # 39 runs: 16 + 15 + 8 parents, from no parent bucket commit
    assert after[-1][1][:1] != [big[0][0]]
    assert all(sha not in {c for c, *_ in after} for sha, *_ in big)  # a new root
    git(team.bare, "reflog", "expire", "--expire=now", "--all")
    git(team.bare, "gc", "-q", "--prune=now")
    assert server_runs(team.bare) == {i: s for i, s in old.items() if i != gone}
    reachable = set(git(team.bare, "rev-list", "--all").split())
    assert old[gone] not in reachable
    assert {s for i, s in old.items() if i != gone} <= reachable
    fsck(team.bare)


def test_a_push_into_many_buckets_reads_them_in_a_few_git_processes(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summaries and commit dates of every bucket a push writes are read in one round
    each, not one per bucket (1,000 runs spawned ~1,000 `git cat-file` processes); what it
    writes is the same: each bucket's summary describes exactly its runs."""
    ids = [log_run(team.a, {f"{i}.bin": bytes([i])}) for i in range(12)]
    assert len({bucket_of(i) for i in ids}) >= 8
    trace = tmp_path / "trace"
    monkeypatch.setenv("GIT_TRACE2_EVENT", str(trace))
    code, out, err = xp_main("push", cwd=team.a)
    monkeypatch.delenv("GIT_TRACE2_EVENT")
    assert code == 0, err
    assert "runs: 12 pushed" in out
    started = [line for line in trace.read_text().splitlines() if '"event":"start"' in line]
    cat_files = [line for line in started if "cat-file" in line]
    assert len(cat_files) <= 8, len(cat_files)
    assert server_runs(team.bare) == {i: _head(team.a, f"refs/xp/runs/{i}") for i in ids}
    assert_summaries_whole(team.bare)
    fsck(team.bare)
