"""The on-disk contract in code: every name here is documented in docs/format.md.

Changing anything in this module changes the format: bump FORMAT_VERSION and say why.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from xp.errors import InvalidKeyError, InvalidValueError

# 2: runs are published on git remotes in catalog buckets (refs/xp/catalog/<bb>), not one ref
# each (issue 14; docs/format.md, section 1). An xp that reads only 1 refuses a format-2 project.
FORMAT_VERSION = 2
CATALOG_FORMAT = 2  # the first project format whose runs a git remote holds in the catalog
# What a run record's meta.yaml says: records did not change in format 2, so a new xp in a
# format-1 project still writes runs an older xp reads.
RECORD_FORMAT = 1

RUNS_PREFIX = "refs/xp/runs/"
REMOTES_PREFIX = "refs/xp/remotes/"
MONITORING_PREFIX = "refs/xp/monitoring/"  # + writer id: one append-only chain per clone
NOTES_REF = "refs/notes/xp"  # annotations: tags, notes and moves made after the fact
CATALOG_PREFIX = "refs/xp/catalog/"  # + bucket: the runs a git remote holds (format 2)
CATALOG_BUCKETS = 256  # bucket = low byte of crc32(run id), 2 hex digits
DELETED_PREFIX = "refs/xp/deleted/runs/"  # runs deleted through MLflow's API, restorable
EXPERIMENTS_REF = "refs/xp/experiments"  # experiments made through MLflow's API
EXPERIMENTS_FILE = "experiments.yaml"
RECORD_DIR = ".xp/run"
CONFIG_PATH = ".xp/config.yaml"

META_FILE = "meta.yaml"
PARAMS_FILE = "params.yaml"
METRICS_FILE = "metrics.yaml"
TAGS_FILE = "tags.yaml"
ARTIFACTS_FILE = "artifacts.yaml"
INPUTS_FILE = "inputs.yaml"
PACKAGES_FILE = "packages.txt"
MEDIA_FILE = "media.yaml"  # the index of logged images, figures, tables, histograms, texts
MEDIA_DIR = "media"  # artifact folder of keyed media: media/<key>/<step>.<ext>
MEDIA_KINDS = ("image", "figure", "table", "histogram", "text")
DATASETS_FILE = "datasets.yaml"  # MLflow datasets (log_input of an mlflow.data dataset)
MODELS_FILE = "models.yaml"  # MLflow logged models, whose files are artifacts of the run
SERIES_DIR = "series"
SERIES_HEADER = "step\tvalue\ttimestamp\n"

STATUSES = ("running", "finished", "failed", "killed", "crashed")
END_STATUSES = STATUSES[1:]  # what a run can end with

RUN_LOG_ARTIFACT = "logs/xp-run.log"  # the output `xp run` captured
OUTPUT_SUFFIX = ".out"  # <journal dir>/<id>.out: that output while the run is live


def output_spool(journal_dir: os.PathLike[str] | str, run_id: str) -> Path:
    """The file a live ``xp run`` streams its command's output to; becomes the run's
    ``RUN_LOG_ARTIFACT`` (at the end, or when recovery commits a killed run)."""
    return Path(journal_dir) / f"{run_id}{OUTPUT_SUFFIX}"


# Crockford's base32, lower case: no i, l, o, u, so ids read aloud and type without ambiguity.
_B32 = "0123456789abcdefghjkmnpqrstvwxyz"
ID_TIME_CHARS = 9  # milliseconds since the Unix epoch: sortable until the year 3084
ID_RAND_CHARS = 5  # 25 random bits: a collision needs the same millisecond and the same draw
ID_LENGTH = ID_TIME_CHARS + ID_RAND_CHARS
ID_RE = re.compile(rf"^[{_B32}]{{{ID_LENGTH}}}$")
# What a ref may end in to name a run: xp's ids, and any other short, plain name (a fetched
# ref named `café` or with bytes that are not UTF-8 is not a run: it is ignored).
_REF_ID_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}\Z")

# Monitoring points (docs/format.md, section 10): chunks of at most POINTS_PER_CHUNK lines.
POINTS_HEADER = "window_end\tmetric\tvalue\ttags\n"
POINTS_PER_CHUNK = 500

# Offline bundles (docs/format.md, section 11): one tar file, read back by `xp bundle import`.
BUNDLE_FORMAT = 1
BUNDLE_MANIFEST = "xp-bundle/manifest.yaml"
BUNDLE_GIT = "xp-bundle/runs.bundle"
BUNDLE_OBJECTS = "xp-bundle/objects/"  # + sha256 of the artifact's bytes
BUNDLE_REMOTE = "bundle"  # imported runs land in refs/xp/remotes/bundle/runs/<id>

MAX_KEY_LENGTH = 250
MAX_NAME_LENGTH = 250  # run and experiment names
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
MAX_ENTRIES = 10_000  # params, metrics (and so series files), tags: per run, written and read
MAX_RECORD_FILE = 4 << 20  # bytes of one YAML record file; a larger one makes the run invalid
MAX_LIST_FILE = 64 << 20  # artifacts/inputs/media.yaml: a logged folder of 100,000s of files
MAX_RECORD_DEPTH = 8  # YAML nesting: meta.yaml holds a GPU list of mappings; a bomb needs 1000s
_KEY_RE = re.compile(r"^[/\w.\- :]*$")
# C0 and C1 controls and DEL: never in a name (a NUL in a commit message fails `git fsck`).
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")


def _b32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(_B32[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_last_ms = 0


def new_run_id(now: float | None = None) -> str:
    """Time-sortable, coordination-free id: 9 chars of milliseconds, then 5 random chars.

    Within one process the millisecond part never repeats or goes back (as ULID's monotonic
    mode), so ids made one after another sort in the order they were made.
    """
    global _last_ms
    ms = int((time.time() if now is None else now) * 1000)
    if now is None:
        ms = _last_ms = max(ms, _last_ms + 1)
    rand = int.from_bytes(os.urandom(4), "big") >> 7
    return _b32(ms, ID_TIME_CHARS) + _b32(rand, ID_RAND_CHARS)


def derived_run_id(ms: int, seed: str) -> str:
    """The id of a run that copies a run of another tracker (an imported MLflow run): its
    start time, then 25 bits of the sha256 of ``seed`` (the other tracker's id), so the same
    run always gets the same id, in every clone (docs/format.md, section 14)."""
    import hashlib

    rand = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:4], "big") >> 7
    return _b32(max(0, ms), ID_TIME_CHARS) + _b32(rand, ID_RAND_CHARS)


def id_time(run_id: str) -> float:
    """Seconds since the epoch (to the millisecond) encoded in a run id."""
    value = 0
    for ch in run_id[:ID_TIME_CHARS]:
        value = value * 32 + _B32.index(ch)
    return value / 1000


def run_ref(run_id: str) -> str:
    return RUNS_PREFIX + run_id


def end_status(status: object) -> str:
    """A status a run can end with, in any case (MLflow's ``FAILED`` is ``failed``)."""
    text = status.strip().lower() if isinstance(status, str) else None
    if text not in END_STATUSES:
        raise InvalidValueError(
            f"status {status!r} is not one of {', '.join(END_STATUSES)} (any case);"
            " end the run with one of those"
        )
    return text


@dataclass(frozen=True, order=True)
class RunRef:
    """A ref that holds a run: ``refs/xp/runs/<id>`` here, or a copy fetched from a git
    remote, ``refs/xp/remotes/<remote>/runs/<id>``. Parse with ``RunRef.parse``; ``str()``
    gives the ref name back (DVC's ``ExpRefInfo`` is the model)."""

    id: str
    remote: str | None = None

    @classmethod
    def parse(cls, ref: str) -> RunRef | None:
        """The run ref ``ref`` names, or None when it is not a run ref."""
        if ref.startswith(RUNS_PREFIX):
            run_id = ref[len(RUNS_PREFIX) :]
            return cls(run_id) if _REF_ID_RE.match(run_id) else None
        if ref.startswith(REMOTES_PREFIX):
            remote, sep, run_id = ref[len(REMOTES_PREFIX) :].rpartition("/runs/")
            if sep and remote.isprintable() and remote.isascii() and _REF_ID_RE.match(run_id):
                return cls(run_id, remote)
        return None

    @staticmethod
    def prefix(remote: str | None = None) -> str:
        """``refs/xp/runs/``, or the prefix of runs fetched from ``remote``."""
        return RUNS_PREFIX if remote is None else f"{REMOTES_PREFIX}{remote}/runs/"

    @property
    def is_local(self) -> bool:
        return self.remote is None

    @property
    def local(self) -> RunRef:
        """The same run under ``refs/xp/runs/`` (where it lives in the clone that made it)."""
        return RunRef(self.id)

    def __str__(self) -> str:
        return self.prefix(self.remote) + self.id


def bucket_of(run_id: str) -> str:
    """The catalog bucket a run is listed in: the low byte of the CRC-32 of its id, as 2 hex
    digits, so writers spread evenly over ``CATALOG_BUCKETS`` refs whatever their ids look
    like (CRC-32: zlib is loaded anyway, hashlib would cost ``xp tag`` OpenSSL)."""
    import zlib

    return f"{zlib.crc32(run_id.encode('utf-8', 'surrogateescape')) & 0xFF:02x}"


def is_run_id(name: str) -> bool:
    """A name that can stand for a run in a ref or a catalog entry."""
    return bool(_REF_ID_RE.match(name))


def catalog_prefix(remote: str | None = None) -> str:
    """``refs/xp/catalog/`` (on a git remote), or where a clone keeps a remote's buckets."""
    return CATALOG_PREFIX if remote is None else f"{REMOTES_PREFIX}{remote}/catalog/"


def monitoring_prefix(remote: str | None = None) -> str:
    """``refs/xp/monitoring/``, or where the chains fetched from ``remote`` land."""
    return MONITORING_PREFIX if remote is None else f"{REMOTES_PREFIX}{remote}/monitoring/"


def notes_ref(remote: str | None = None) -> str:
    """``refs/notes/xp``, or where the annotations fetched from ``remote`` land."""
    return NOTES_REF if remote is None else f"{REMOTES_PREFIX}{remote}/notes"


def validate_key(key: object, what: str = "key") -> str:
    """MLflow's key rule: the keys become file paths, so they must be clean relative paths."""
    if not isinstance(key, str):
        raise InvalidKeyError(f"{what} must be a string, got {type(key).__name__} {key!r}")
    if not key:
        raise InvalidKeyError(f"{what} must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"{what} {key[:40]!r}... is {len(key)} characters; the limit is {MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.match(key):
        raise InvalidKeyError(
            f"{what} {key!r} has characters outside letters, digits, '_', '-', '.', ' ', ':', '/';"
            " rename it"
        )
    parts = key.split("/")
    if any(p in ("", ".", "..") or p != p.strip() for p in parts):
        raise InvalidKeyError(
            f"{what} {key!r} is not a clean path (empty, '.', '..' or space-padded parts);"
            " rename it, e.g. 'train/loss'"
        )
    return key


def validate_metric_key(key: object) -> str:
    """A metric name: a key whose folders do not end in ``.tsv``.

    The series of ``x`` is the file ``series/x.tsv``; a metric ``x.tsv/y`` would need a folder
    of that name. Refusing the folder spelling keeps every pair of names storable, whatever
    other process logs into the run."""
    name = validate_key(key, "metric name")
    if "/" in name and any(p.endswith(".tsv") for p in name.split("/")[:-1]):
        raise InvalidKeyError(
            f"metric name {name!r} has a folder ending in '.tsv', which series files use;"
            " rename it, e.g. " + repr(name.replace(".tsv/", "_tsv/"))
        )
    return name


def validate_name(name: object, what: str = "run name") -> str:
    """A run or experiment name: one line of printable, valid Unicode text."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidValueError(f"{what} must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidValueError(
            f"{what} {name[:40]!r}... is {len(name)} characters; the limit is {MAX_NAME_LENGTH}"
        )
    bad = _CONTROL_RE.search(name)
    if bad is not None:
        raise InvalidValueError(
            f"{what} {name!r} has a control character ({bad.group()!r}); use one line of"
            " printable text"
        )
    check_text(name, what)
    return name


def check_text(text: str, what: str) -> str:
    """``text`` if it can be written as UTF-8; a lone surrogate (from a file name or an
    argument in a non-UTF-8 locale) cannot, and is refused with the way to fix it."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidValueError(
                f"{what} has {text[exc.start]!r} at position {exc.start}, which is not valid"
                " Unicode (undecodable bytes of a file name or argument); pass text, e.g."
                " os.fsencode(value).decode('utf-8', 'replace')"
            ) from None
    return text


def escape_text(text: str) -> str:
    """``text`` with undecodable bytes written as ``\\xNN`` (and other lone surrogates as
    ``\\udNNN``): for strings xp records without being asked (command line, paths), which it
    cannot refuse."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


# The tag a nested run gets naming its parent's id (docs/format.md, reserved names).
PARENT_TAG = "xp.parent"
