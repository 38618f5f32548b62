"""Loose objects read in Python are byte for byte what ``git cat-file`` gives, or refused."""

from __future__ import annotations

import os
import subprocess
import zlib
from hashlib import sha1
from pathlib import Path

import pytest

import xp
from tests.helpers import git
from xp.gitstore.loose import LooseObjects, parse


def loose_names(repo: Path) -> list[str]:
    objects = repo / ".git" / "objects"
    return [d.name + f.name for d in objects.iterdir() if len(d.name) == 2 for f in d.iterdir()]


def object_file(sha: str, kind: bytes, content: bytes) -> bytes:
    return zlib.compress(kind + b" %d\0" % len(content) + content)


def test_every_kind_reads_as_git_cat_file_gives_it(repo: Path) -> None:
    with xp.start_run(name="kinds") as run:
        xp.log_param("p", 1)
        xp.log_metric("acc", 0.5)
    big = repo / "big.bin"
    big.write_bytes(os.urandom(200_000))  # past one read
    (repo / "empty").write_bytes(b"")
    blobs = [git(repo, "hash-object", "-w", str(p)).strip() for p in (big, repo / "empty")]
    commit = git(repo, "rev-parse", f"refs/xp/runs/{run.id}").strip()
    git(repo, "tag", "-a", "-m", "a tag", "v1", commit)  # a tag object, loose
    reader = LooseObjects(repo / ".git" / "objects")
    names = loose_names(repo)
    assert set(blobs) <= set(names)
    kinds = set()
    for sha in names:
        got = reader.read(sha)
        assert got is not None, sha
        kind = git(repo, "cat-file", "-t", sha).strip()
        content = subprocess.run(
            ["git", "cat-file", kind, sha], cwd=repo, capture_output=True, check=True
        ).stdout
        assert got == (kind.encode(), content)
        kinds.add(kind)
    assert kinds == {"blob", "tree", "commit", "tag"}


def test_packed_absent_and_malformed_names_are_none(repo: Path) -> None:
    xp.start_run(name="packed").__exit__(None, None, None)
    names = loose_names(repo)
    git(repo, "repack", "-adq")
    git(repo, "prune-packed")
    reader = LooseObjects(repo / ".git" / "objects")
    assert names
    assert all(reader.read(sha) is None for sha in names)
    assert reader.read("0" * 40) is None
    assert reader.read(names[0][:12]) is None
    assert reader.read("../../" + "0" * 34) is None  # no such folder


CONTENT = b"acc: 0.5\n"
SHA = sha1(b"blob %d\0" % len(CONTENT) + CONTENT).hexdigest()


@pytest.mark.parametrize(
    "raw",
    [
        object_file(SHA, b"blob", CONTENT)[:-3],  # truncated zlib stream
        object_file(SHA, b"blob", CONTENT) + b"x",  # garbage after the stream
        zlib.compress(b"blob 8\0" + CONTENT),  # size says fewer bytes
        zlib.compress(b"blob 10\0" + CONTENT),  # size says more
        zlib.compress(b"blob 09\0" + CONTENT),  # a size git never writes
        zlib.compress(b"blub 9\0" + CONTENT),  # no such type
        zlib.compress(b"blob 9" + CONTENT),  # no header end
        zlib.compress(b"blob 9\0acc: 0.6\n"),  # not what the name says
        b"blob 9\0" + CONTENT,  # not deflated
        b"",
    ],
)
def test_corrupt_or_truncated_objects_are_refused(raw: bytes) -> None:
    assert parse(raw, SHA, sha1) is None


def test_the_good_one_reads(tmp_path: Path) -> None:
    assert parse(object_file(SHA, b"blob", CONTENT), SHA, sha1) == (b"blob", CONTENT)
    folder = tmp_path / SHA[:2]
    folder.mkdir()
    (folder / SHA[2:]).write_bytes(object_file(SHA, b"blob", CONTENT))
    assert LooseObjects(tmp_path).read(SHA) == (b"blob", CONTENT)
    (folder / SHA[2:]).write_bytes(object_file(SHA, b"blob", CONTENT)[:-1])
    assert LooseObjects(tmp_path).read(SHA) is None
