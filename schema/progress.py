"""A tiny progress bar for long command-line jobs: drawn on a terminal, silent otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 28


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """``update(done)`` redraws at most every ``interval`` seconds; ``close()`` draws the final
    state and ends the line. With a known ``total`` it shows a bar, the rate and an ETA,
    otherwise a running count. Draws nothing unless ``stream`` is a terminal."""

    def __init__(
        self,
        stream: TextIO,
        *,
        total: int | None,
        label: str,
        unit: str = "rows",
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._total = total if total and total > 0 else None
        self._label = label
        self._unit = unit
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None
        self._done = 0
        self._width = 0
        self.enabled = stream.isatty()

    def update(self, done: int, total: int | None = None) -> None:
        self._done = done
        if total is not None:
            self._total = total if total > 0 else None
        now = self._clock()
        if self.enabled and (self._drawn_at is None or now - self._drawn_at >= self._interval):
            self._draw(now)

    def close(self) -> None:
        if self.enabled and self._drawn_at is not None:
            self._draw(self._clock())
            self._stream.write("\n")
            self._stream.flush()
            self._drawn_at = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = self._done / elapsed
        text = f"{self._label} {self._done:,}"
        if self._total is not None:
            fraction = min(self._done / self._total, 1.0)
            filled = round(fraction * WIDTH)
            bar = "#" * filled + "-" * (WIDTH - filled)
            text = f"{self._label} [{bar}] {fraction:4.0%} {self._done:,}/{self._total:,}"
        text += f" {self._unit}  {rate:,.0f}/s"
        if self._total is not None and rate > 0 and self._done < self._total:
            text += f"  ETA {_duration((self._total - self._done) / rate)}"
        elif self._total is not None and self._done >= self._total:
            text += f"  in {_duration(elapsed)}"
        return text

    def _draw(self, now: float) -> None:
        text = self.render(now)
        # Pad over the remains of a longer previous line instead of relying on ANSI codes.
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)
        self._drawn_at = now


def count_lines(path: str, *, chunk: int = 1 << 20) -> int:
    """Newlines in a file, counted in large binary chunks: cheap enough to size a progress bar."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as f:
        while block := f.read(chunk):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")
