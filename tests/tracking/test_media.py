"""Images, figures, tables, histograms and texts: stored as artifacts, indexed in media.yaml,
read back; and ``xp.log``'s shared step counter."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

import xp
from tests.helpers import git, invoke, spawned, wait_for
from xp.errors import InvalidKeyError, InvalidValueError, XPError


def _png_pixels(data: bytes) -> np.ndarray:
    """Decode the PNGs xp writes (8-bit, filter 0): enough to check the pixels survive."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    idat = b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = body
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, -1)
    assert depth == 8
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, channels)


def _artifact(run_id: str, path: str) -> bytes:
    return xp.read_artifact(run_id, path)


def test_image_series_by_key_and_step(repo: Path) -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    with xp.start_run() as run:
        xp.log_image(rgb, key="samples", step=0, caption="first")
        xp.log_image(rgb[::-1], key="samples")  # next step: 1
        xp.log_image(rgb, key="samples", step=7)
    got = xp.get_run(run.id)
    paths = [e.path for e in xp.get_media(got, "samples")]
    assert paths == ["media/samples/0.png", "media/samples/1.png", "media/samples/7.png"]
    first = xp.get_media(got, "samples")[0]
    assert (first.kind, first.step, first.info["caption"]) == ("image", 0, "first")
    assert (first.info["width"], first.info["height"], first.info["mode"]) == (3, 2, "RGB")
    assert (_png_pixels(_artifact(run.id, "media/samples/0.png")) == rgb).all()
    assert (_png_pixels(_artifact(run.id, "media/samples/1.png")) == rgb[::-1]).all()
    # the same pixels are the same bytes, so one object in the cache
    shas = {a.path: a.sha256 for a in got.artifacts}
    assert shas["media/samples/0.png"] == shas["media/samples/7.png"]
    index = git(repo, "show", f"refs/xp/runs/{run.id}:.xp/run/media.yaml")
    assert "key: samples\n" in index
    assert "kind: image\n" in index
    assert "step: 7\n" in index


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (np.array([[0.0, 0.5], [1.0, 0.25]]), [[0, 128], [255, 64]]),  # floats are 0..1
        (np.array([[-5, 300]]), [[0, 255]]),  # other integers are clipped
        (np.array([[True, False]]), [[255, 0]]),
    ],
)
def test_grey_images_scale_like_tensorboard(
    repo: Path, image: np.ndarray, expected: list[list[int]]
) -> None:
    with xp.start_run() as run:
        entry = xp.log_image(image, key="g", step=0)
    assert entry.info["mode"] == "L"
    pixels = _png_pixels(_artifact(run.id, "media/g/0.png"))[:, :, 0]
    assert pixels.tolist() == expected


def test_channels_first_is_moved_last(repo: Path) -> None:
    chw = np.zeros((3, 4, 5), dtype=np.uint8)
    chw[0] = 255  # red
    with xp.start_run() as run:
        entry = xp.log_image(chw, "red.png")
    assert (entry.key, entry.step, entry.path) == ("red.png", None, "red.png")
    pixels = _png_pixels(_artifact(run.id, "red.png"))
    assert pixels.shape == (4, 5, 3)
    assert (pixels[:, :, 0] == 255).all()
    assert (pixels[:, :, 1:] == 0).all()


def test_image_file_is_stored_as_it_is(repo: Path) -> None:
    with xp.start_run() as run:
        xp.log_image(np.zeros((2, 2), dtype=np.uint8), "a.png")
    data = _artifact(run.id, "a.png")
    (repo / "pic.png").write_bytes(data)
    with xp.start_run() as run2:
        entry = xp.log_image(repo / "pic.png", key="pics", step=3)
    assert entry.path == "media/pics/3.png"
    assert (entry.info["width"], entry.info["height"]) == (2, 2)
    assert _artifact(run2.id, "media/pics/3.png") == data


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 2, 7)), np.zeros((0, 3)), np.zeros((2, 2, 2, 2)), np.array([[np.nan]])],
    ids=["7-channels", "empty", "4-d", "nan"],
)
def test_bad_images_are_refused_and_the_run_goes_on(repo: Path, bad: np.ndarray) -> None:
    with xp.start_run() as run:
        with pytest.raises(InvalidValueError) as err:
            xp.log_image(bad, key="x")
        assert "\n" not in str(err.value)
        xp.log_metric("after", 1)
    got = xp.get_run(run.id)
    assert got.metrics == {"after": 1}
    assert got.record.media == ()


