"""Index rows: one run as the index stores and returns it, read in bulk from git.

``RunRow`` is the one row type: ``iter_rows`` builds it from records read from loose
objects (``gitstore.loose``) or streamed through ``git cat-file --batch``, and the index
returns it to every caller (``xp show``, search, the UI), so a field is added in one place.
``cells`` is how each param, metric and tag is stored for filtering and sorting: a number and
a text, so SQL compares typed columns and never parses anything per row.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO, NamedTuple

from xp import format as fmt
from xp.errors import ConfigError, GitError
from xp.gitstore.catfile import parse_tree, read_objects
from xp.gitstore.loose import LooseObjects
from xp.gitstore.repo import GitRepo
from xp.record import values, yamlio
from xp.record.fastyaml import load_flat
from xp.record.model import RunRecord

INVALID = "invalid"  # status of a run whose record cannot be read
_RECORD_FILES = (fmt.META_FILE, fmt.PARAMS_FILE, fmt.METRICS_FILE, fmt.TAGS_FILE)
_INT64 = 2**63
_INFINITIES = (math.inf, -math.inf)
_INF_JSON = json.dumps(values.metric_cell(math.inf))
_NEG_INF_JSON = json.dumps(values.metric_cell(-math.inf))
# json.dumps(shown, ensure_ascii=False, separators=(",", ":")), without building an encoder
# for every run of a cold build
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _epoch(value: Any) -> float | None:
    """Seconds since the epoch of a meta time, or None when it is no time (a record from
    anyone: any string, any year)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    try:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    try:
        return float(value) if values.is_number(value) else None
    except OverflowError:
        return None


@dataclass(frozen=True)
class RunRow:
    """One run as listed: attributes plus ``values`` keyed params.x / metrics.y / tags.z.

    ``ref`` is the ref the run is listed under (empty before the row is in the index);
    ``param_text`` holds each param's text form, which text comparisons in filters match.
    """

    run_id: str
    commit: str
    name: str
    experiment: str
    status: str
    start: float | None
    end: float | None
    duration: float | None
    baseline: str | None
    branch: str | None
    user: str | None
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    ref: str = ""
    param_text: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    parent: str | None = None  # the enclosing run's id (nested runs)
    message: str | None = None  # the run's description
    source: str | None = None  # the program that logged it: its command's first word


# A value as the index's ``vals`` table holds it: (key, num, txt). ``num`` is the number a
# numeric comparison sees (None for text, bools, null, lists and NaN), ``txt`` the text a
# text comparison sees (a param's text form, a tag, a non-numeric metric). A NaN metric is
# (None, None): it matches only ``= nan`` and sorts last.
Cell = tuple[str, Any, "str | None"]


def sql_number(value: float | int) -> float | int:
    """SQLite holds 64-bit integers; a bigger one compares as the float it is closest to, and
    one beyond the float range (a param may be ``10**400``) as the infinity of its sign."""
    if isinstance(value, float) or -_INT64 <= value < _INT64:
        return value
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def cells(record: RunRecord) -> list[Cell]:
    """Every param, metric and tag of ``record`` as the index stores it for filters/sorts."""
    return stored(record.id, "", record).cells


class Stored(NamedTuple):
    """One run as the index stores it: attributes, the display values as a JSON array in
    ``keys`` order, and the cells of ``vals``."""

    commit: str
    run_id: str
    name: str
    experiment: str
    status: str
    start: float | None
    end: float | None
    duration: float | None
    baseline: str | None
    branch: str | None
    user: str | None
    error: str | None
    keys: tuple[str, ...]
    doc: str
    cells: list[Cell]
    parent: str | None = None  # the enclosing run's id (nested runs)
    message: str | None = None  # the run's description
    source: str | None = None  # the program that logged it: its command's first word


def stored(run_id: str, commit: str, record: RunRecord) -> Stored:
    """``record`` as the index stores it: what ``row_from_record`` shows, plus its cells."""
    return _stored(
        run_id,
        commit,
        _Fields(
            record.name,
            record.experiment,
            record.status,
            record.meta,
            record.params,
            record.metrics,
            record.tags,
        ),
    )


