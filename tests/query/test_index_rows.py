"""The index reads a record's files its own fast way (``rows.read_stored``: the fast YAML
reader, no ``RunRecord``) and must store exactly what the plain way stores:
``stored(RunRecord.from_files(...))`` with PyYAML under the record's rules (``load_record``),
or fail with the same error. Differential tests on what xp writes, on arbitrary lines, and on
hostile files."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.record.test_fastyaml import HOSTILE, lines, scalars, simple_keys, simple_values, texts
from xp import format as fmt
from xp.errors import ConfigError
from xp.query.index import rows
from xp.record import yamlio
from xp.record.model import RunRecord

FILES = (fmt.META_FILE, fmt.PARAMS_FILE, fmt.METRICS_FILE, fmt.TAGS_FILE)
ERRORS = (ConfigError, KeyError, TypeError, ValueError, AttributeError, OverflowError)


def outcome(read: Any) -> tuple[str, str]:
    try:
        return "row", repr(read())  # repr: NaN equals NaN, -0.0 is not 0.0
    except ERRORS as exc:
        return type(exc).__name__, str(exc)


def assert_same(content: dict[str, bytes | None]) -> None:
    plain = outcome(lambda: rows.stored("r1", "c1", RunRecord.from_files(content.get, [], "r1")))
    parsed: dict[bytes, Any] = {}
    fast = outcome(lambda: rows.read_stored("r1", "c1", content, parsed))
    assert fast == plain, content
    assert outcome(lambda: rows.read_stored("r1", "c1", content, parsed)) == plain  # cached


values = scalars | st.lists(scalars, max_size=3) | simple_values
mappings = st.dictionaries(st.text(min_size=1, max_size=10) | simple_keys, values, max_size=6)
metas = st.fixed_dictionaries(
    {"id": st.just("1hf7yat00d68xj") | texts},
    optional={
        "name": texts,
        "status": st.sampled_from(["finished", "failed"]) | texts,
        "experiment": texts | st.none(),
        "format": st.sampled_from([1, 2, 3, True, "2"]),
        "start_time": st.sampled_from(["2023-11-14T22:13:20.000Z", "2023-11-14", "x"]) | texts,
        "end_time": st.sampled_from(["2023-11-14T22:13:50.000Z"]) | texts,
        "duration": values,
        "command": st.lists(texts, max_size=2) | values,
        "parent": values,
        "baseline": values,
    },
)
written = st.builds(yamlio.dump, mappings)
raw = st.lists(lines, max_size=5).map(lambda b: "\n".join(b).encode("utf-8", "surrogatepass"))
files = written | raw | st.sampled_from([t.encode() for t in HOSTILE]) | st.just(b"")


@settings(max_examples=300, deadline=None)
@given(
    st.builds(yamlio.dump, metas) | files,
    st.none() | files,
    st.none() | files,
    st.none() | files,
)
def test_the_index_stores_what_the_record_says(
    meta: bytes, params: bytes | None, metrics: bytes | None, tags: bytes | None
) -> None:
    assert_same(dict(zip(FILES, (meta, params, metrics, tags), strict=True)))


@settings(max_examples=200, deadline=None)
@given(metas, mappings, mappings, st.dictionaries(simple_keys, texts, max_size=4))
def test_records_xp_writes_are_stored_as_they_read(
    meta: dict[str, Any], params: dict[str, Any], metrics: dict[str, Any], tags: dict[str, str]
) -> None:
    assert_same(
        {
            fmt.META_FILE: yamlio.dump(meta),
            fmt.PARAMS_FILE: yamlio.dump(params),
            fmt.METRICS_FILE: yamlio.dump(metrics),
            fmt.TAGS_FILE: yamlio.dump(tags),
        }
    )


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("text", [*HOSTILE, "- a\n- b\n", "null\n", "1.5\n", "{}\n"])
def test_a_hostile_file_is_refused_or_read_as_the_plain_reader_does(name: str, text: str) -> None:
    content: dict[str, bytes | None] = {
        fmt.META_FILE: b"id: 1hf7yat00d68xj\nname: run-1\n",
        fmt.PARAMS_FILE: b"lr: 0.1\n",
        fmt.METRICS_FILE: b"acc: 0.5\n",
        fmt.TAGS_FILE: b"team: vision\n",
    }
    content[name] = text.encode()
    assert_same(content)


def test_over_the_size_and_entry_limits_is_the_same_error() -> None:
    many = "".join(f"k{i}: {i}.5\n" for i in range(fmt.MAX_ENTRIES + 1)).encode()
    big = b"a: '" + b"x" * fmt.MAX_RECORD_FILE + b"'\n"
    for data in (many, big):
        assert_same({fmt.META_FILE: b"id: r1\n", fmt.PARAMS_FILE: data})
        assert_same({fmt.META_FILE: data})


def test_xps_own_records_take_the_fast_path() -> None:
    record = RunRecord(
        id="1hf7yat00d68xj",
        name="run-1",
        status="finished",
        meta={"start_time": "2023-11-14T22:13:20.000Z", "command": ["python", "train.py"]},
        params={"lr": 0.001, "optimizer": "adam", "layers": 3},
        metrics={"acc": 0.91},
        tags={"team": "vision"},
    )
    content: dict[str, bytes | None] = {
        k: v for k, v in record.to_files().items() if isinstance(v, bytes) and k in FILES
    }
    assert rows._fields("r1", content, {}) is not None
    assert_same(content)
