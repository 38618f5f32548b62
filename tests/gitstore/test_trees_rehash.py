"""rehash_tree: a changed byte in any object under a tree shows, by path."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from tests.helpers import git
from xp.gitstore.repo import find_repo
from xp.gitstore.trees import rehash_tree


def test_a_rewritten_object_is_named(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    git(root, "init", "-q")
    (root / "src").mkdir()
    (root / "src" / "a.py").write_text("print('a')\n")
    (root / "b.txt").write_text("b\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "x")
    tree = git(root, "rev-parse", "HEAD^{tree}").strip()
    repo = find_repo(root)
    check = rehash_tree(repo, tree)
    assert check.objects == 4
    assert check.bad == ()
    blob = git(root, "rev-parse", "HEAD:src/a.py").strip()
    path = root / ".git" / "objects" / blob[:2] / blob[2:]
    os.chmod(path, 0o644)
    path.write_bytes(zlib.compress(b"blob 11\0print('b')\n"))
    assert rehash_tree(repo, tree).bad == ("src/a.py",)
    path.unlink()
    assert rehash_tree(repo, tree).bad == ("src/a.py",)
