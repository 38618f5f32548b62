"""Monitoring points: what a deployed model version did in production, stored in git.

Each clone appends to its own chain, ``refs/xp/monitoring/<writer>`` (docs/format.md,
section 10): a commit per call whose tree holds every point that clone ever logged, as
``<model>/<version>/<stage>/<NNNNNN>.tsv`` chunks of at most 500 lines. Nobody else writes
that ref, so `git push` only ever fast-forwards it and `git fetch` brings other clones'
chains into ``refs/xp/remotes/<remote>/monitoring/`` without conflicts; the model's run
and its registry tags are never touched. Reading takes the tips' trees, not their
histories, so the cost follows the number of points and clones, not of calls.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from xp import format as fmt
from xp import fsutil
from xp.errors import InvalidValueError, RefChangedError, StorageError
from xp.gitstore import chains
from xp.gitstore.refs import list_refs, read_ref
from xp.gitstore.repo import GitRepo
from xp.record.model import format_number

_MAX_TAG_VALUE = fmt.MAX_TAG_LENGTH


@dataclass(frozen=True, slots=True)
class Point:
    """One monitoring point: a metric of one model version in one stage over a window."""

    model: str
    version: str
    stage: str
    window_end: int  # milliseconds since the epoch
    metric: str
    value: float
    tags: tuple[tuple[str, str], ...] = ()
    writer: str = ""  # the clone that logged it (its chain's id)


@dataclass(frozen=True)
class Written:
    """What one append recorded: the points, and the chain commit that holds them."""

    points: int
    commit: str
    ref: str
    folders: tuple[str, ...]  # "<model>/<version>/<stage>" of each group written


@dataclass
class Read:
    points: list[Point] = field(default_factory=list)
    invalid: int = 0  # lines of fetched chains that did not parse (skipped, never fatal)
    newer: int = 0  # chunks whose header this xp does not know (a later format): skipped
    chains: int = 0


# -- values ---------------------------------------------------------------------------------
def to_number(metric: str, value: Any) -> float:
    """A metric value as a float: ints, floats and anything with ``__float__`` (numpy, torch)."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        shown = repr(value)
        raise InvalidValueError(
            f"production metric {metric!r} must be a number, got {shown}; pass e.g. 0.91"
        )
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidValueError(
            f"production metric {metric!r} must be a number, got {type(value).__name__};"
            " pass a float (e.g. float(x))"
        ) from None


def parse_number(metric: str, text: str) -> float:
    """A metric value typed on the command line or read from a file."""
    try:
        return float(text.strip())
    except ValueError:
        raise InvalidValueError(
            f"production metric {metric!r}: {text!r} is not a number; write e.g. {metric}=0.91"
        ) from None


def to_millis(when: Any, what: str = "window_end") -> int:
    """Milliseconds since the epoch from a datetime (naive = local time, as Python's
    ``timestamp()``), an ISO 8601 string (no zone = UTC), or seconds since the epoch
    (numbers above 1e11 are taken as milliseconds)."""
    if when is None:
        return int(time.time() * 1000)
    if isinstance(when, datetime):
        return round(when.timestamp() * 1000)
    if isinstance(when, str):
        return parse_time(when, what)
    if isinstance(when, bool):
        raise InvalidValueError(f"{what} must be a time, got {when!r}")
    try:
        number = float(when)
    except (TypeError, ValueError):
        if hasattr(when, "to_pydatetime"):  # pandas.Timestamp
            return to_millis(when.to_pydatetime(), what)
        raise InvalidValueError(
            f"{what} must be a datetime, an ISO 8601 string or seconds since the epoch,"
            f" got {type(when).__name__}"
        ) from None
    if not math.isfinite(number) or number < 0:
        raise InvalidValueError(f"{what} must be a time after 1970, got {when!r}")
    return round(number if number > 1e11 else number * 1000)


