"""Offline bundles: runs and artifacts moved between two clones that share no remote, hostile
bundles refused whole."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

import xp
from tests.helpers import git, log_run, one_line_error, xp_main
from xp import format as fmt


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Two clones of one project that know nothing of each other (no remote anywhere)."""
    a = tmp_path / "a"
    a.mkdir()
    git(a, "init", "-q")
    (a / "train.py").write_text("print('train')\n")
    (a / ".gitignore").write_text("out/\n")
    git(a, "add", ".")
    git(a, "commit", "-qm", "init")
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(a), "b")
    git(b, "remote", "remove", "origin")
    return a, b


def test_runs_and_artifacts_move_by_file(pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = pair
    first = log_run(a, {"model.pkl": b"weights-1", "plots/roc.png": b"png"}, name="first")
    second = log_run(a, {"model.pkl": b"weights-2"}, name="second")
    out = tmp_path / "runs.xpb"
    code, text, err = xp_main("bundle", "create", str(out), cwd=a)
    assert code == 0, err
    assert "2 run(s), 3 artifact(s)" in text
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert names[:2] == [fmt.BUNDLE_MANIFEST, fmt.BUNDLE_GIT]
    code, text, err = xp_main("bundle", "import", str(out), cwd=b)
    assert code == 0, err
    assert "2 new run(s)" in text
    assert "3 artifact(s) added" in text
    assert sorted(git(b, "for-each-ref", "--format=%(refname)", "refs/xp/").split()) == [
        f"refs/xp/remotes/bundle/runs/{first}",
        f"refs/xp/remotes/bundle/runs/{second}",
    ]
    assert xp.get_run("second", path=b).metrics == {"acc": 0.5}
    code, _text, err = xp_main("get", first, "-o", str(tmp_path / "got"), cwd=b)
    assert code == 0, err
    assert (tmp_path / "got" / "plots" / "roc.png").read_bytes() == b"png"
    # again: nothing changes
    code, text, err = xp_main("bundle", "import", str(out), cwd=b)
    assert code == 0, err
    assert "0 new run(s), 0 updated, 2 already here; 0 artifact(s) added, 3 already cached" in text


def test_selecting_runs(pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = pair
    one = log_run(a, {"m.bin": b"1"}, name="one")
    log_run(a, {"m.bin": b"2"}, name="two")
    out = tmp_path / "one.xpb"
    assert xp_main("bundle", "create", str(out), "one", cwd=a)[0] == 0
    assert xp_main("bundle", "import", str(out), cwd=b)[0] == 0
    assert [r.id for r in xp.list_runs(path=b)] == [one]
    code, _t, err = xp_main("bundle", "create", str(out), "--since", "2 days ago", cwd=a)
    assert code == 0, err
    code, _t, err = xp_main("bundle", "create", str(out), "--since", "2099-01-01", cwd=a)
    assert "no runs to bundle since 2099-01-01" in one_line_error(code, err)
    code, _t, err = xp_main("bundle", "create", str(out), "one", "--since", "1 day ago", cwd=a)
    assert "not both" in one_line_error(code, err)
    code, _t, err = xp_main("bundle", "create", str(out), "--since", "whenever", cwd=a)
    assert "whenever" in one_line_error(code, err)


def test_an_incremental_bundle_needs_the_excluded_history(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = pair
    (a / "more.py").write_text("x = 1\n")
    git(a, "add", "more.py")
    git(a, "commit", "-qm", "more")  # b does not have this commit
    log_run(a, {"m.bin": b"1"})
    out = tmp_path / "thin.xpb"
    assert xp_main("bundle", "create", str(out), "--exclude", "main", cwd=a)[0] == 0
    code, _t, err = xp_main("bundle", "import", str(out), cwd=b)
    assert "the bundle was made with --exclude" in one_line_error(code, err)
    assert git(b, "for-each-ref", "refs/xp/") == ""


def _rewrite(src: Path, dest: Path, change: dict[str, bytes | None]) -> None:
    """A copy of bundle ``src`` with members replaced (None: removed) or added."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w") as tout:
        for member in tin:
            data = tin.extractfile(member)
            body = data.read() if data else b""
            if member.name in change:
                new = change.pop(member.name)
                if new is None:
                    continue
                body = new
            member.size = len(body)
            tout.addfile(member, io.BytesIO(body))
        for name, body in change.items():
            assert body is not None
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tout.addfile(info, io.BytesIO(body))


def test_hostile_bundles_are_refused_whole(pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = pair
    log_run(a, {"model.pkl": b"weights", "extra.bin": b"more"})
    good = tmp_path / "good.xpb"
    assert xp_main("bundle", "create", str(good), cwd=a)[0] == 0
    with tarfile.open(good) as tar:
        objects = [n for n in tar.getnames() if n.startswith(fmt.BUNDLE_OBJECTS)]
    cases = {
        "tampered": ({objects[-1]: b"evil"}, "it was changed after the bundle was made"),
        "stranger": ({"../../etc/passwd": b"x"}, "unexpected member '../../etc/passwd'"),
        "badname": ({fmt.BUNDLE_OBJECTS + "zz": b"x"}, "is not named by a sha256"),
        "nomanifest": ({fmt.BUNDLE_MANIFEST: None}, "is not an xp bundle"),
        "future": ({fmt.BUNDLE_MANIFEST: b"format: 99\n"}, "upgrade xp"),
        "garbage": ({fmt.BUNDLE_GIT: b"not a bundle"}, "git bundle"),
    }
    for label, (change, message) in cases.items():
        bad = tmp_path / f"{label}.xpb"
        _rewrite(good, bad, dict(change))
        code, _t, err = xp_main("bundle", "import", str(bad), cwd=b)
        assert message in one_line_error(code, err), label
        assert git(b, "for-each-ref", "refs/xp/") == "", label  # no run came in
    tmp_files = b / ".git" / "xp" / "cache" / "tmp"
    assert not tmp_files.exists() or list(tmp_files.iterdir()) == []  # no staged leftovers
    (tmp_path / "plain.txt").write_text("hello")
    code, _t, err = xp_main("bundle", "import", str(tmp_path / "plain.txt"), cwd=b)
    assert "as an xp bundle" in one_line_error(code, err)
    # the cache took nothing but verified objects: after the good import all is consistent
    assert xp_main("bundle", "import", str(good), cwd=b)[0] == 0