def test_media_keys_follow_the_key_rule(repo: Path) -> None:
    with xp.start_run():
        with pytest.raises(InvalidKeyError):
            xp.log_image(np.zeros((1, 1)), key="../up")
        with pytest.raises(InvalidValueError, match="key="):
            xp.log_image(np.zeros((1, 1)))
        with pytest.raises(InvalidValueError, match="step"):
            xp.log_image(np.zeros((1, 1)), key="a", step=1.5)  # type: ignore[arg-type]


def test_histograms_per_step(repo: Path) -> None:
    values = np.array([0.0, 1.0, 1.0, 2.0, 3.0, np.nan, np.inf])
    with xp.start_run() as run:
        xp.log_histogram(values, "weights/w1", step=0, bins=3)
        xp.log_histogram(np_histogram=([1, 2], [0.0, 0.5, 1.0]), key="weights/w1", step=5)
    got = xp.get_run(run.id)
    entries = xp.get_media(got, kind="histogram")
    assert [(e.key, e.step) for e in entries] == [("weights/w1", 0), ("weights/w1", 5)]
    body = json.loads(_artifact(run.id, "media/weights/w1/0.json"))
    assert body == {"bins": [0.0, 1.0, 2.0, 3.0], "counts": [1, 2, 2], "dropped": 2}
    assert entries[0].info["count"] == 5
    assert entries[0].info["dropped"] == 2
    assert json.loads(_artifact(run.id, "media/weights/w1/5.json"))["counts"] == [1, 2]
    with xp.start_run(), pytest.raises(InvalidValueError, match="one more edge"):
        xp.log_histogram(np_histogram=([1, 2], [0.0, 1.0]), key="h")


def test_text_series_and_mlflow_log_text(repo: Path) -> None:
    with xp.start_run() as run:
        xp.log_text("hello", "notes/readme.txt")  # MLflow's form: one file, no index entry
        xp.log_text("sample at 0", key="samples", step=0)
        xp.log_text("sample at 1", "samples.txt", step=1)  # a name with a step is the key
    got = xp.get_run(run.id)
    assert _artifact(run.id, "notes/readme.txt") == b"hello"
    assert [(e.path, e.kind) for e in got.record.media] == [
        ("media/samples/0.txt", "text"),
        ("media/samples/1.txt", "text"),
    ]
    assert _artifact(run.id, "media/samples/1.txt") == b"sample at 1"


def test_csv_table_round_trip(repo: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"name": ["a", "b"], "score": [0.1, 1e-300], "n": [1, 2]})
    with xp.start_run() as run:
        xp.log_table(frame, key="preds", step=2, format="csv")
        xp.log_table({"x": [1, 2, 3]}, "tables/x.csv")
    back = xp.load_table(run.id, "preds")
    pd.testing.assert_frame_equal(back, frame)
    assert xp.load_table(run.id, "tables/x.csv")["x"].tolist() == [1, 2, 3]
    entry = xp.get_media(run.id, "preds")[0]
    assert entry.info == {"format": "csv", "rows": 2, "columns": 3}
    with pytest.raises(XPError, match="no table 'preds' at step 9"):
        xp.load_table(run.id, "preds", step=9)
    with xp.start_run(), pytest.raises(InvalidValueError, match="DataFrame"):
        xp.log_table(42, key="t")


def test_log_shares_one_step_counter(repo: Path) -> None:
    with xp.start_run() as run:
        xp.log({"loss": 1.0, "acc": 0.1})
        xp.log({"loss": 0.5, "val": {"loss": 0.7}})
        xp.log({"acc": 0.9}, step=10)
        xp.log({"loss": 0.2})  # the counter continues after an explicit step
        with pytest.raises(InvalidValueError):
            xp.log({"loss": 0.1}, step="3")  # type: ignore[arg-type]
    got = xp.get_run(run.id)
    assert [(s, v) for s, v, _ in got.record.series["loss"]] == [(0, 1.0), (1, 0.5), (11, 0.2)]
    assert [(s, v) for s, v, _ in got.record.series["acc"]] == [(0, 0.1), (10, 0.9)]
    assert got.metrics["val/loss"] == 0.7


