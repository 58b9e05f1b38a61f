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
        fig.plot_size(width, height)
        ansi = fig.build().string()
        fig.clear()
    return Text.from_ansi(ansi, no_wrap=True)