class _Fields(NamedTuple):
    """What the index reads of a record: ``RunRecord``'s fields of the same names."""

    name: str
    experiment: str
    status: str
    meta: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, Any]
    tags: dict[str, str]


def _stored(run_id: str, commit: str, record: _Fields) -> Stored:
    meta = record.meta
    shown: list[Any] = []
    keys: list[str] = []
    out: list[Cell] = []
    is_number, text = values.is_number, values.text
    for k, v in record.params.items():
        key = "params." + k
        keys.append(key)
        kind = type(v)
        if kind is str:
            shown.append(v)
            out.append((key, None, v))
        elif kind is float and v - v == 0:  # finite: the text is its repr
            shown.append(v)
            out.append((key, v, repr(v)))
        elif kind is int:
            shown.append(v)
            out.append((key, sql_number(v), repr(v)))
        elif is_number(v):  # NaN and infinities: shown as text; an infinity compares
            shown.append(text(v))
            out.append((key, None if v != v else v, text(v)))
        else:  # bools, null, lists: text only
            shown.append(values.param_cell(v))
            out.append((key, None, text(v)))
    for k, v in record.metrics.items():
        key = "metrics." + k
        keys.append(key)
        if type(v) is float and v - v == 0:
            shown.append(v)
            out.append((key, v, None))
        elif not is_number(v):
            shown.append(text(v))
            out.append((key, None, text(v)))
        elif v != v:  # NaN: shown as null, matches only `= nan`
            shown.append(None)
            out.append((key, None, None))
        else:
            shown.append(values.metric_cell(v) if v in _INFINITIES else v)
            out.append((key, sql_number(v), None))
    for k, v in record.tags.items():
        key = "tags." + k
        keys.append(key)
        shown.append(v)
        out.append((key, None, v))
    doc = _doc(shown)
    start = _epoch(meta.get("start_time"))
    if start is None and fmt.ID_RE.match(run_id):
        start = float(fmt.id_time(run_id))
    baseline = meta.get("baseline")
    branch = meta.get("branch")
    user = meta.get("user")
    return Stored(
        commit,
        run_id,
        record.name,
        record.experiment,
        record.status,
        start,
        _epoch(meta.get("end_time")),
        _number(meta.get("duration")),
        str(baseline) if baseline else None,
        str(branch) if branch else None,
        str(user) if user else None,
        None,
        tuple(keys),
        doc,
        out,
        _text(meta.get("parent")),
        _text(meta.get("message")),
        _source(meta.get("command")),
    )


def _source(command: Any) -> str | None:
    """The program that logged a run: the first word of its recorded command."""
    return _text(command[0]) if isinstance(command, list) and command else None


def _doc(shown: list[Any]) -> str:
    """The display values as the JSON array ``Stored.doc`` holds."""
    doc = _encode(shown)
    if "xp-" in doc:  # JSON has no infinities; 1e999 reads back as one everywhere
        doc = doc.replace(_INF_JSON, "1e999").replace(_NEG_INF_JSON, "-1e999")
    return doc


def retagged(item: Stored, tags: dict[str, str], experiment: str) -> Stored:
    """``item`` with other tags and experiment (annotations made after the run): its display
    values and its cells alike, so filters and sorts see what ``xp show`` prints."""
    keys: list[str] = []
    shown: list[Any] = []
    for key, value in zip(item.keys, json.loads(item.doc), strict=True):
        if not key.startswith("tags."):
            keys.append(key)
            is_inf = type(value) is float and value in _INFINITIES  # 1e999 read back
            shown.append(values.metric_cell(value) if is_inf else value)
    out = [cell for cell in item.cells if not cell[0].startswith("tags.")]
    for k, v in tags.items():
        keys.append("tags." + k)
        shown.append(v)
        out.append(("tags." + k, None, v))
    return item._replace(experiment=experiment, keys=tuple(keys), doc=_doc(shown), cells=out)


def stored_error(run_id: str, commit: str, error: str) -> Stored:
    row = error_row(run_id, commit, error)
    return Stored(
        commit,
        run_id,
        "",
        "",
        INVALID,
        row.start,
        None,
        None,
        None,
        None,
        None,
        error,
        (),
        "[]",
        [],
    )


