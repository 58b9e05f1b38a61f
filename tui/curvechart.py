"""The how-many chart as text: plotext draws the covering-radius curve, the knee and the
current count into a braille plot of a given cell size (no Textual, testable alone).

plotext's figure is one module-level object, so building is serialised with a lock:
the chart is only ever built on the UI thread, but a test or a second app must not
interleave two builds."""

from __future__ import annotations

import threading

import numpy as np
from rich.text import Text

KNEE_COLOR = "magenta"
COUNT_COLOR = "yellow"
CURVE_COLOR = "cyan"
_LOCK = threading.Lock()


def nice_ticks(lo: float, hi: float, most: int) -> list[int]:
    """Whole-number ticks 1-2-5 x 10^n apart, at most ``most`` of them, from ``lo``:
    k is a count of images, so "1.7e2" helps nobody."""
    span = max(1.0, hi - lo)
    for exp in range(0, 10):
        for mult in (1, 2, 5):
            step = mult * 10**exp
            if span / step <= max(1, most - 1):
                first = int(np.ceil(lo / step) * step)
                ticks = list(range(first, int(hi) + 1, step))
                return sorted({int(lo), *ticks})
    return [int(lo), int(hi)]


def chart_text(k: np.ndarray, radius: np.ndarray, knee: int, count: int, width: int, height: int) -> Text:
    """The chart, ``width`` x ``height`` cells, as Rich text (plotext's ANSI colours)."""
    import plotext as plt

    width, height = max(20, int(width)), max(8, int(height))
    ks = np.asarray(k, dtype=np.float64)
    rs = np.asarray(radius, dtype=np.float64)
    top = float(rs.max()) if rs.size else 1.0
    bottom = float(rs.min()) if rs.size else 0.0
    with _LOCK:
        plt.terminal.limit(False, False)  # our size, not the size of the tty plotext sees
        fig = plt.figure
        fig.clear()
        fig.theme("dark")

        def marker(color: str):  # noqa: ANN202 - plotext marker object
            return plt.marker("braille", pixel=plt.pixel(foreground=color))

        fig.draw(fig.signal(ks.tolist(), rs.tolist(), marker=marker(CURVE_COLOR)))
        marks = [(knee, f" knee: {knee}", KNEE_COLOR)]
        if ks.size and ks[0] <= count <= ks[-1] and count != knee:
            marks.append((count, f" now: {count}", COUNT_COLOR))
        for i, (x, label, color) in enumerate(marks):
            fig.draw(fig.segment((x, x), (bottom, top), marker=marker(color)))
            y = top - (top - bottom) * (0.08 + 0.12 * i)
            fig.draw(fig.text(x, y, label))
        fig.title("covering radius: every image is within this distance of the first k picks")
        fig.label("k (images selected)", axis=0)
        fig.label("radius (1 − cosine)", axis=1)
        if ks.size:
            ticks = nice_ticks(float(ks[0]), float(ks[-1]), max(2, width // 12))
            fig.ruler(axis=0).ticks(ticks, [f"{t:,}" for t in ticks])
        fig.plot_size(width, height)
        ansi = fig.build().string()
        fig.clear()
    return Text.from_ansi(ansi, no_wrap=True)