def test_media_survive_a_crash(repo: Path) -> None:
    """The index entry is journaled like a metric: a SIGKILLed run keeps its images."""
    script = repo / "victim.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time, numpy as np, xp
            run = xp.start_run(name="victim")
            xp.log_image(np.full((2, 2), 7, dtype=np.uint8), key="img", step=4)
            print(run.id, flush=True)
            time.sleep(600)
            """
        )
    )
    with spawned(
        [sys.executable, str(script)], cwd=repo, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        journal = repo / ".git" / "xp" / "journal" / f"{run_id}.journal"
        wait_for(lambda: b"\nG\t" in journal.read_bytes() if journal.exists() else False, "G")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert invoke("recover").exit_code == 0
    got = xp.get_run(run_id)
    assert got.status == "crashed"
    assert [(e.key, e.step) for e in got.record.media] == [("img", 4)]
    assert (_png_pixels(_artifact(run_id, "media/img/4.png")) == 7).all()


@pytest.mark.framework
def test_pil_reads_what_xp_writes_and_xp_reads_pil(repo: Path) -> None:
    image_mod = pytest.importorskip("PIL.Image")
    rgba = np.random.default_rng(0).integers(0, 256, (5, 4, 4), dtype=np.uint8)
    with xp.start_run() as run:
        xp.log_image(rgba, key="a", step=0)
        xp.log_image(image_mod.fromarray(rgba), key="b", step=0)
        xp.log_image(image_mod.fromarray(rgba).convert("P"), key="c", step=0)  # palette: RGB
    got = xp.get_run(run.id)
    shas = {a.path: a.sha256 for a in got.artifacts}
    assert shas["media/a/0.png"] == shas["media/b/0.png"]  # same pixels, same bytes
    (repo / "back.png").write_bytes(_artifact(run.id, "media/a/0.png"))
    assert (np.asarray(image_mod.open(repo / "back.png")) == rgba).all()
    assert xp.get_media(got, "c")[0].info["mode"] == "RGB"


@pytest.mark.framework
def test_figures_and_parquet_tables(repo: Path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("pyarrow")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    ax.plot([1, 2, 3])
    frame = pd.DataFrame(
        {
            "i": np.array([1, 2], dtype=np.int64),
            "f": [0.1, 1e-300],
            "s": ["x", None],
            "b": [True, False],
            "t": pd.to_datetime(["2026-01-01", "2026-01-02"]),
        }
    )
    with xp.start_run() as run:
        first = xp.log_figure(fig, key="curve", step=0)
        again = xp.log_figure(fig, key="curve", step=1)
        svg = xp.log_figure(fig, "curve.svg")
        xp.log_figure(ax, key="from-axes", step=0)
        xp.log_table(frame, key="t")
    plt.close(fig)
    got = xp.get_run(run.id)
    shas = {a.path: a.sha256 for a in got.artifacts}
    assert shas["media/curve/0.png"] == shas["media/curve/1.png"]  # no date stamp in the PNG
    assert (first.info["width"], first.info["height"]) == (100, 50)
    assert again.kind == "figure"
    assert svg.info["format"] == "svg"
    assert _artifact(run.id, "curve.svg").startswith(b"<?xml")
    pd.testing.assert_frame_equal(xp.load_table(run.id, "t"), frame)
    assert xp.get_media(got, "t")[0].info["format"] == "parquet"


@pytest.mark.framework
def test_plotly_figures_are_html(repo: Path) -> None:
    go = pytest.importorskip("plotly.graph_objects")
    with xp.start_run() as run:
        entry = xp.log_figure(go.Figure(data=[go.Bar(y=[1, 2])]), key="bars", step=0)
    assert entry.path == "media/bars/0.html"
    assert b"plotly" in _artifact(run.id, entry.path)


def test_log_figure_refuses_what_is_not_a_figure(repo: Path) -> None:
    with xp.start_run(), pytest.raises(InvalidValueError, match="log_image"):
        xp.log_figure(np.zeros((2, 2)), key="f")
