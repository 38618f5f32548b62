"""The local content-addressed cache: hashing, storing once, link kinds, settings."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import stat
import tracemalloc
from pathlib import Path

import pytest

import xp
from tests.helpers import git
from xp import fsutil
from xp.artifacts import cache
from xp.errors import ConfigError, InvalidValueError, StorageError
from xp.gitstore.repo import find_repo


def test_hash_file_is_streaming(tmp_path: Path) -> None:
    """Its speed against hashlib alone is a figure of benchmarks/artifacts.py."""
    big = tmp_path / "big.bin"
    digest = hashlib.sha256()  # hashlib.file_digest needs Python 3.11
    with open(big, "wb") as fh:
        for _ in range(64):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            fh.write(chunk)
    expected = digest.hexdigest()
    tracemalloc.start()
    assert cache.hash_file(big) == (expected, 64 << 20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20  # constant memory: one reused 1 MiB buffer


def test_identical_content_is_stored_once_read_only(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"same bytes")
    sha_a, size = cache.add_file(cache_dir, tmp_path / "a")
    sha_b, _ = cache.add_file(cache_dir, tmp_path / "b")
    assert sha_a == sha_b == hashlib.sha256(b"same bytes").hexdigest()
    assert size == 10
    obj = cache.object_path(cache_dir, sha_a)
    assert obj == cache_dir / "sha256" / sha_a[:2] / sha_a[2:4] / sha_a
    assert not obj.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert list((cache_dir / "tmp").iterdir()) == []
    assert len(list(cache.iter_objects(cache_dir))) == 1


def test_large_copy_hashes_what_it_wrote(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    data = os.urandom(9 * cache.COPY_CHUNK + 123)  # several chunks through the hash thread
    src.write_bytes(data)
    sha, size = cache.add_file(tmp_path / "c", src)
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert cache.object_path(tmp_path / "c", sha).read_bytes() == data


def _add_many(cache_dir: str, src: str, n: int) -> list[str]:
    return [cache.add_file(Path(cache_dir), Path(src))[0] for _ in range(n)]


def test_two_processes_adding_the_same_object(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300_000))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_add_many, [(str(tmp_path / "c"), str(src), 40)] * 2)
    assert len({sha for r in results for sha in r}) == 1
    assert len(list(cache.iter_objects(tmp_path / "c"))) == 1
    assert cache.verify(tmp_path / "c", results[0][0])
    assert list((tmp_path / "c" / "tmp").iterdir()) == []


def test_materialise_tries_link_kinds_in_order(tmp_path: Path) -> None:
    sha = cache.add_bytes(tmp_path / "c", b"payload")
    obj = cache.object_path(tmp_path / "c", sha)
    kind = cache.materialise(obj, tmp_path / "w" / "f1", ("hardlink", "copy"))
    assert kind == "hardlink"
    assert (tmp_path / "w" / "f1").stat().st_ino == obj.stat().st_ino
    assert cache.materialise(obj, tmp_path / "w" / "f2", ("copy",)) == "copy"
    assert (tmp_path / "w" / "f2").stat().st_mode & stat.S_IWUSR
    probe = tmp_path / "probe"
    can_reflink = fsutil.reflink(obj, probe)
    if can_reflink:
        assert cache.materialise(obj, tmp_path / "w" / "f3") == "reflink"
    else:
        assert not probe.exists()
        assert cache.materialise(obj, tmp_path / "w" / "f3") == "copy"  # never a hard link
        assert (tmp_path / "w" / "f3").stat().st_ino != obj.stat().st_ino
        with pytest.raises(StorageError, match="none of the link kinds reflink works"):
            cache.materialise(obj, tmp_path / "w" / "f4", ("reflink",))
        assert not (tmp_path / "w" / "f4").exists()
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["f1", "f2", "f3"]


def test_settings_precedence(repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    r = find_repo(repo)
    assert cache.settings(r) == cache.CacheSettings(repo / ".git" / "xp" / "cache")
    (repo / ".xp").mkdir()
    (repo / ".xp" / "config.yaml").write_text("cache:\n  dir: ../team-cache\n  link: [copy]\n")
    conf = cache.settings(r)
    assert (conf.dir, conf.links, conf.shared) == (repo / "../team-cache", ("copy",), True)
    git(repo, "config", "xp.cacheDir", str(tmp_path / "git-cache"))
    git(repo, "config", "xp.cacheLink", "hardlink,copy")
    conf = cache.settings(r)
    assert (conf.dir, conf.links) == (tmp_path / "git-cache", ("hardlink", "copy"))
    monkeypatch.setenv("XP_CACHE_DIR", str(tmp_path / "env-cache"))
    monkeypatch.setenv("XP_CACHE_LINK", "reflink,copy")
    conf = cache.settings(r)
    assert (conf.dir, conf.links) == (tmp_path / "env-cache", ("reflink", "copy"))
    monkeypatch.setenv("XP_CACHE_LINK", "teleport")
    with pytest.raises(ConfigError, match="unknown link kind 'teleport'"):
        cache.settings(r)


def test_log_artifact_uses_the_configured_cache(repo: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    git(repo, "config", "xp.cacheDir", str(shared))
    (repo / "m.bin").write_bytes(b"model")
    with xp.start_run():
        entry = xp.log_artifact("m.bin")[0]
    assert cache.object_path(shared, entry.sha256).read_bytes() == b"model"
    assert cache.registered_clones(shared) == [(repo / ".git").resolve()]
    assert not (repo / ".git" / "xp" / "cache" / "sha256").exists()


def test_escaping_names_and_symlinks_are_refused(repo: Path, tmp_path: Path) -> None:
    (repo / "m.bin").write_bytes(b"m")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (repo / "folder").mkdir()
    (repo / "folder" / "ok.txt").write_text("ok")
    (repo / "folder" / "leak").symlink_to(outside)
    with xp.start_run() as run:
        for bad in ("../m.bin", "/abs/m.bin", "a/../../m.bin"):
            with pytest.raises(InvalidValueError, match="relative path"):
                xp.log_artifact("m.bin", name=bad)
        with pytest.raises(InvalidValueError, match="outside"):
            xp.log_artifact("folder")
    assert xp.get_run(run.id).artifacts == ()


def test_folder_input_manifest_is_cached(repo: Path) -> None:
    (repo / "data" / "sub").mkdir(parents=True)
    (repo / "data" / "a.csv").write_text("a\n")
    (repo / "data" / "sub" / "b.csv").write_text("b\n")
    with xp.start_run() as run:
        entry = xp.log_input("data", cache=True)
    assert (entry.kind, entry.files, entry.size) == ("dir", 2, 4)
    cache_dir = repo / ".git" / "xp" / "cache"
    manifest = cache.object_path(cache_dir, entry.sha256).read_bytes()
    files = cache.parse_manifest(manifest, "test")
    assert [f.path for f in files] == ["a.csv", "sub/b.csv"]
    assert all(cache.verify(cache_dir, f.sha256) for f in files)
    assert xp.get_run(run.id).inputs[0].sha256 == entry.sha256
