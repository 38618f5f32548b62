from __future__ import annotations

import math

import pytest

from xp.record.model import FileEntry, RunRecord, final_value, flatten


def _record() -> RunRecord:
    return RunRecord(
        id="1ngmphm9x5c1q",
        name="baseline",
        status="finished",
        meta={"experiment": "default", "start_time": "2026-01-01T00:00:00.000Z"},
        params={"lr": 0.1, "model.depth": 3, "name": "rf", "flag": True, "layers": [64, 32]},
        metrics={"rmse": 0.25, "nan": math.nan, "inf": math.inf, "ninf": -math.inf},
        series={"train/loss": [(0, 1.0, 1000), (1, 0.5, 2000)]},
        tags={"team": "a"},
        artifacts=(FileEntry("model.pkl", "ab" * 32, 10),),
        inputs=(FileEntry("data", "cd" * 32, 100, files=3, kind="dir"),),
        packages=("pandas==2.2.0", "click==8.2.0"),
    )


def test_round_trip_keeps_every_value() -> None:
    files = _record().to_files()
    back = RunRecord.from_files(files.get, ["train/loss"])
    assert back.params == _record().params
    assert back.metrics["rmse"] == 0.25
    assert math.isnan(back.metrics["nan"])
    assert back.metrics["inf"] == math.inf
    assert back.metrics["ninf"] == -math.inf
    assert back.series["train/loss"] == [(0, 1.0, 1000), (1, 0.5, 2000)]
    assert back.artifacts == _record().artifacts
    assert back.inputs == _record().inputs
    assert back.packages == ("click==8.2.0", "pandas==2.2.0")


def test_same_data_gives_same_bytes() -> None:
    assert _record().to_files() == _record().to_files()
    files = _record().to_files()
    assert files["params.yaml"] == (
        b"flag: true\nlayers:\n- 64\n- 32\nlr: 0.1\nmodel.depth: 3\nname: rf\n"
    )
    assert files["series/train/loss.tsv"] == b"step\tvalue\ttimestamp\n0\t1.0\t1000\n1\t0.5\t2000\n"


def test_empty_parts_get_no_file() -> None:
    rec = RunRecord(id="x" * 13, name="n", status="finished", meta={})
    assert set(rec.to_files()) == {"meta.yaml"}


def test_final_value_is_the_highest_step_last_logged() -> None:
    assert final_value([(0, 1.0, 0), (5, 2.0, 0), (3, 9.0, 0), (5, 3.0, 0)]) == 3.0


def test_flatten_nested() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": {}}) == {"a.b": 1, "a.c.d": 2, "e": {}}


def test_media_index_round_trip_and_bytes() -> None:
    import pytest

    from xp.errors import ConfigError
    from xp.record.media import MediaEntry

    entries = (
        MediaEntry("samples", "image", "media/samples/1.png", 1, 2000, {"width": 3}),
        MediaEntry("samples", "image", "media/samples/0.png", 0, 1000, {"caption": "c"}),
        MediaEntry("plots/a.png", "figure", "plots/a.png", None, 5, {"format": "png"}),
    )
    rec = RunRecord(id="x" * 14, name="n", status="finished", meta={}, media=entries)
    files = rec.to_files()
    assert files["media.yaml"] == (
        b"- format: png\n  key: plots/a.png\n  kind: figure\n  path: plots/a.png\n  timestamp: 5\n"
        b"- caption: c\n  key: samples\n  kind: image\n  path: media/samples/0.png\n  step: 0\n"
        b"  timestamp: 1000\n"
        b"- key: samples\n  kind: image\n  path: media/samples/1.png\n  step: 1\n"
        b"  timestamp: 2000\n  width: 3\n"
    )
    back = RunRecord.from_files(files.get, [])
    assert sorted(back.media, key=lambda e: e.sort_key) == sorted(entries, key=lambda e: e.sort_key)
    files["media.yaml"] = b"- key: a\n  kind: image\n  path: p\n  step: one\n"
    with pytest.raises(ConfigError, match="integer step"):
        RunRecord.from_files(files.get, [])


def test_a_record_file_of_too_many_entries_is_refused_before_it_is_parsed() -> None:
    from xp import format as fmt
    from xp.errors import ConfigError
    from xp.record import yamlio

    at_limit = "".join(f"m{i}: {i}\n" for i in range(fmt.MAX_ENTRIES - 1)) + "l:\n- 1\n- 2\n"
    assert len(yamlio.load_record(at_limit.encode(), "metrics.yaml")) == fmt.MAX_ENTRIES
    too_many = at_limit + "one: more\n"
    with pytest.raises(ConfigError, match="10,001 entries"):
        yamlio.load_record(too_many.encode(), "metrics.yaml")
    with pytest.raises(ConfigError, match="10,001 entries"):
        yamlio.check_size(too_many.encode(), "metrics.yaml")  # the index's fast path checks it


def test_a_large_artifact_list_is_read_where_a_large_mapping_is_refused() -> None:
    from xp.errors import ConfigError
    from xp.record import yamlio

    entry = "- path: {n}/" + "d" * 2000 + "\n  sha256: " + "a" * 64 + "\n  size: 1\n"
    listing = "".join(entry.format(n=n) for n in range(2500)).encode()  # about 5 MB
    assert len(yamlio.load_record(listing, "r:.xp/run/artifacts.yaml")) == 2500
    with pytest.raises(ConfigError, match="4 MiB"):
        yamlio.load_record(b"t: '" + b"x" * (5 << 20) + b"'\n", "r:.xp/run/tags.yaml")
