"""Which content objects a set of commits needs: their ``artifacts.yaml`` and ``inputs.yaml``.

One ``git cat-file --batch`` process reads the two files of every commit, so listing the
objects of 1,000 runs costs one subprocess, not 1,000 record loads. Entries come from other
people's clones, so each is checked: a clean relative path and a 64-hex sha256, or the run is
refused with a message naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

from xp import format as fmt
from xp.artifacts import cache
from xp.errors import ConfigError, InvalidValueError
from xp.gitstore.repo import GitRepo
from xp.record.fastyaml import load_entries


@dataclass(frozen=True)
class Needed:
    """One file a run refers to by content."""

    run: str  # run id, or a short commit id for branch commits
    path: str
    sha256: str
    size: int
    kind: str  # "artifact", "input" or "input-dir" (a folder input: sha256 names its manifest)


def cat_files(repo: GitRepo, specs: list[str]) -> dict[str, bytes]:
    """``rev:path`` -> blob bytes for each spec that exists (missing ones are left out)."""
    from xp.gitstore.catfile import read_objects

    return {spec: data for spec, data in read_objects(repo, specs) if data is not None}


def parse_entries(data: bytes, source: str) -> list[dict[str, object]]:
    value: object = load_entries(data)  # what PyYAML reads, without importing it
    if value is None:
        from xp.record import yamlio

        value = yamlio.load(data, source)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(d, dict) for d in value):
        raise ConfigError(
            f"{source}: expected a list of {{path, sha256, size}}; the run is damaged"
        )
    return value


def check_entry(d: dict[str, object], source: str) -> tuple[str, str, int]:
    """(path, sha256, size) of one record entry, refusing anything that could escape."""
    path, sha, size = d.get("path"), d.get("sha256"), d.get("size")
    if not isinstance(path, str) or not cache.is_sha256(sha):
        raise ConfigError(f"{source}: entry {d!r} lacks a path or a valid sha256; run damaged")
    try:
        clean = cache.clean_name(path)
    except InvalidValueError:
        clean = ""
    if clean != path:
        raise ConfigError(
            f"{source}: path {path!r} is not a clean relative path; refusing this run's files"
        )
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ConfigError(f"{source}: entry {path!r} has no valid size; the run is damaged")
    assert isinstance(sha, str)
    return path, sha, size


def needed(repo: GitRepo, commits: dict[str, str]) -> list[Needed]:
    """Every artifact and data input of ``commits`` (commit sha -> run label)."""
    specs = []
    for commit in commits:
        specs.append(f"{commit}:{fmt.RECORD_DIR}/{fmt.ARTIFACTS_FILE}")
        specs.append(f"{commit}:{fmt.RECORD_DIR}/{fmt.INPUTS_FILE}")
    blobs = cat_files(repo, specs)
    out: list[Needed] = []
    for commit, label in commits.items():
        for name, kind in ((fmt.ARTIFACTS_FILE, "artifact"), (fmt.INPUTS_FILE, "input")):
            data = blobs.get(f"{commit}:{fmt.RECORD_DIR}/{name}")
            if data is None:
                continue
            source = f"run {label}: {fmt.RECORD_DIR}/{name}"
            for d in parse_entries(data, source):
                path, sha, size = check_entry(d, source)
                k = "input-dir" if kind == "input" and d.get("kind") == "dir" else kind
                out.append(Needed(label, path, sha, size, k))
    return out
