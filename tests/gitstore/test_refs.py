"""Refs: compare-and-swap updates, loose or packed; reading packed-refs by binary search
gives what git says; packing xp's refs keeps every ref and resurrects none."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import git, log_run
from xp.gitstore.refs import (
    PackedRefs,
    RefChangedError,
    delete_ref,
    find_run,
    list_refs,
    pack_refs,
    packed_stamp,
    read_ref,
    scan_folder,
)
from xp.gitstore.repo import find_repo


def test_delete_ref_is_compare_and_swap(repo: Path) -> None:
    r1 = log_run(repo, {"1.bin": b"1"})
    common = repo / ".git"
    name = f"refs/xp/runs/{r1}"
    sha = read_ref(common, name)
    assert sha is not None
    head = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(RefChangedError):
        delete_ref(common, name, head)
    assert read_ref(common, name) == sha
    git(repo, "pack-refs", "--all")
    with pytest.raises(RefChangedError):
        delete_ref(common, name, head)
    delete_ref(common, name, sha)
    assert read_ref(common, name) is None
    assert git(repo, "rev-parse", "--verify", "-q", "refs/heads/main").strip() == head
    assert not list(common.glob("**/*.lock"))


def git_refs(repo: Path, prefix: str = "refs/") -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(objectname) %(refname)", prefix)
    return {name: sha for sha, name in (line.split(" ", 1) for line in out.splitlines())}


segment = st.text(alphabet="abcxyz019-_.", min_size=1, max_size=6).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s
)
ref_names = st.lists(segment, min_size=1, max_size=3).map(lambda parts: "/".join(parts))


@settings(
    max_examples=15,
    deadline=None,  # no timing in the suite
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    names=st.sets(ref_names, min_size=1, max_size=40),
    probes=st.lists(ref_names, max_size=10),
)
def test_binary_search_of_packed_refs_agrees_with_git(
    repo: Path, names: set[str], probes: list[str]
) -> None:
    """Refs under several prefixes, some annotated tags (peeled lines), all packed by git."""
    head = git(repo, "rev-parse", "HEAD").strip()
    for ref in [*git_refs(repo, "refs/t/"), *git_refs(repo, "refs/tags/t/")]:
        git(repo, "update-ref", "-d", ref)  # what the previous example made
    created = set()
    for i, name in enumerate(sorted(names)):
        top = ("refs/tags/t", "refs/t/x", "refs/t/xp/runs")[i % 3]
        ref = f"{top}/{name}"
        if any(c.startswith(ref + "/") or ref.startswith(c + "/") for c in created):
            continue  # a ref cannot be both a file and a folder
        if top == "refs/tags/t" and i % 2:
            git(repo, "tag", "-a", "-m", "m", ref.removeprefix("refs/tags/"), head)
        else:
            git(repo, "update-ref", ref, head)
        created.add(ref)
    git(repo, "pack-refs", "--all")
    truth = git_refs(repo)
    common = repo / ".git"
    with PackedRefs(common) as packed:
        assert packed.sorted
        for ref, sha in truth.items():
            assert packed.get(ref) == sha, ref
        for probe in probes:
            for top in ("refs/t/x/", "refs/tags/", "refs/"):
                assert packed.get(top + probe) == truth.get(top + probe)
        for prefix in ("refs/", "refs/t/", "refs/t/x/", "refs/tags/", "refs/t/xp/", "refs/zz/"):
            assert packed.under(prefix) == {k: v for k, v in truth.items() if k.startswith(prefix)}
    assert list_refs(common, "refs/tags/") == git_refs(repo, "refs/tags/")


def test_an_unsorted_packed_refs_is_read_line_by_line(repo: Path) -> None:
    """git before 1.8 wrote no `sorted` trait: no binary search then."""
    head = git(repo, "rev-parse", "HEAD").strip()
    lines = [f"{head} refs/xp/runs/{name}\n" for name in ("zz", "aa", "mm")]
    (repo / ".git" / "packed-refs").write_text("# pack-refs with: peeled \n" + "".join(lines))
    with PackedRefs(repo / ".git") as packed:
        assert not packed.sorted
        assert packed.get("refs/xp/runs/aa") == head
        assert packed.get("refs/xp/runs/bb") is None
        assert sorted(packed.under("refs/xp/runs/")) == [
            "refs/xp/runs/aa",
            "refs/xp/runs/mm",
            "refs/xp/runs/zz",
        ]
    assert read_ref(repo / ".git", "refs/xp/runs/zz") == head


def test_find_run_sees_local_and_fetched_copies_loose_or_packed(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "update-ref", "refs/xp/runs/0000000000000a", head)
    git(repo, "update-ref", "refs/xp/remotes/origin/runs/0000000000000a", head)
    git(repo, "update-ref", "refs/xp/remotes/team/b/runs/0000000000000a", head)  # a/b remote
    git(repo, "update-ref", "refs/xp/remotes/origin/runs/0000000000000b", head)
    common = repo / ".git"
    want = {
        "refs/xp/runs/0000000000000a": head,
        "refs/xp/remotes/origin/runs/0000000000000a": head,
        "refs/xp/remotes/team/b/runs/0000000000000a": head,
    }
    assert find_run(common, "0000000000000a") == want
    git(repo, "pack-refs", "--all")
    assert find_run(common, "0000000000000a") == want
    git(repo, "update-ref", "refs/xp/remotes/zeta/runs/0000000000000a", head)  # mixed
    assert find_run(common, "0000000000000a") == {
        **want,
        "refs/xp/remotes/zeta/runs/0000000000000a": head,
    }
    for bad in ("", ".", "..", "a/b", "a\0b"):
        assert find_run(common, bad) == {}


def test_scan_folder_reads_only_what_changed(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "update-ref", "refs/xp/runs/0000000000000a", head)
    common = repo / ".git"
    first = scan_folder(common, "refs/xp/runs", {})
    assert {k: v[1] for k, v in first.refs.items()} == {"refs/xp/runs/0000000000000a": head}
    assert first.racy  # just written: its stamp cannot be trusted yet
    fake = {"refs/xp/runs/0000000000000a": (first.refs["refs/xp/runs/0000000000000a"][0], "x")}
    again = scan_folder(common, "refs/xp/runs", fake)
    assert again.refs == fake  # same file (inode, mtime, size): not read again
    assert scan_folder(common, "refs/xp/nothing", {}).stamp is None


def test_a_first_look_and_a_later_one_read_a_folder_alike(repo: Path) -> None:
    """The first look at a folder (no file known) reads through descriptors, a later one
    by path: the same refs either way, and what is not a ref left out by both."""
    import os

    head = git(repo, "rev-parse", "HEAD").strip()
    common = repo / ".git"
    folder = common / "refs" / "xp" / "runs"
    for i in range(3):
        git(repo, "update-ref", f"refs/xp/runs/000000000000{i}a", head)
    (folder / "0000000000009z.lock").write_text(head + "\n")  # a lock file
    (folder / "0000000000008z").write_text("ref: refs/heads/main\n")  # a symbolic ref
    (folder / "0000000000007z").write_text("not a sha\n")
    os.mkfifo(folder / "0000000000006z")  # opened without waiting for a writer
    (folder / "0000000000005z").symlink_to(folder / "0000000000000a")
    (folder / "sub").mkdir()
    first = scan_folder(common, "refs/xp/runs", {})
    want = {f"refs/xp/runs/000000000000{i}a": head for i in range(3)}
    assert {k: v[1] for k, v in first.refs.items()} == want
    assert first.folders == ["refs/xp/runs/sub"]
    later = scan_folder(common, "refs/xp/runs", {"refs/xp/other": ("0:0:0", head)})
    assert later.refs == first.refs  # the same file ids too
    assert later.folders == first.folders
    for odd in ("0000000000006z", "0000000000007z", "0000000000008z", "0000000000005z"):
        (folder / odd).unlink()  # git's fsck after the test: a FIFO blocks it, junk fails it


def test_pack_refs_moves_loose_run_refs_and_keeps_everything(repo: Path) -> None:
    runs = [log_run(repo, {f"{i}.bin": b"x"}) for i in range(3)]
    git(repo, "tag", "-a", "-m", "m", "v1")  # an annotated tag: its peeled line stays
    git(repo, "pack-refs", "--all")
    more = [log_run(repo, {f"m{i}.bin": b"y"}) for i in range(2)]
    before = git_refs(repo)
    common = repo / ".git"
    loose = [f"refs/xp/runs/{r}" for r in more]
    assert all((common / name).is_file() for name in loose)
    stamp = packed_stamp(common)
    done = pack_refs(find_repo(repo), loose)
    assert done is not None
    assert done.before == stamp
    assert done.after == packed_stamp(common)
    assert sorted(done.moved) == sorted(loose) == sorted(done.pruned)
    assert not any((common / name).exists() for name in loose)
    assert git_refs(repo) == before
    assert "^" in (common / "packed-refs").read_text()  # the tag's peeled line
    assert git(repo, "show-ref", "--tags", "-d").count("v1") == 2
    assert sorted(runs + more) == sorted(r.rsplit("/", 1)[1] for r in git_refs(repo, "refs/xp/"))


def test_pack_refs_never_brings_back_a_deleted_ref_nor_waits(repo: Path) -> None:
    run = log_run(repo, {"a.bin": b"a"})
    name = f"refs/xp/runs/{run}"
    common = repo / ".git"
    sha = read_ref(common, name)
    assert sha is not None
    delete_ref(common, name, sha)  # deleted between the caller's look and the packing
    assert pack_refs(find_repo(repo), [name]) is None
    assert read_ref(common, name) is None
    other = log_run(repo, {"b.bin": b"b"})
    (common / "packed-refs.lock").write_text("")  # someone else packs or deletes
    try:
        assert pack_refs(find_repo(repo), [f"refs/xp/runs/{other}"]) is None
    finally:
        (common / "packed-refs.lock").unlink()
    assert (common / "refs" / "xp" / "runs" / other).is_file()


def test_a_ref_changed_after_packing_keeps_its_loose_value(repo: Path) -> None:
    """The loose file is removed only if it still holds what was packed."""
    head = git(repo, "rev-parse", "HEAD").strip()
    run = log_run(repo, {"a.bin": b"a"})
    name = f"refs/xp/runs/{run}"
    common = repo / ".git"
    path = common / name
    lock = Path(f"{path}.lock")
    lock.write_text("")  # the ref is being updated: pruning must skip it
    try:
        done = pack_refs(find_repo(repo), [name])
    finally:
        lock.unlink()
    assert done is not None
    assert done.pruned == []
    assert path.is_file()
    subprocess.run(["git", "update-ref", name, head], cwd=repo, check=True)
    assert read_ref(common, name) == head  # the loose value wins over the packed one