def row_from_record(run_id: str, commit: str, record: RunRecord) -> RunRow:
    meta = record.meta
    data: dict[str, Any] = {}
    for k, v in record.params.items():
        data[f"params.{k}"] = values.param_cell(v)
    for k, v in record.metrics.items():
        data[f"metrics.{k}"] = values.metric_cell(v)
    for k, v in record.tags.items():
        data[f"tags.{k}"] = v
    start = _epoch(meta.get("start_time"))
    if start is None and fmt.ID_RE.match(run_id):
        start = float(fmt.id_time(run_id))
    baseline = meta.get("baseline")
    branch = meta.get("branch")
    user = meta.get("user")
    return RunRow(
        run_id=run_id,
        commit=commit,
        name=record.name,
        experiment=record.experiment,
        status=record.status,
        start=start,
        end=_epoch(meta.get("end_time")),
        duration=_number(meta.get("duration")),
        baseline=str(baseline) if baseline else None,
        branch=str(branch) if branch else None,
        user=str(user) if user else None,
        values=data,
        param_text={k: values.text(v) for k, v in record.params.items()},
        parent=_text(meta.get("parent")),
        message=_text(meta.get("message")),
        source=_text(command[0])
        if isinstance(command := meta.get("command"), list) and command
        else None,
    )


def error_row(run_id: str, commit: str, error: str) -> RunRow:
    start = float(fmt.id_time(run_id)) if fmt.ID_RE.match(run_id) else None
    return RunRow(run_id, commit, "", "", INVALID, start, None, None, None, None, None, {}, error)


def _load(data: bytes, where: str, parsed: dict[bytes, Any]) -> Any:
    """A record file read with the fast YAML reader (PyYAML when it declines), under the
    record's limits; identical files (tags, params of a sweep) parse once."""
    value = parsed.get(data, _UNREAD)
    if value is _UNREAD:
        if len(parsed) > 20_000:
            parsed.clear()
        yamlio.check_size(data, where)
        value = load_flat(data)
        if value is None:
            value = yamlio.load_record(data, where)
        parsed[data] = value
    return value


_UNREAD = object()


def _record(read: Any, source: str, parsed: dict[bytes, Any]) -> RunRecord:
    """RunRecord.from_files with the fast YAML reader; identical files parse once."""

    def load_yaml(data: bytes, where: str) -> Any:
        return _load(data, where, parsed)

    return RunRecord.from_files(read, [], source, load_yaml=load_yaml)


_is_str = str.__instancecheck__  # what from_files' str(k) leaves as it is
_META_WHERE = f":{fmt.RECORD_DIR}/{fmt.META_FILE}"
_MAPPINGS = tuple((f, f":{fmt.RECORD_DIR}/{f}") for f in _RECORD_FILES[1:])


def _fields(
    source: str, content: dict[str, bytes | None], parsed: dict[bytes, Any]
) -> _Fields | None:
    """What ``RunRecord.from_files`` reads from a record folder of these files (what the index
    needs of it), without building the record, when every file is plainly what xp writes: a
    meta mapping with an id and a known format, string-keyed mappings within the entry limit.
    None otherwise: ``_record`` then reads it, and says what is wrong in its own words. A
    file past the limits raises here as it would there, in the same order."""
    data = content.get(fmt.META_FILE)
    if data is None:
        return None
    meta = _load(data, source + _META_WHERE, parsed)
    if type(meta) is not dict or "id" not in meta:
        return None
    version = meta.get("format", 1)
    if type(version) is not int or version > fmt.FORMAT_VERSION:
        return None
    found: list[dict[str, Any]] = []
    for name, where in _MAPPINGS:
        data = content.get(name)
        value = {} if data is None else _load(data, source + where, parsed)
        if value is None:
            value = {}
        elif (
            type(value) is not dict or len(value) > fmt.MAX_ENTRIES or not all(map(_is_str, value))
        ):
            return None
        found.append(value)
    params, metrics, tags = found
    if not all(map(_is_str, tags.values())):
        tags = {k: str(v) for k, v in tags.items()}
    return _Fields(
        str(meta.get("name", "")),
        str(meta.get("experiment") or "default"),
        str(meta.get("status", "finished")),
        meta,
        params,
        metrics,
        tags,
    )