def parse_time(text: str, what: str = "time") -> int:
    value = text.strip()
    try:
        if value.replace(".", "", 1).isdigit():
            return to_millis(float(value), what)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidValueError(
            f"{what} {text!r} is not a time; write ISO 8601 like 2026-11-29T10:00:00Z"
            " or seconds since the epoch"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return round(parsed.timestamp() * 1000)


def clean_tags(tags: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    if not tags:
        return ()
    if not isinstance(tags, Mapping):
        raise InvalidValueError(f"tags must be a mapping of name -> text, got {tags!r}")
    out = []
    for key, value in tags.items():
        fmt.validate_key(key, "tag name")
        text = value if isinstance(value, str) else str(value)
        if len(text) > _MAX_TAG_VALUE:
            raise InvalidValueError(
                f"tag {key!r} is {len(text)} characters; the limit is {_MAX_TAG_VALUE}"
            )
        out.append((key, text))
    return tuple(sorted(out))


# -- the chain of this clone ----------------------------------------------------------------
SUBJECT = "xp-monitoring: "  # the first line of every chain commit (and its reflog entry)


def writer_id(repo: GitRepo) -> str:
    """This clone's writer id: made on first use and kept in ``<git dir>/xp/monitoring-writer``
    (a copied .git copies it too: then both copies append to one chain and the second push
    is refused as not a fast-forward; delete the file in one copy to give it its own)."""
    path = repo.xp_dir / "monitoring-writer"
    for _attempt in range(3):
        try:
            found = path.read_text(encoding="ascii").strip()
            if fmt.ID_RE.match(found):
                return found
            path.unlink()  # damaged: a new id starts a new chain; the old one stays readable
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        # Made under a temporary name and linked into place, which fails if another process
        # got there first: concurrent first calls agree on one id.
        tmp = fsutil.temp_name(path)
        try:
            fsutil.atomic_write(tmp, fmt.new_run_id() + "\n")
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror}; check disk space") from None
        finally:
            tmp.unlink(missing_ok=True)
    raise StorageError(f"{path} cannot be read back; delete it and retry")


def _seq(repo: GitRepo, commit: str | None) -> int:
    if not commit:
        return 0
    for line in chains.commit_message(repo, commit).splitlines():
        if line.startswith("xp-seq: ") and line[8:].strip().isdigit():
            return int(line[8:].strip())
    return 0


def _parent(repo: GitRepo, ref: str, current: str | None) -> str | None:
    """Where the next commit goes: the ref, unless the reflog shows that this clone wrote a
    later commit that something (a forced fetch into refs/xp/monitoring/) wound back."""
    logged = chains.logged_tips(repo, ref, SUBJECT)
    if not logged or logged[0] == current:
        return current
    if chains.commit_tree(repo, logged[0]) is None:
        return current
    return logged[0] if _seq(repo, logged[0]) > _seq(repo, current) else current


def _lines(points: Iterable[Point]) -> dict[str, list[str]]:
    """folder -> new lines, in the order given."""
    out: dict[str, list[str]] = {}
    for p in points:
        tags = (
            json.dumps(dict(p.tags), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            if p.tags
            else ""
        )
        line = f"{p.window_end}\t{p.metric}\t{format_number(p.value)}\t{tags}\n"
        out.setdefault(f"{p.model}/{p.version}/{p.stage}", []).append(line)
    return out


def _chunks(repo: GitRepo, tree: str | None, folder: str, lines: list[str]) -> dict[str, bytes]:
    """The chunk files of ``folder`` after appending ``lines``: the last one grows up to
    POINTS_PER_CHUNK lines, then new ones start."""
    entries = chains.tree_entries(repo, tree, folder)
    names = sorted(n for n in entries if n.endswith(".tsv") and n[:-4].isdigit())
    out: dict[str, bytes] = {}
    number = int(names[-1][:-4]) if names else 1
    if names:
        body = chains.read_blob(repo, entries[names[-1]][1]).decode("utf-8", "replace")
        have = body.count("\n") - 1
    else:
        body, have = fmt.POINTS_HEADER, 0
    pending = list(lines)
    while pending:
        room = fmt.POINTS_PER_CHUNK - have
        if room <= 0:
            number += 1
            body, have, room = fmt.POINTS_HEADER, 0, fmt.POINTS_PER_CHUNK
        take, pending = pending[:room], pending[room:]
        body += "".join(take)
        have += len(take)
        out[f"{folder}/{number:06d}.tsv"] = body.encode("utf-8")
    return out


def append(repo: GitRepo, points: list[Point], *, summary: str) -> Written:
    """Add ``points`` to this clone's chain in one commit (compare-and-swap, retried)."""
    ref = fmt.MONITORING_PREFIX + writer_id(repo)
    groups = _lines(points)
    for _attempt in range(100):
        current = read_ref(repo.common_dir, ref)
        parent = _parent(repo, ref, current)
        tree = chains.commit_tree(repo, parent) if parent else None
        files: dict[str, bytes] = {}
        for folder, lines in groups.items():
            files.update(_chunks(repo, tree, folder, lines))
        seq = _seq(repo, parent) + 1
        message = f"{SUBJECT}{summary}\n\nxp-writer: {ref.rpartition('/')[2]}\nxp-seq: {seq}\n"
        try:
            done = chains.write(
                repo, ref, parent=parent, expected=current, files=files, message=message
            )
        except RefChangedError:
            continue
        return Written(len(points), done.commit, ref, tuple(groups))
    raise StorageError(f"{ref} kept changing under this process; retry the call")


# -- reading --------------------------------------------------------------------------------
def chain_tips(repo: GitRepo) -> dict[str, tuple[str, str]]:
    """Every chain tip to read: key -> (writer id, commit). Local chains, fetched copies,
    and this clone's remembered tip (in case a forced fetch wound the ref back)."""
    tips: dict[str, tuple[str, str]] = {}
    for name, sha in list_refs(repo.common_dir, "refs/xp/").items():
        if name.startswith(fmt.MONITORING_PREFIX):
            writer = name[len(fmt.MONITORING_PREFIX) :]
        elif name.startswith(fmt.REMOTES_PREFIX) and "/monitoring/" in name:
            writer = name.rpartition("/monitoring/")[2]
        else:
            continue
        if "/" not in writer:
            tips[name] = (writer, sha)
    for name, (writer, sha) in list(tips.items()):
        if name.startswith(fmt.MONITORING_PREFIX):
            logged = chains.logged_tips(repo, name, SUBJECT)
            if logged and logged[0] != sha:  # wound back: read what this clone wrote too
                tips[name + "@{xp}"] = (writer, logged[0])
    return tips


def _merge(blobs: list[bytes]) -> list[bytes]:
    """One writer's versions of one chunk (from several tips): chains only append, so the
    longest holds the others; a copy that is not a prefix of it adds its extra lines."""
    ordered = sorted(set(blobs), key=len, reverse=True)
    out = [ordered[0]]
    for other in ordered[1:]:
        if ordered[0].startswith(other):
            continue
        same = next(
            (i for i, (x, y) in enumerate(zip(ordered[0], other, strict=False)) if x != y),
            min(len(ordered[0]), len(other)),
        )
        cut = other.rfind(b"\n", 0, same) + 1
        out.append(other[cut:])
    return out


@dataclass(frozen=True)
class _Chunk:
    writer: str
    version: str
    stage: str
    datas: list[bytes]  # the chunk's text (and, rarely, lines only another copy has)


def _stored(
    repo: GitRepo, model: str, stage: str | None, version: str | None, out: Read
) -> list[_Chunk]:
    """Every chunk of ``model`` (in the stage/version asked) from every chain tip, merged per
    writer and path; chunks in a format this xp does not know are counted in ``out.newer``."""
    from xp.sharing.registry import VERSION_RE, check_name

    check_name(model, "model name")
    tips = chain_tips(repo)
    out.chains = len({w for w, _sha in tips.values()})
    roots = {key: f"{sha}:{model}" for key, (_w, sha) in tips.items()}
    listing = chains.files_below(repo, roots, depth=2)  # <version>/<stage>/<chunk>
    wanted: dict[tuple[str, str], list[str]] = {}  # (writer, relpath) -> blob shas
    for key, files in listing.items():
        writer = tips[key][0]
        for rel, sha in files.items():
            parts = rel.split("/")
            if len(parts) != 3 or not VERSION_RE.match(parts[0]):
                continue  # another model below this one's folder (names may hold '/')
            if (stage is not None and parts[1] != stage) or (
                version is not None and parts[0] != version
            ):
                continue
            wanted.setdefault((writer, rel), []).append(sha)
    contents = chains.blobs(repo, [s for shas in wanted.values() for s in shas])
    found = []
    header = fmt.POINTS_HEADER.encode()
    for (writer, rel), shas in sorted(wanted.items()):
        ver, stg, _chunk = rel.split("/")
        datas = [contents[s] for s in shas if s in contents]
        if not datas:
            continue
        merged = _merge(datas)
        if not merged[0].startswith(header):
            out.newer += 1  # a header this xp does not know: a later format, or damage
            continue
        found.append(_Chunk(writer, ver, stg, merged))
    return found


def read(
    repo: GitRepo,
    *,
    model: str,
    stage: str | None = None,
    version: str | None = None,
    since: int | None = None,
) -> Read:
    """Every monitoring point of ``model`` (filtered by stage, version, window_end >= since)
    from every chain this clone has, local or fetched."""
    result = Read()
    for c in _stored(repo, model, stage, version, result):
        for data in c.datas:
            result.invalid += _parse(
                data, model, c.version, c.stage, c.writer, since, result.points
            )
    return result


Series = dict[tuple[str, str, str], list[tuple[int, float]]]  # (version, stage, metric) -> points


def read_series(
    repo: GitRepo,
    *,
    model: str,
    stage: str | None = None,
    version: str | None = None,
    since: int | None = None,
) -> tuple[Series, Read]:
    """The points of ``model`` as (window_end, value) series per version, stage and metric,
    tags left out: what perf and check need, read without a Point per line."""
    result = Read()
    series: Series = {}
    for c in _stored(repo, model, stage, version, result):
        by_metric: dict[str, list[tuple[int, float]]] = {}
        for data in c.datas:
            part: dict[str, list[tuple[int, float]]] = {}
            try:
                for line in data.decode("utf-8", "replace").split("\n"):
                    if not line or line[0] == "w":  # the header
                        continue
                    end, metric, value, _tags = line.split("\t", 3)
                    point = (int(end), float(value))
                    if since is None or point[0] >= since:
                        part.setdefault(metric, []).append(point)
            except ValueError:  # a damaged line: read this text the careful way
                careful: list[Point] = []
                result.invalid += _parse(data, model, c.version, c.stage, c.writer, since, careful)
                part = {}
                for p in careful:
                    part.setdefault(p.metric, []).append((p.window_end, p.value))
            for metric, points in part.items():
                by_metric.setdefault(metric, []).extend(points)
        for metric, found in by_metric.items():
            series.setdefault((c.version, c.stage, metric), []).extend(found)
    return series, result


def _parse(
    data: bytes,
    model: str,
    version: str,
    stage: str,
    writer: str,
    since: int | None,
    out: list[Point],
) -> int:
    """Append the points of one chunk to ``out``; the number of lines that did not parse."""
    bad = 0
    text = data.decode("utf-8", "replace")
    for line in text.split("\n"):
        if not line or line.startswith("window_end\t"):
            continue
        parts = line.split("\t", 3)
        try:
            end = int(parts[0])
            value = float(parts[2])
            metric = parts[1]
            tags: tuple[tuple[str, str], ...] = ()
            if len(parts) > 3 and parts[3]:
                raw = json.loads(parts[3])
                if not isinstance(raw, dict):
                    raise ValueError(parts[3])
                tags = tuple(sorted((str(k), str(v)) for k, v in raw.items()))
        except (ValueError, IndexError):
            bad += 1
            continue
        if since is not None and end < since:
            continue
        out.append(Point(model, version, stage, end, metric, value, tags, writer))
    return bad
