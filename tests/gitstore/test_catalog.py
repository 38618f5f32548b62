"""gitstore.catalog: bucket names, finding fetched buckets among 1,000s of per-run copies."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import git
from xp.format import bucket_of
from xp.gitstore import catalog
from xp.gitstore.repo import find_repo


def test_bucket_is_the_low_byte_of_crc32_as_two_hex_digits() -> None:
    # docs/format.md, section 1: every xp must put a run in the same bucket
    assert bucket_of("1m8ns4sczfsjc2") == "85"
    assert {bucket_of(f"run{i}") for i in range(5000)} == {f"{b:02x}" for b in range(256)}


def test_fetched_buckets_are_found_loose_and_packed_beside_per_run_copies(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    lines = [f"create refs/xp/remotes/origin/runs/r{i:04d} {head}\n" for i in range(1500)]
    lines += [
        f"create refs/xp/remotes/origin/catalog/0a {head}\n",
        f"create refs/xp/remotes/team/a/catalog/ff {head}\n",
        f"create refs/xp/remotes/origin/catalog/not-a-bucket {head}\n",
        f"create refs/xp/remotes/origin/notes {head}\n",
    ]
    git(repo, "update-ref", "--stdin", input_text="".join(lines))
    want = {
        "refs/xp/remotes/origin/catalog/0a": head,
        "refs/xp/remotes/team/a/catalog/ff": head,
    }
    assert catalog.tracking_buckets(find_repo(repo).common_dir) == want
    git(repo, "pack-refs", "--all")
    git(repo, "update-ref", "refs/xp/remotes/origin/catalog/0b", head)  # and one loose
    assert catalog.tracking_buckets(find_repo(repo).common_dir) == {
        **want,
        "refs/xp/remotes/origin/catalog/0b": head,
    }


def test_a_bucket_read_whole_is_not_read_again_and_one_read_in_part_is(
    repo: Path, tmp_path: Path
) -> None:
    """`xp push` reads the same bucket tips twice (which runs are listed, then publish's own
    read): the second read parses nothing; a bucket whose objects were missing is read again
    once they are fetched."""
    r = find_repo(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    run_id = "1m8ns4sczfsjc2"
    key = f"refs/xp/remotes/origin/catalog/{bucket_of(run_id)}"
    tip = catalog.write_bucket(r, entries={run_id: head}, base=None, carry=[head], message="m")
    first = catalog.read_buckets(r, {key: tip})[key]
    assert first.entries == {run_id: head}
    first.entries.clear()  # callers get their own copy
    for sha in (tip, first.tree):
        assert sha is not None
        (r.objects_dir / sha[:2] / sha[2:]).unlink()  # gone: only the memo can answer now
    again = catalog.read_buckets(r, {key: tip})[key]
    assert (again.entries, again.skipped, again.tree) == ({run_id: head}, [], first.tree)

    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    git(other, "commit", "-q", "--allow-empty", "-m", "base")
    o = find_repo(other)
    base = git(other, "rev-parse", "HEAD").strip()
    far = catalog.write_bucket(o, entries={run_id: base}, base=None, carry=[base], message="m")
    git(other, "update-ref", "refs/heads/bucket", far)
    assert catalog.read_buckets(r, {key: far})[key].skipped  # not here yet
    git(repo, "fetch", "-q", str(other), "refs/heads/bucket:refs/xp/test-bucket")
    assert catalog.read_buckets(r, {key: far})[key].entries == {run_id: base}
