"""A run's metric points on their way to series files, in bounded memory (issue 18).

Points leave memory as they are journaled: each is turned at once into its line of
``series/<key>.tsv`` (docs/format.md; logging order, exactly ``series_bytes``'s bytes; a live
run's flush spells it once, for the journal's ``B`` line and this alike) and kept per metric,
in memory while the run is small and in a temporary file per metric once the lines pass
``SPILL_BYTES``. Each metric's final value (MLflow's rule, ``final_value``), point count and
first step are kept as they come, so ``build_record`` needs no pass over the points, and a
series blob is written by streaming a file of known size.

The files live in the process's own temporary folder (``fsutil.private_tmp``): a killed
process's are removed by the next command; the journal, not this, is what survives a crash.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xp import format as fmt
from xp.errors import StorageError
from xp.record import render
from xp.record.columns import Columns

if TYPE_CHECKING:
    import subprocess

SPILL_BYTES = 8 << 20  # series text (or binary blocks) held in memory before it goes to files
PARALLEL_POINTS = 1 << 20  # binary points past which a helper process renders half of them
_READ = 1 << 20
_HEADER = fmt.SERIES_HEADER.encode()


def to_ms(ts: float) -> int:
    """Milliseconds since the epoch of a time in seconds, cut as MLflow cuts ``time.time()``
    (so a run's end is never before a point logged in its last millisecond); the epsilon
    brings a time that was given in ms (``ms / 1000``) back to exactly that ms."""
    return math.floor(ts * 1000 + 0.001)


def _value(text: str) -> float | int:
    """A value back from its spelling (``repr``): an int, or a float (``nan``, ``inf`` too)."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _append(path: Path, parts: list[bytes], size: int) -> None:
    """Append ``parts`` to ``path`` (``size`` bytes long) whole or not at all: a write cut
    short (a full disk) is truncated back to ``size``."""
    try:
        with open(path, "ab") as fh:
            try:
                for part in parts:
                    fh.write(part)
                fh.flush()
            except OSError:
                fh.truncate(size)
                raise
    except OSError as exc:
        raise StorageError(
            f"cannot write metric series to {path.parent}: {exc.strerror}; free disk space"
        ) from None


class _Helper:
    """A helper process rendering blocks of a big spill (record/render.py): given their
    offsets in the blocks file as they are stored, and ``end`` when the spill needs them."""

    def __init__(self, proc: subprocess.Popen[bytes], out: Path) -> None:
        self.proc, self.out = proc, out

    @classmethod
    def start(cls, folder: Path) -> _Helper | None:
        """None where it cannot start (the spill then renders everything itself)."""
        import subprocess  # only a big run comes here

        python = Path(sys.executable or "none").name
        if (os.cpu_count() or 1) < 2 or not python.startswith(("python", "pypy")):
            return None  # one core, or a program embedding Python: no module to run with -m
        out = None
        try:
            out = Path(tempfile.mkdtemp(prefix="render-", dir=folder))
            proc = subprocess.Popen(
                [sys.executable, "-m", "xp.record.render", str(folder / "blocks"), str(out)],
                cwd=out,  # `-m` puts the folder first on sys.path: xp's own, empty one
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            if out is not None:
                shutil.rmtree(out, ignore_errors=True)
            return None
        return cls(proc, out)

    def send(self, offsets: list[int]) -> bool:
        """Give the helper more blocks; False when it is gone."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("".join(f"{o}\n" for o in offsets).encode())
            self.proc.stdin.flush()
        except (OSError, ValueError):
            return False
        return True

    def finish(self) -> list[tuple[str, str, int, int, int, int, str]] | None:
        """Per metric of the blocks it was given: key, file, bytes, count, first step, final
        step and final value's spelling; None when it failed (its output is then unused).
        ``end`` and not the end of its input: a process forked meanwhile (a data loader's
        worker) may hold a copy of that pipe."""
        if not self.send_end():
            return None
        try:
            assert self.proc.stdout is not None
            out = self.proc.stdout.read()
            if self.proc.wait() != 0:
                return None
            series = json.loads(out)["series"]
            return [
                (str(k), str(n), int(b), int(c), int(f), int(fs), str(v))
                for k, n, b, c, f, fs, v in series
            ]
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def send_end(self) -> bool:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(b"end\n")
            self.proc.stdin.close()
        except (OSError, ValueError):
            return False
        return True

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        shutil.rmtree(self.out, ignore_errors=True)


def _half(blocks: list[tuple[int, Columns]]) -> int:
    """The index of the first block after half of the points."""
    half = sum(b.count for _o, b in blocks) // 2
    done = 0
    for i, (_o, block) in enumerate(blocks):
        if done >= half:
            return i
        done += block.count
    return len(blocks)


def _number(value: Any) -> str:
    # the spelling of model.format_number, for values that are not a plain float or int
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return repr(value)


class _Series:
    __slots__ = ("best_step", "best_value", "count", "first_step", "lines", "name", "on_disk")

    def __init__(self, name: str) -> None:
        self.name = name  # file name in the spill folder (keys may hold '/' or be long)
        self.lines: list[str] = []  # not yet written to the file
        self.on_disk = 0  # bytes in the file
        self.count = 0
        self.first_step = 0
        self.best_step = -(1 << 64)
        self.best_value: Any = None


@dataclass(frozen=True)
class Mark:
    """What the spill held at one moment, to go back to (a commit that failed)."""

    sizes: dict[str, tuple[int, int, int, int, Any]]


class SpilledSeries:
    """One metric's series file, streamed: ``size`` bytes from ``chunks()``."""

    def __init__(self, spill: SeriesSpill, key: str) -> None:
        self._spill, self.key = spill, key
        self.size = spill.size(key)

    def chunks(self) -> Iterator[bytes]:
        return self._spill.chunks(self.key)

    def read(self) -> bytes:
        return b"".join(self.chunks())


class SeriesSpill:
    """Per-metric series lines and summaries; ``folder`` makes the temporary folder.

    A big flush's points come as binary blocks (``add_columns``, journal version 4): they
    wait, in memory and then in one file, and become series lines only when something reads
    the spill or adds other points (``_render``): in one pass at the run's end, on both
    cores when they are many. Everything after a block is added after its lines, so each
    series stays in logging order."""

    def __init__(self, folder: Callable[[], Path]) -> None:
        self._folder_of = folder
        self._folder: Path | None = None
        self._series: dict[str, _Series] = {}
        self._pending = 0  # characters (= bytes: the lines are ASCII) not yet in files
        # binary blocks not yet rendered, each with its offset in the blocks file (-1: its
        # data is still in memory); the file is emptied once they are rendered
        self._blocks: list[tuple[int, Columns]] = []
        self._blocks_held = 0  # bytes of block data in memory
        self._blocks_size = 0  # bytes in the blocks file
        self.had_columns = False  # a live run keeps writing C blocks once it wrote one
        self._helper: _Helper | None = None  # renders stored blocks on another core
        self._sent = 0  # the pending blocks the helper has had (always the first ones)
        self._helper_failed = False  # a helper that failed once is not started again

    # -- writing ---------------------------------------------------------------------------
    def add_columns(self, block: Columns) -> None:
        """Append a binary block of points (a journal ``C`` line's), rendered later."""
        self._blocks.append((-1, block))
        self._blocks_held += len(block.data)
        self.had_columns = True
        if self._blocks_held > SPILL_BYTES:
            with contextlib.suppress(StorageError):  # as in add
                self._store_blocks()
            self._feed()

    def _store_blocks(self) -> None:
        """Write the blocks held in memory to the blocks file (all or nothing); only their
        keys and counts stay in memory."""
        held = [(i, b) for i, (offset, b) in enumerate(self._blocks) if offset < 0]
        if not held:
            return
        path = self._dir() / "blocks"
        heads = [render.frame(b) for _i, b in held]
        parts = [
            p for head, (_i, block) in zip(heads, held, strict=True) for p in (head, block.data)
        ]
        _append(path, parts, self._blocks_size)
        for head, (i, block) in zip(heads, held, strict=True):
            self._blocks[i] = (self._blocks_size, Columns(block.keys, block.count, (), b""))
            self._blocks_size += len(head) + len(block.data)
        self._blocks_held = 0

    def _feed(self) -> None:
        """Give the helper process the stored blocks it has not had; start it once they hold
        PARALLEL_POINTS: from then on the floats of a big run are spelled on another core
        while it logs, not at its end."""
        stored = [o for o, _b in self._blocks if o >= 0]  # a prefix: memory holds the newest
        if len(stored) <= self._sent:
            return
        if self._helper is None:
            if self._helper_failed or self._sent:
                return  # this process renders them (at end_run)
            if sum(b.count for o, b in self._blocks if o >= 0) < PARALLEL_POINTS:
                return
            self._helper = _Helper.start(self._dir())
            if self._helper is None:
                self._helper_failed = True
                return
        if self._helper.send(stored[self._sent :]):
            self._sent = len(stored)
        else:
            self._helper.close()
            self._helper = None
            self._sent = 0
            self._helper_failed = True

    def _render(self) -> None:
        """Turn the pending binary blocks into series lines, in order (record/render.py):
        all or none, so a failure (a full disk) leaves them pending for the next try and no
        point is added twice."""
        if not self._blocks:
            return
        before = self._mark()
        try:
            self._render_blocks()
        except BaseException:
            self._rollback_lines(before)
            raise
        self._drop_blocks()

    def _render_blocks(self) -> None:
        blocks = self._blocks
        helper, self._helper = self._helper, None
        first = self._sent  # blocks[:first] are the helper's
        try:
            if helper is None and sum(b.count for _o, b in blocks) >= PARALLEL_POINTS:
                # many blocks at once (recovery): a helper takes the later half
                with contextlib.suppress(StorageError):  # a full disk: all rendered here
                    self._store_blocks()
                    helper = _Helper.start(self._dir())
                first = _half(blocks)
                if helper is not None and not helper.send([o for o, _b in blocks[first:]]):
                    helper.close()
                    helper = None
                if helper is None:
                    self._render_here(blocks)
                    return
                self._render_here(blocks[:first])
                self._take(helper, blocks[first:])
                return
            if helper is None:
                self._render_here(blocks)
                return
            # the helper has had the stored blocks while the run logged: this process
            # spells the newest ones meanwhile (at most SPILL_BYTES of them), then adds them
            # after the helper's
            tail = list(self._rendered(blocks[first:]))
            self._take(helper, blocks[:first])
            for rendered in tail:
                self._add_text(rendered)
        except OSError as exc:
            raise StorageError(f"cannot read metric blocks back: {exc}; free disk space") from None
        finally:
            if helper is not None:
                helper.close()

    def _rendered(self, blocks: list[tuple[int, Columns]]) -> Iterator[render.Rendered]:
        fh = None
        try:
            for offset, block in blocks:
                if offset >= 0:
                    if fh is None:
                        fh = open(self._dir() / "blocks", "rb")  # noqa: SIM115 - closed below
                    block = render.read_block(fh, offset)
                yield from render.render(block)
        finally:
            if fh is not None:
                fh.close()

    def _render_here(self, blocks: list[tuple[int, Columns]]) -> None:
        for rendered in self._rendered(blocks):
            self._add_text(rendered)

    def _take(self, helper: _Helper, blocks: list[tuple[int, Columns]]) -> None:
        """Append what the helper rendered of ``blocks`` (when it failed, render them here)."""
        done = helper.finish()
        if done is None:
            self._render_here(blocks)
            return
        self.spill()  # the lines held in memory go first: the helper's follow them on disk
        folder = self._dir()
        for key, name, size, count, first, final_step, final_text in done:
            s = self._series.get(key)
            if s is None:
                s = self._series[key] = _Series(str(len(self._series)))
            if not s.count:
                s.first_step = first
            if not s.on_disk and not s.lines:  # a big run's series: the helper's file
                os.replace(helper.out / name, folder / s.name)
            else:
                with open(helper.out / name, "rb") as src, open(folder / s.name, "ab") as dst:
                    try:
                        shutil.copyfileobj(src, dst, _READ)
                        dst.flush()
                    except OSError:
                        dst.truncate(s.on_disk)  # whole or not at all, as spill()
                        raise
            s.on_disk += size
            s.count += count
            if final_step >= s.best_step:
                s.best_step, s.best_value = final_step, _value(final_text)

    def _drop_blocks(self) -> None:
        if self._helper is not None:
            self._helper.close()
            self._helper = None
        self._blocks = []
        self._blocks_held = 0
        self._sent = 0
        if self._blocks_size:
            self._blocks_size = 0
            if self._folder is not None:
                with contextlib.suppress(OSError):
                    os.truncate(self._folder / "blocks", 0)

    def add(self, points: Iterable[tuple[str, Any, int, float]]) -> None:
        """Append points ``(key, value, step, seconds)`` in logging order (a live run's
        flushes spell their points once and use ``add_block`` or ``add_columns``)."""
        self._render()
        series = self._series
        floor = math.floor
        pending = 0
        last: Any = None  # the points of one log_metrics call share one time object
        ms = 0
        for key, value, step, ts in points:
            s = series.get(key)
            if s is None:
                s = series[key] = _Series(str(len(series)))
            if not s.count:
                s.first_step = step
            if ts is not last:
                last, ms = ts, floor(ts * 1000 + 0.001)
            t = type(value)
            text = (
                f"{step}\t{value!r}\t{ms}\n"
                if t is float or t is int
                else f"{step}\t{_number(value)}\t{ms}\n"
            )
            s.lines.append(text)
            pending += len(text)
            s.count += 1
            if step >= s.best_step:
                s.best_step, s.best_value = step, value
        self._pending += pending
        if self._pending > SPILL_BYTES:
            with contextlib.suppress(StorageError):  # a full disk: the lines stay in memory,
                self.spill()  # and the next add tries again

    def add_block(self, block: tuple[str, str, int, int, int, Any]) -> None:
        """Append one metric's points already spelled as series lines (a journal ``B``
        block: ``record.journal.Block``): key, the lines (each ending in a newline), their
        count, first step, and the final step and value among them."""
        self._render()
        self._add_text(block)

    def _add_text(self, block: tuple[str, str, int, int, int, Any]) -> None:
        key, text, count, first, final_step, final = block
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = _Series(str(len(self._series)))
        if not s.count:
            s.first_step = first
        s.lines.append(text)
        s.count += count
        if final_step >= s.best_step:
            s.best_step, s.best_value = final_step, final
        self._pending += len(text)
        if self._pending > SPILL_BYTES:
            with contextlib.suppress(StorageError):  # as in add
                self.spill()

    def spill(self) -> None:
        """Write every line held in memory to its metric's file (all or, per metric,
        nothing: a write cut short is truncated away)."""
        if not self._pending:
            return
        folder = self._dir()
        for s in self._series.values():
            if not s.lines:
                continue
            data = "".join(s.lines).encode("ascii")
            _append(folder / s.name, [data], s.on_disk)
            s.on_disk += len(data)
            self._pending -= sum(map(len, s.lines))
            s.lines = []
        self._pending = 0

    def _dir(self) -> Path:
        if self._folder is None:
            try:
                self._folder = Path(tempfile.mkdtemp(prefix="series-", dir=self._folder_of()))
            except OSError as exc:
                raise StorageError(
                    f"cannot make a folder for metric series: {exc.strerror}; free disk space"
                ) from None
        return self._folder

    def mark(self) -> Mark:
        self._render()  # so a rollback has only newer blocks to drop
        return self._mark()

    def _mark(self) -> Mark:
        return Mark(
            {
                k: (
                    s.on_disk + sum(map(len, s.lines)),
                    s.count,
                    s.first_step,
                    s.best_step,
                    s.best_value,
                )
                for k, s in self._series.items()
            }
        )

    def rollback(self, mark: Mark) -> None:
        """Forget what was added since ``mark`` (a commit that failed adds it again); the
        newer lines are the last ones, in memory or at the end of the file."""
        self._drop_blocks()  # all newer than the mark, which rendered the older ones
        self._rollback_lines(mark)

    def _rollback_lines(self, mark: Mark) -> None:
        for key in [k for k in self._series if k not in mark.sizes]:
            s = self._series.pop(key)
            self._pending -= sum(map(len, s.lines))
            if self._folder is not None:
                (self._folder / s.name).unlink(missing_ok=True)
        for key, (size, count, first, best_step, best_value) in mark.sizes.items():
            s = self._series[key]
            held = sum(map(len, s.lines))
            while s.lines and s.on_disk + held > size:
                held -= len(s.lines[-1])
                self._pending -= len(s.lines.pop())
            if s.on_disk > size:
                assert self._folder is not None
                os.truncate(self._folder / s.name, size)
                s.on_disk = size
            s.count, s.first_step, s.best_step, s.best_value = count, first, best_step, best_value

    def close(self) -> None:
        """Remove the files (the run is committed, or dropped)."""
        self._drop_blocks()  # and stop the helper, whose files are in the folder
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self._series.clear()
        self._pending = 0

    # -- reading ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(s.count for s in self._series.values()) + sum(b.count for _o, b in self._blocks)

    def __contains__(self, key: object) -> bool:
        return key in self._series or any(key in b.keys for _o, b in self._blocks)

    def names(self) -> list[str]:
        """The metrics, in the order of their first point."""
        self._render()
        return list(self._series)

    def count(self, key: str) -> int:
        self._render()
        return self._series[key].count

    def first_step(self, key: str) -> int:
        self._render()
        return self._series[key].first_step

    def final(self, key: str) -> Any:
        """The value at the highest step, the last logged among equal steps."""
        self._render()
        return self._series[key].best_value

    def size(self, key: str) -> int:
        self._render()
        s = self._series[key]
        return len(_HEADER) + s.on_disk + sum(map(len, s.lines))

    def chunks(self, key: str) -> Iterator[bytes]:
        """The bytes of ``series/<key>.tsv``: header, then the lines in logging order."""
        self._render()
        s = self._series[key]
        yield _HEADER
        if s.on_disk:
            assert self._folder is not None
            with open(self._folder / s.name, "rb") as fh:
                left = s.on_disk
                while left > 0:
                    block = fh.read(min(_READ, left))
                    if not block:
                        raise StorageError(f"the metric series of {key!r} lost data on disk")
                    left -= len(block)
                    yield block
        if s.lines:
            yield "".join(s.lines).encode("ascii")

    def points(self, key: str) -> Iterator[tuple[int, float | int, int]]:
        """The points of one metric as ``(step, value, ms)``, read back from the lines."""
        rest = b""
        first = True
        for block in self.chunks(key):
            if first:
                first = False
                continue
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for raw in lines:
                step, value, ms = raw.split(b"\t")
                text = value.decode()
                num: float | int = int(text) if text.lstrip("-").isdigit() else float(text)
                yield int(step), num, int(ms)
