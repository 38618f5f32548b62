"""Turning what people log (arrays, PIL images, figures, DataFrames, values) into file bytes.

Each encoder returns the bytes, the file extension and a few facts for the media index
(``record/media.py``). Same input, same bytes: images are PNG written here from the pixels
(zlib, no timestamps), figures are saved without the date and software stamps, so logging
the same picture twice stores one object. numpy comes with pandas; matplotlib, plotly,
Pillow and pyarrow are only imported when the value logged is one of theirs.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xp.errors import InvalidValueError, missing_extra

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

IMAGE_FILE_TYPES = ("png", "jpg", "jpeg", "gif", "webp", "bmp", "svg")
FIGURE_FORMATS = ("png", "svg", "pdf")
TABLE_FORMATS = ("parquet", "csv")
DEFAULT_BINS = 64  # W&B's default; TensorBoard uses ~30 buckets spread exponentially


@dataclass(frozen=True)
class Encoded:
    """A media file ready to store: its bytes, extension and index facts."""

    data: bytes
    ext: str
    info: dict[str, Any] = field(default_factory=dict)


# -- images ---------------------------------------------------------------------------------
_MODES = {1: ("L", 0), 2: ("LA", 4), 3: ("RGB", 2), 4: ("RGBA", 6)}  # channels -> mode, PNG type


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit PNG of ``pixels`` (H x W x C uint8, C in 1-4): the format's bare minimum,
    so the bytes depend on the pixels alone."""
    height, width, channels = pixels.shape
    color_type = _MODES[channels][1]
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    rows = pixels.reshape(height, width * channels)
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(height))  # filter 0 per row
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def image_pixels(image: Any) -> np.ndarray:
    """H x W x C uint8 pixels from a numpy array, a tensor or a PIL image.

    Conventions of TensorBoard and W&B: 2-D is grey; a first axis of 1, 3 or 4 with a last
    axis that is not is channels-first (CHW, PyTorch's layout); floats are 0..1 and are scaled
    to 0..255; other integers are clipped to 0..255.
    """
    import numpy as np

    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    elif hasattr(image, "getbands") and hasattr(image, "convert"):  # a PIL image
        if image.mode not in ("L", "LA", "RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        image = np.asarray(image)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 2, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[-1] not in _MODES or 0 in arr.shape:
        raise InvalidValueError(
            f"an image must be H x W, H x W x C or C x H x W with C in 1-4 channels, got shape"
            f" {arr.shape}; reshape it"
        )
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InvalidValueError("an image has NaN or infinite pixels; clean them first")
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    elif arr.dtype.kind in "iu":
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    else:
        raise InvalidValueError(f"image pixels must be numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def encode_image(image: Any, caption: str | None = None) -> Encoded:
    """PNG from pixels, or a picture file's bytes as they are (``path``)."""
    info: dict[str, Any] = {}
    if caption is not None:
        info["caption"] = str(caption)
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        ext = path.suffix.lower().lstrip(".")
        if ext not in IMAGE_FILE_TYPES:
            raise InvalidValueError(
                f"image file {os.fspath(image)!r} is not one of {', '.join(IMAGE_FILE_TYPES)};"
                " convert it, or log it with log_artifact"
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidValueError(
                f"cannot read image {os.fspath(image)!r}: {exc.strerror}"
            ) from None
        if ext == "png" and data[12:16] == b"IHDR":
            info.update(zip(("width", "height"), struct.unpack(">II", data[16:24]), strict=True))
        return Encoded(data, "jpg" if ext == "jpeg" else ext, info)
    pixels = image_pixels(image)
    height, width, channels = pixels.shape
    info.update(width=width, height=height, mode=_MODES[channels][0])
    return Encoded(png_bytes(pixels), "png", info)


# -- figures --------------------------------------------------------------------------------
def encode_figure(figure: Any, file_format: str | None = None) -> Encoded:
    """A matplotlib figure as PNG (SVG, PDF by ``file_format``), a plotly figure as HTML."""
    if hasattr(figure, "savefig"):  # matplotlib's Figure (also seaborn's grids)
        fmt = (file_format or "png").lower()
        if fmt not in FIGURE_FORMATS:
            raise InvalidValueError(
                f"a matplotlib figure is saved as {', '.join(FIGURE_FORMATS)}, not {fmt!r}"
            )
        buf = io.BytesIO()
        # No creation date or software stamp: the same figure gives the same bytes.
        stamps = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}
        if fmt == "svg":
            import matplotlib as mpl

            with mpl.rc_context({"svg.hashsalt": "xp"}):
                figure.savefig(buf, format=fmt, metadata=stamps[fmt])
        else:
            figure.savefig(buf, format=fmt, metadata=stamps[fmt])
        info: dict[str, Any] = {"format": fmt}
        if hasattr(figure, "get_size_inches") and hasattr(figure, "dpi") and fmt == "png":
            w, h = figure.get_size_inches() * figure.dpi
            info.update(width=round(float(w)), height=round(float(h)))
        return Encoded(buf.getvalue(), fmt, info)
    if hasattr(figure, "to_html") and hasattr(figure, "to_plotly_json"):  # plotly
        if file_format not in (None, "html"):
            raise InvalidValueError("a plotly figure is saved as html (its interactive page)")
        html = figure.to_html(include_plotlyjs="cdn", full_html=True)
        return Encoded(html.encode("utf-8"), "html", {"format": "html"})
    if hasattr(figure, "figure") and hasattr(figure.figure, "savefig"):  # an Axes
        return encode_figure(figure.figure, file_format)
    raise InvalidValueError(
        f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__};"
        " for arrays use log_image"
    )


# -- tables ---------------------------------------------------------------------------------
def table_frame(data: Any) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a dict of columns, or a list of row dicts."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (dict, list)):
        try:
            return pd.DataFrame(data)  # type: ignore[no-any-return]
        except ValueError as exc:
            raise InvalidValueError(f"cannot make a table of this data: {exc}") from None
    raise InvalidValueError(
        f"log_table takes a pandas DataFrame, a dict of columns or a list of rows, got"
        f" {type(data).__name__}"
    )


def has_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def encode_table(data: Any, file_format: str | None = None) -> Encoded:
    """Parquet (types kept exactly; needs pyarrow) or CSV. Default: Parquet when pyarrow is
    installed, else CSV."""
    frame = table_frame(data)
    fmt = (file_format or ("parquet" if has_pyarrow() else "csv")).lower()
    if fmt not in TABLE_FORMATS:
        raise InvalidValueError(f"a table is stored as parquet or csv, not {fmt!r}")
    info = {"format": fmt, "rows": len(frame), "columns": len(frame.columns)}
    if fmt == "csv":
        return Encoded(frame.to_csv(index=False).encode("utf-8"), "csv", info)
    if not has_pyarrow():
        raise missing_extra("pyarrow", "tables", "a Parquet table")
    frame = frame.rename(columns=str)  # Parquet needs string column names
    buf = io.BytesIO()
    try:
        frame.to_parquet(buf, index=False)
    except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InvalidValueError(
            f"cannot store this table as Parquet ({exc}); pass format='csv'"
        ) from None
    return Encoded(buf.getvalue(), "parquet", info)


def decode_table(data: bytes, file_format: str) -> pd.DataFrame:
    import pandas as pd

    if file_format == "csv":
        return pd.read_csv(io.BytesIO(data))
    if not has_pyarrow():
        raise missing_extra("pyarrow", "tables", "reading a Parquet table")
    return pd.read_parquet(io.BytesIO(data))


# -- histograms -----------------------------------------------------------------------------
def _floats(values: Any, what: str) -> list[float]:
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidValueError(f"histogram {what} must be numbers") from None


def encode_histogram(
    values: Any = None, bins: int = DEFAULT_BINS, np_histogram: Any = None
) -> Encoded:
    """Counts per bin as JSON ``{"bins": edges (n + 1), "counts": n}``, W&B's two arrays.

    Either raw ``values`` (binned here with numpy, NaN and infinities left out and counted
    in ``dropped``), or a precomputed ``np_histogram`` = (counts, edges).
    """
    import numpy as np

    dropped = 0
    if np_histogram is not None:
        counts_, edges_ = np_histogram
        counts = _floats(counts_, "counts")
        edges = _floats(edges_, "edges")
        if len(edges) != len(counts) + 1:
            raise InvalidValueError("np_histogram must be (counts, edges) with one more edge")
    else:
        if values is None:
            raise InvalidValueError("log_histogram needs values or np_histogram")
        if hasattr(values, "detach"):
            values = values.detach().cpu().numpy()
        arr = np.asarray(values, dtype=float).ravel()
        finite = arr[np.isfinite(arr)]
        dropped = int(arr.size - finite.size)
        if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
            raise InvalidValueError(f"bins must be a positive integer, got {bins!r}")
        hist, edge_arr = np.histogram(finite, bins=bins)
        counts, edges = [float(c) for c in hist], [float(e) for e in edge_arr]
    counts_out: list[float | int] = [int(c) if c.is_integer() else c for c in counts]
    if any(not math.isfinite(e) for e in edges):
        raise InvalidValueError("histogram edges must be finite")
    body: dict[str, Any] = {"bins": edges, "counts": counts_out}
    info: dict[str, Any] = {"bins": len(counts_out), "count": sum(counts_out)}
    if edges:
        info.update(min=edges[0], max=edges[-1])
    if dropped:
        body["dropped"] = info["dropped"] = dropped
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    return Encoded(data, "json", info)


def decode_histogram(data: bytes) -> tuple[list[float], list[float]]:
    """(edges, counts) of a stored histogram."""
    body = json.loads(data)
    return [float(e) for e in body["bins"]], [float(c) for c in body["counts"]]
