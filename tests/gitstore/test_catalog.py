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