def read_stored(
    run_id: str, commit: str, content: dict[str, bytes | None], parsed: dict[bytes, Any]
) -> Stored:
    """The stored form of the run whose record files are ``content`` (name -> bytes): what
    ``stored(run_id, commit, RunRecord.from_files(content.get, [], run_id))`` gives, or the
    same error, read faster; ``parsed`` is the cache of files read before."""
    fields = _fields(run_id, content, parsed)
    if fields is None:
        return stored(run_id, commit, _record(content.get, run_id, parsed))
    return _stored(run_id, commit, fields)


_GIVE_UP = 256  # runs in a row whose commit is not a loose object: stop trying loose reads
_TREE = 0o040000
_CACHED_BLOBS = 4096  # blobs kept by sha (identical tags or params files of a sweep)


def iter_rows(repo: GitRepo, wanted: dict[str, str]) -> Iterator[Stored]:
    """The stored form of each run {commit: run id}; an unreadable record becomes an error
    row. Runs whose objects are all loose files are read here (``gitstore.loose``: what
    ``git cat-file`` would spend most of its time opening), the rest from git, after them."""
    parsed: dict[bytes, Any] = {}  # identical files (tags, params of a sweep) parse once
    rest = wanted
    if wanted:
        rest = {}
        reader = LooseObjects(repo.objects_dir)
        blobs: dict[str, bytes] = {}
        misses = 0
        for commit, run_id in wanted.items():
            content = None if misses >= _GIVE_UP else _loose_record(reader, commit, blobs)
            if content is None:
                misses += 1
                rest[commit] = run_id
                continue
            misses = 0
            yield _read_one(run_id, commit, content, parsed)
    yield from _git_rows(repo, rest, parsed)


def _loose_record(
    reader: LooseObjects, commit: str, blobs: dict[str, bytes]
) -> dict[str, bytes | None] | None:
    """The record files of ``commit`` when it, its trees down to the record folder and the
    record files are all loose objects that read back exactly; None otherwise (then git is
    asked, and says the same or what is wrong, as it always did)."""
    got = reader.read(commit)
    if got is None or got[0] != b"commit":
        return None
    data = got[1]
    if data[:5] != b"tree " or data[45:46] != b"\n":
        return None
    tree = data[5:45].decode("ascii", "replace")
    for name in _RECORD_PATH:
        got = reader.read(tree)
        if got is None or got[0] != b"tree":
            return None
        try:  # as git reads it (a tree naming an entry twice: the last, as parse_tree)
            entry = parse_tree(got[1]).get(name)
        except (ValueError, IndexError):
            return None
        if entry is None or entry[0] != _TREE:
            return None
        tree = entry[1]
    got = reader.read(tree)
    if got is None or got[0] != b"tree":
        return None
    try:
        entries = parse_tree(got[1])
    except (ValueError, IndexError):
        return None
    content: dict[str, bytes | None] = {}
    for f in _RECORD_FILES:
        entry = entries.get(f)
        if entry is None:
            continue
        sha = entry[1]
        blob = blobs.get(sha)
        if blob is None:
            got = reader.read(sha)
            if got is None or got[0] != b"blob":
                return None
            blob = got[1]
            if len(blobs) >= _CACHED_BLOBS:
                blobs.clear()
            blobs[sha] = blob
        content[f] = blob
    return content


_RECORD_PATH = tuple(fmt.RECORD_DIR.split("/"))


def _read_one(
    run_id: str, commit: str, content: dict[str, bytes | None], parsed: dict[bytes, Any]
) -> Stored:
    """The stored form of one run's record files; whatever fails to read or to index (a
    record from anyone) is an error row."""
    try:
        return read_stored(run_id, commit, content, parsed)
    except (
        ConfigError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
    ) as exc:
        message = str(exc).splitlines()[0] if str(exc) else ""
        return stored_error(run_id, commit, message)


