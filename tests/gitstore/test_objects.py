"""Objects xp serialises itself (``objects.tree_body``, ``commit_body``, ``RawObject``) are
byte for byte what git writes: the same ids as ``git hash-object -w``, ``git mktree`` and
``git commit-tree``, loose files git reads back, ``git fsck --strict`` clean (the fixture)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import git
from xp.gitstore import commit as gitcommit
from xp.gitstore.objects import ObjectWriter, RawObject, commit_body, tree_body
from xp.gitstore.repo import find_repo


def _hash_object(repo: Path, data: bytes) -> str:
    import subprocess

    return (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], cwd=repo, input=data, capture_output=True
        )
        .stdout.decode()
        .strip()
    )


names = st.text(
    st.characters(exclude_characters="/\0", exclude_categories=["Cs"]), min_size=1, max_size=12
).filter(lambda n: n not in (".", "..", ".git"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=st.dictionaries(names, st.binary(max_size=64), min_size=1, max_size=6),
    folders=st.lists(names, max_size=3, unique=True),
)
def test_blobs_and_trees_match_git(repo: Path, files: dict[str, bytes], folders: list[str]) -> None:
    writer = ObjectWriter(find_repo(repo).objects_dir)
    entries: dict[bytes, tuple[int, bytes]] = {}
    lines = []
    for name, data in files.items():
        sha = writer.add(RawObject(b"blob", data))
        assert sha.decode() == _hash_object(repo, data)  # the loose file git reads
        entries[name.encode()] = (0o100644, sha)
        lines.append(f"100644 blob {sha.decode()}\t{name}")
    empty = writer.add(RawObject(b"tree", b""))
    for name in folders:  # folders sort as if named "name/"; they replace a file of that name
        entries[name.encode()] = (stat.S_IFDIR, empty)
        lines = [line for line in lines if not line.endswith(f"\t{name}")]
        lines.append(f"040000 tree {empty.decode()}\t{name}")
    tree = writer.add(RawObject(b"tree", tree_body(entries)))
    import subprocess

    made = (
        subprocess.run(
            ["git", "mktree", "-z"],
            cwd=repo,
            input="".join(f"{line}\0" for line in lines).encode(),
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    assert tree.decode() == made
    git(repo, "ls-tree", tree.decode())  # git parses the loose file


def test_a_run_commit_matches_git_commit_tree(repo: Path) -> None:
    """build_commit's bytes are git's: the same id as `git commit-tree` given the same
    tree, parent, identity, dates and message (a timezone east and west of UTC)."""
    handle = find_repo(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    ident = git(repo, "var", "GIT_COMMITTER_IDENT").strip().rsplit(" ", 2)[0]
    name, _, email = ident.partition(" <")
    message = "xp: brisk-otter loss=0.5\n\nxp-run: abc\n"
    for zone in ("UTC", "Asia/Kolkata", "America/St_Johns"):
        os.environ["TZ"] = zone
        time.tzset()
        try:
            start, end = 1_700_000_000.7, 1_700_000_123.2
            raw = gitcommit.build_commit(handle, tree.encode(), head, message, start, end)
            env = {
                "GIT_AUTHOR_NAME": name,
                "GIT_AUTHOR_EMAIL": email.rstrip(">"),
                "GIT_COMMITTER_NAME": name,
                "GIT_COMMITTER_EMAIL": email.rstrip(">"),
                "GIT_AUTHOR_DATE": f"@{int(start)} {_zone(end)}",
                "GIT_COMMITTER_DATE": f"@{int(end)} {_zone(end)}",
            }
            import subprocess

            made = (
                subprocess.run(
                    ["git", "commit-tree", tree, "-p", head, "-F", "-"],
                    cwd=repo,
                    input=message.encode(),
                    env={**os.environ, **env},
                    capture_output=True,
                    check=True,
                )
                .stdout.decode()
                .strip()
            )
            assert raw.id.decode() == made, zone
        finally:
            del os.environ["TZ"]
            time.tzset()
    writer = ObjectWriter(handle.objects_dir)
    sha = writer.add(raw).decode()
    assert git(repo, "cat-file", "-t", sha).strip() == "commit"


def _zone(when: float) -> str:
    offset = time.localtime(when).tm_gmtoff
    sign = "-" if offset < 0 else "+"
    offset = abs(offset)
    return f"{sign}{offset // 3600:02d}{offset // 60 % 60:02d}"


def test_commit_body_without_parents_or_message_is_gits(repo: Path) -> None:
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    body = commit_body(tree.encode(), [], b"A U Thor <a@example.com>", 10, 20, -5 * 3600, b"")
    assert body.endswith(b"committer A U Thor <a@example.com> 20 -0500\n\n")
    sha = ObjectWriter(find_repo(repo).objects_dir).add(RawObject(b"commit", body)).decode()
    assert git(repo, "cat-file", "-p", sha).splitlines()[0] == f"tree {tree}"