def _git_rows(repo: GitRepo, wanted: dict[str, str], parsed: dict[bytes, Any]) -> Iterator[Stored]:
    """``iter_rows`` through ``git cat-file --batch``. Two passes: the record folders, then
    their files."""
    if not wanted:
        return
    trees: dict[str, dict[str, str]] = {}
    for name, data in read_objects(repo, [f"{c}:{fmt.RECORD_DIR}" for c in wanted]):
        if data is not None:
            with contextlib.suppress(ValueError, IndexError):
                tree = parse_tree(data)
                trees[name.split(":", 1)[0]] = {
                    f: entry[1] for f in _RECORD_FILES if (entry := tree.get(f)) is not None
                }
    requests: list[str] = []
    seen: set[str] = set()
    for commit in wanted:
        for sha in trees.get(commit, {}).values():
            if sha not in seen:
                seen.add(sha)
                requests.append(sha)
    del seen
    blobs = read_objects(repo, requests)
    have: dict[str, bytes | None] = {}
    uses: dict[str, int] = {}
    for record_files in trees.values():
        for sha in record_files.values():
            uses[sha] = uses.get(sha, 0) + 1
    try:
        for commit, run_id in wanted.items():
            files = trees.get(commit)
            if files is None:
                yield stored_error(run_id, commit, f"commit {commit[:12]} has no run record")
                continue
            for sha in files.values():
                while sha not in have:  # blobs arrive in the order the runs need them
                    got, data = next(blobs)
                    have[got] = data
            content = {f: have[sha] for f, sha in files.items()}
            for sha in files.values():
                uses[sha] -= 1
                if not uses[sha]:
                    del have[sha]
            yield _read_one(run_id, commit, content, parsed)
    except StopIteration:
        raise GitError("git cat-file answered fewer objects than asked; run `git fsck`") from None
    finally:
        blobs.close()


def as_row(item: Stored, ref: str = "") -> RunRow:
    """The row a stored run reads back as."""
    return RunRow(
        run_id=item.run_id,
        commit=item.commit,
        name=item.name,
        experiment=item.experiment,
        status=item.status,
        start=item.start,
        end=item.end,
        duration=item.duration,
        baseline=item.baseline,
        branch=item.branch,
        user=item.user,
        values=dict(zip(item.keys, json.loads(item.doc), strict=True)),
        error=item.error,
        ref=ref,
        parent=item.parent,
        message=item.message,
        source=item.source,
    )


def read_rows(repo: GitRepo, wanted: dict[str, str]) -> list[RunRow]:
    """Rows for {commit: run id}, read in bulk; an unreadable record becomes an error row."""
    return [as_row(item) for item in iter_rows(repo, wanted)]


# Rows between the two processes of a big build (``build --rows``): frames of a 4-byte length
# and a ``marshal``led list of row tuples (plain str, float, int, None, tuples and lists: what
# marshal reads back exactly and fastest), written by the second process and stored by the
# first, so one process writes the index.
_FRAME_ROWS = 100
_FRAME_TEXT = 8 << 20  # or fewer runs: a frame of crafted records stays within ~8 MB of values


def write_frames(rows: Iterable[Stored], out: BinaryIO) -> int:
    """Write ``rows`` to ``out`` in frames; how many."""
    count = 0
    batch: list[tuple[Any, ...]] = []
    text = 0
    for item in rows:
        batch.append(tuple(item))
        text += len(item.doc)
        if len(batch) >= _FRAME_ROWS or text >= _FRAME_TEXT:
            count += _write_frame(batch, out)
            batch = []
            text = 0
    if batch:
        count += _write_frame(batch, out)
    out.flush()
    return count


def _write_frame(batch: list[tuple[Any, ...]], out: BinaryIO) -> int:
    data = marshal.dumps(batch)
    out.write(len(data).to_bytes(4, "little") + data)
    return len(batch)


class FrameReader:
    """The rows of frames read so far from a pipe; a frame cut short (the writer died) or
    damaged ends the reading: its runs are left for the caller to read itself."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.broken = False

    def feed(self, data: bytes) -> list[Stored]:
        """The rows of the frames ``data`` completes."""
        buffer = self._buffer
        buffer += data
        out: list[Stored] = []
        start = 0
        while not self.broken and len(buffer) - start >= 4:
            size = int.from_bytes(buffer[start : start + 4], "little")
            if len(buffer) - start - 4 < size:
                break
            try:
                out += [Stored(*row) for row in marshal.loads(buffer[start + 4 : start + 4 + size])]
            except (ValueError, EOFError, TypeError):
                self.broken = True
            start += 4 + size
        if self.broken:
            buffer.clear()
        else:
            del buffer[:start]
        return out
