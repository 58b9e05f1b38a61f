"""Pure numpy rasteriser for the map pane (no Textual, no Rich).

The map is drawn in one vectorised pass: every point is projected onto a dot grid of
2×4 dots per terminal cell, the dots of each cell are OR-ed into a braille bit pattern
and the cell's colour is the highest-priority state among its points (state codes are
ordered so that ``excluded > core > stable > variable > none`` is plain ``max``).
plotext loops over points in Python (~0.4 s at 50k); this is a few milliseconds at 100k.

Coordinates go through three spaces:
- data: whatever UMAP/PCA produced;
- normalised: each axis scaled to [0, 1], y flipped so "up" in the data is up on screen;
- screen: dot units (x in [0, 2·width), y in [0, 4·height)) for a :class:`View`.
Dots are roughly square on a terminal (a cell is ~1:2 and holds 2×4 dots), so distances
in screen space are what the user sees; the direction search works there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_STATES = 5

# Braille dot numbering: bit for (dot row r in 0..3, dot column c in 0..1).
_BIT = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint16)
# Weight of dot index k = r * 2 + c, used to turn an (cells, 8) occupancy into bits.
_DOT_WEIGHTS = _BIT.reshape(-1)

# Character per bit pattern; an empty cell is a plain space (U+2800 renders as a
# visible box in a few fonts).
CHARS = np.array([" "] + [chr(0x2800 + b) for b in range(1, 256)], dtype="<U1")

MAX_ZOOM = 256.0

DIRECTIONS: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}


@dataclass(frozen=True)
class View:
    """Which part of the normalised [0, 1]² map is on screen: centre and zoom factor."""

    cx: float = 0.5
    cy: float = 0.5
    zoom: float = 1.0

    def zoomed(self, factor: float, centre: tuple[float, float]) -> View:
        """Zoom by ``factor`` around ``centre`` (normalised coordinates), which becomes the
        middle of the screen; back at zoom 1 the whole map is shown again."""
        zoom = float(min(MAX_ZOOM, max(1.0, self.zoom * factor)))
        if zoom <= 1.0:
            return View()
        return View(float(centre[0]), float(centre[1]), zoom)

    def centred_on(self, centre: tuple[float, float]) -> View:
        if self.zoom <= 1.0:
            return self
        return View(float(centre[0]), float(centre[1]), self.zoom)


@dataclass
class Raster:
    """Per-cell result of :func:`rasterise` for a ``height`` × ``width`` cell grid."""

    bits: np.ndarray  # uint8 (h, w): braille bit pattern, 0 = empty cell
    winner: np.ndarray  # uint8 (h, w): highest state among the cell's points (0 if empty)

    @property
    def height(self) -> int:
        return int(self.bits.shape[0])

    @property
    def width(self) -> int:
        return int(self.bits.shape[1]) if self.bits.ndim == 2 else 0


def normalise(coords: np.ndarray) -> np.ndarray:
    """Scale each axis of ``coords`` (N, 2) to [0, 1], y flipped; NaN/inf rows go to NaN
    (never drawn, never picked). A degenerate axis (all equal) maps to 0.5."""
    xy = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    if xy.shape[0] == 0:
        return xy.copy()
    # Column by column: numpy's reductions over the short axis of an (N, 2) array
    # (``all(axis=1)``, ``min(axis=0)``) are ~5x slower than over each column.
    finite = np.isfinite(xy[:, 0]) & np.isfinite(xy[:, 1])
    every = bool(finite.all())
    if not every and not finite.any():
        return np.full_like(xy, np.nan)
    # min/max, not nanmin/nanmax: those copy the array to mask NaN (a second at 1M points
    # on a busy machine); rows with NaN are left out first when there are any.
    src = xy if every else xy[finite]
    lo = np.array([src[:, 0].min(), src[:, 1].min()])
    hi = np.array([src[:, 0].max(), src[:, 1].max()])
    span = hi - lo
    out = np.empty_like(xy)
    for a in (0, 1):
        if span[a] > 0:
            np.subtract(xy[:, a], lo[a], out=out[:, a])
            out[:, a] /= span[a]
        else:
            out[:, a] = 0.5
    np.subtract(1.0, out[:, 1], out=out[:, 1])
    if not every:
        out[~finite] = np.nan
    return out


def project(norm: np.ndarray, view: View, width: int, height: int) -> np.ndarray:
    """Screen position in dot units (float, (N, 2)) of normalised points for a cell grid
    of ``width`` × ``height``; at zoom 1 the unit square fills the grid exactly."""
    dw = max(1, 2 * width) - 1
    dh = max(1, 4 * height) - 1
    out = np.empty_like(norm, dtype=np.float64)
    out[:, 0] = ((norm[:, 0] - view.cx) * view.zoom + 0.5) * dw
    out[:, 1] = ((norm[:, 1] - view.cy) * view.zoom + 0.5) * dh
    return out


def unproject(sx: float, sy: float, view: View, width: int, height: int) -> tuple[float, float]:
    """Normalised coordinates of a screen dot position (inverse of :func:`project`)."""
    dw = max(1, 2 * width) - 1
    dh = max(1, 4 * height) - 1
    return (sx / dw - 0.5) / view.zoom + view.cx, (sy / dh - 0.5) / view.zoom + view.cy


def dot_indices(screen: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer dot positions (int32) and the mask of points that land on the grid."""
    with np.errstate(invalid="ignore"):
        fx = np.floor(screen[:, 0] + 0.5)
        fy = np.floor(screen[:, 1] + 0.5)
        inside = (fx >= 0) & (fx < 2 * width) & (fy >= 0) & (fy < 4 * height)
    ix = np.where(inside, fx, 0).astype(np.int32)
    iy = np.where(inside, fy, 0).astype(np.int32)
    return ix, iy, inside


@dataclass
class DotGrid:
    """Where each on-grid point lands: ``slot = (cell * 8 + dot) * 8`` per point inside
    the grid (8 state bytes per dot). Depends only on positions, so a new result (new
    states) reuses it and the redraw is a single scatter into an occupancy table."""

    width: int
    height: int
    inside: np.ndarray  # bool (N,)
    slot: np.ndarray  # int32 (inside.sum(),)


def dot_grid(screen: np.ndarray, width: int, height: int) -> DotGrid:
    width, height = max(0, int(width)), max(0, int(height))
    ix, iy, inside = dot_indices(screen, width, height)
    ix, iy = ix[inside], iy[inside]
    cell = (iy >> 2) * width + (ix >> 1)
    dot = ((iy & 3) << 1) | (ix & 1)
    return DotGrid(width, height, inside, ((cell << 3) | dot) << 3)


def rasterise_grid(grid: DotGrid, states: np.ndarray) -> Raster:
    """Braille bits and winning state per cell, from a :class:`DotGrid` and states.

    One boolean occupancy table of cell × dot × state (8 bytes per dot, one per state)
    is filled with a single fancy assignment; viewing each dot's 8 bytes as one uint64
    turns "is the dot lit" into ``!= 0`` and "which states does the cell hold" into an
    OR over its 8 dots, so there is no Python loop over points and no ``ufunc.at``.
    """
    width, height = grid.width, grid.height
    ncell = width * height
    if ncell == 0:
        z = np.zeros((height, width), dtype=np.uint8)
        return Raster(z, z.copy())
    st = np.minimum(np.asarray(states, dtype=np.uint8)[grid.inside], N_STATES - 1)
    occ = np.zeros(ncell * 64, dtype=bool)
    occ[grid.slot + st] = True
    per_dot = occ.view(np.uint64).reshape(ncell, 8)
    bits = ((per_dot != 0) @ _DOT_WEIGHTS).astype(np.uint8)
    per_cell = np.bitwise_or.reduce(per_dot, axis=1)
    state_bytes = per_cell.view(np.uint8).reshape(ncell, 8)[:, :N_STATES]
    winner = (N_STATES - 1 - np.argmax(state_bytes[:, ::-1], axis=1)).astype(np.uint8)
    winner[bits == 0] = 0
    return Raster(bits.reshape(height, width), winner.reshape(height, width))


def rasterise(screen: np.ndarray, states: np.ndarray, width: int, height: int) -> Raster:
    """Braille bits and winning state per cell for points at ``screen`` dot positions."""
    return rasterise_grid(dot_grid(screen, width, height), states)


SELECTED_CHAR = "⣿"
"""A cell holding a selected image (any tier): every dot lit, so 20 picks among 100,000
grey dots read as blocks of colour, not specks."""
EXCLUDED_CHAR = "×"
"""A cell holding an excluded image: a red cross, a different shape as well as a colour."""
_EXCLUDED = N_STATES - 1


def row_runs(bits_row: np.ndarray, winner_row: np.ndarray) -> list[tuple[str, int]]:
    """One raster row as runs of ``(text, key)`` with a constant style key: the state
    code for drawn cells, -1 for empty cells. Unselected cells show their dots; a cell
    whose highest state is a tier is a full block, an excluded one a cross."""
    n = int(bits_row.size)
    if n == 0:
        return []
    key = np.where(bits_row == 0, -1, winner_row.astype(np.int16))
    chars = CHARS[bits_row]
    chars = np.where(key >= 1, SELECTED_CHAR, chars)
    chars = np.where(key == _EXCLUDED, EXCLUDED_CHAR, chars)
    # The row's characters as one string without a Python join: a contiguous <U1
    # array viewed as a single <Un string.
    text = str(np.ascontiguousarray(chars, dtype="<U1").view(f"<U{n}")[0])
    cuts = np.flatnonzero(key[1:] != key[:-1]) + 1
    starts = [0, *cuts.tolist()]
    ends = [*cuts.tolist(), n]
    keys = key[starts].tolist()
    return [(text[s:e], k) for s, e, k in zip(starts, ends, keys, strict=True)]


def nearest_in_direction(
    screen: np.ndarray,
    origin: int,
    direction: str,
    *,
    off_axis_weight: float = 1.0,
) -> int | None:
    """Row of the nearest point from ``origin`` in ``direction`` ("left"/"right"/"up"/"down").

    Candidates lie within a 45° cone around the direction; among them the score is the
    distance plus ``off_axis_weight`` × the sideways offset, so a point straight ahead
    beats a slightly closer one off to the side. When the cone is empty the whole
    half-plane is tried, so the cursor is never stuck while points remain that way.
    Points at the origin's exact position and NaN rows are never candidates.
    """
    ux, uy = DIRECTIONS[direction]
    x0, y0 = screen[origin]
    if ux:
        along = screen[:, 0] - x0
        perp = np.abs(screen[:, 1] - y0)
        sign = ux
    else:
        along = screen[:, 1] - y0
        perp = np.abs(screen[:, 0] - x0)
        sign = uy
    if sign < 0:
        np.negative(along, out=along)
    with np.errstate(invalid="ignore"):
        ahead = np.flatnonzero(along > 0)
    if ahead.size == 0:
        return None
    a, p = along[ahead], perp[ahead]
    cone = p <= a
    if cone.any():
        ahead, a, p = ahead[cone], a[cone], p[cone]
    score = np.sqrt(a * a + p * p) + off_axis_weight * p
    return int(ahead[np.argmin(score)])


class DirectionFinder:
    """:func:`nearest_in_direction` without a pass over every point per key press.

    At 1,000,000 points the plain search costs ~100 ms a move. Points are sorted by x
    once (per projection); a move looks in a window of half-width ``r`` dots around the
    origin, the x range found by binary search, and doubles ``r`` until the best score
    there is <= r: every point outside the window is more than ``r`` away along or across
    the direction, and the score (distance + weight × offset) is at least that, so the
    answer is the plain search's, ties included (the lowest row wins in both)."""

    MIN_RADIUS = 2.0

    def __init__(self, screen: np.ndarray) -> None:
        self.screen = screen
        xs, ys = screen[:, 0], screen[:, 1]
        finite = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
        # Sorted by whole dot column (int16: numpy's stable sort is a radix sort there,
        # ~10x faster than sorting floats); a window is then a superset of the exact
        # one, which is all the proof above needs.
        keys = self._key(xs[finite])
        perm = np.argsort(keys, kind="stable")
        order = finite[perm]
        self._order = order
        self._keys = keys[perm]
        self._pts = np.take(screen, order, axis=0)  # one gather of both columns, in key order
        self._extent = float(np.ptp(xs[finite]) + np.ptp(ys[finite])) if order.size else 0.0

    @staticmethod
    def _key(x: np.ndarray | float) -> np.ndarray:
        return np.clip(np.floor(x), -32768, 32767).astype(np.int16)

    def nearest_in_direction(self, origin: int, direction: str, *, off_axis_weight: float = 1.0) -> int | None:
        x0, y0 = (float(v) for v in self.screen[origin])
        if not (np.isfinite(x0) and np.isfinite(y0)):
            return nearest_in_direction(self.screen, origin, direction, off_axis_weight=off_axis_weight)
        ux, uy = DIRECTIONS[direction]
        r = self.MIN_RADIUS
        while r <= self._extent:
            lo = int(np.searchsorted(self._keys, self._key(x0 - r), side="left"))
            hi = int(np.searchsorted(self._keys, self._key(x0 + r), side="right"))
            xs, ys = self._pts[lo:hi, 0], self._pts[lo:hi, 1]
            near = np.abs(ys - y0) <= r
            rows, xs, ys = self._order[lo:hi][near], xs[near], ys[near]
            along, perp = ((xs - x0) * ux, np.abs(ys - y0)) if ux else ((ys - y0) * uy, np.abs(xs - x0))
            cone = (along > 0) & (perp <= along)
            if cone.any():
                best = self._best(rows[cone], along[cone], perp[cone], off_axis_weight)
                if best[1] <= r:
                    return best[0]
            r *= 2
        return nearest_in_direction(self.screen, origin, direction, off_axis_weight=off_axis_weight)

    @staticmethod
    def _best(rows: np.ndarray, a: np.ndarray, p: np.ndarray, weight: float) -> tuple[int, float]:
        score = np.sqrt(a * a + p * p) + weight * p
        low = score.min()
        return int(rows[score == low].min()), float(low)


def nearest_point(screen: np.ndarray, x: float, y: float) -> int | None:
    """Row of the point nearest to screen position (x, y), or None without finite points."""
    if screen.shape[0] == 0:
        return None
    d2 = (screen[:, 0] - x) ** 2 + (screen[:, 1] - y) ** 2
    d2 = np.where(np.isfinite(d2), d2, np.inf)
    i = int(np.argmin(d2))
    return i if np.isfinite(d2[i]) else None


# Pixel rendering (for sixel / kitty / half-cell through textual-image) ----------------

PALETTE = np.array(
    [
        (92, 92, 98),  # none: quiet, dim grey
        (80, 215, 90),  # variable: green
        (40, 210, 225),  # stable: cyan
        (240, 80, 240),  # core: magenta
        (245, 55, 50),  # excluded: red
    ],
    dtype=np.uint8,
)
BACKGROUND = np.array((16, 16, 20), dtype=np.uint8)
CURSOR_RGB = np.array((255, 230, 60), dtype=np.uint8)
CURSOR_EDGE = np.array((0, 0, 0), dtype=np.uint8)


def mark_radius(point_size: int) -> int:
    """Half-width of a selected image's disc: four to five times a plain dot's width in
    sixel/kitty (a picked image must be seen at a glance), one pixel in half-cell."""
    m = max(1, int(point_size))
    return 2 * m if m > 1 else 1


def mark_offsets(state: int, point_size: int) -> np.ndarray:
    """Pixel offsets (k, 2) of one point's mark around its centre, by state.

    Unselected images are ``point_size`` squares; selected ones (any tier) a disc about
    four times as wide, so a handful of picks stands out among 100,000 dots; excluded
    ones a cross as wide as the disc (a different shape, not only a different colour)."""
    m = max(1, int(point_size))
    if state == 0:
        a = np.arange(m) - (m - 1) // 2
        return np.stack(np.meshgrid(a, a), axis=-1).reshape(-1, 2)
    r = mark_radius(m)
    a = np.arange(-r, r + 1)
    ox, oy = (g.ravel() for g in np.meshgrid(a, a))
    if state == _EXCLUDED:
        keep = (np.abs(np.abs(ox) - np.abs(oy)) <= (1 if m > 1 else 0))
    else:
        keep = ox * ox + oy * oy <= r * r + r
    return np.stack([ox[keep], oy[keep]], axis=1)


def render_rgb(
    norm: np.ndarray,
    states: np.ndarray,
    view: View,
    px_width: int,
    px_height: int,
    *,
    cursor: int | None = None,
    point_size: int = 2,
) -> np.ndarray:
    """The same map as an RGB array (px_height, px_width, 3) at pixel resolution.

    Marks are drawn lowest state first, so a higher state is drawn over a lower one
    (same rule as the braille cells): quiet grey dots, then the tiers' discs, then the
    red crosses. The cursor is a yellow crosshair with a black edge and a ring.
    """
    w, h = max(1, int(px_width)), max(1, int(px_height))
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    if not norm.shape[0]:
        return img
    m = max(1, int(point_size))
    pad = mark_radius(m) + 1  # room for the largest mark at the edges
    span_w, span_h = max(1, w - 2 * pad - 1), max(1, h - 2 * pad - 1)

    def to_px(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sx = ((xy[..., 0] - view.cx) * view.zoom + 0.5) * span_w + pad
        sy = ((xy[..., 1] - view.cy) * view.zoom + 0.5) * span_h + pad
        return sx, sy

    sx, sy = to_px(norm)
    with np.errstate(invalid="ignore"):
        fx, fy = np.rint(sx), np.rint(sy)
        inside = (fx >= 0) & (fx < w) & (fy >= 0) & (fy < h)
    st = np.minimum(np.asarray(states, dtype=np.uint8), N_STATES - 1)
    grid = np.zeros((h, w), dtype=np.uint8)  # 0 = background, else state + 1
    for state in range(N_STATES):
        rows = np.flatnonzero(inside & (st == state))
        if rows.size == 0:
            continue
        ix, iy = fx[rows].astype(np.int64), fy[rows].astype(np.int64)
        for ox, oy in mark_offsets(state, m).tolist():
            px, py = ix + ox, iy + oy
            ok = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            grid[py[ok], px[ok]] = state + 1
    drawn = grid > 0
    img[drawn] = PALETTE[grid[drawn] - 1]
    if cursor is not None and 0 <= cursor < norm.shape[0] and np.isfinite(norm[cursor]).all():
        cx, cy = (int(round(float(v))) for v in to_px(norm[cursor]))
        _draw_cursor(img, cx, cy, m)
    return img


def _draw_cursor(img: np.ndarray, cx: int, cy: int, m: int) -> None:
    """A yellow crosshair with black edges and a square ring around the point: it stays
    visible over grey, coloured and red marks alike."""
    h, w = img.shape[:2]
    gap = mark_radius(m) + 2
    arm = max(gap + 3 * m, min(w, h) // 18)
    t = 1 if m == 1 else 2

    def fill(y0: int, y1: int, x0: int, x1: int, colour: np.ndarray) -> None:
        y0, y1, x0, x1 = max(0, y0), min(h, y1), max(0, x0), min(w, x1)
        if y0 < y1 and x0 < x1:
            img[y0:y1, x0:x1] = colour

    half = t // 2
    edge = 1 if m > 1 else 0
    for colour, e in ((CURSOR_EDGE, edge), (CURSOR_RGB, 0)):
        fill(cy - half - e, cy - half + t + e, cx - arm - e, cx - gap + 1 + e, colour)
        fill(cy - half - e, cy - half + t + e, cx + gap - e, cx + arm + 1 + e, colour)
        fill(cy - arm - e, cy - gap + 1 + e, cx - half - e, cx - half + t + e, colour)
        fill(cy + gap - e, cy + arm + 1 + e, cx - half - e, cx - half + t + e, colour)
    if m > 1:  # the ring: a square outline just outside the largest mark
        ring = gap - 1
        for y0, y1, x0, x1 in (
            (cy - ring, cy - ring + 1, cx - ring, cx + ring + 1),
            (cy + ring, cy + ring + 1, cx - ring, cx + ring + 1),
            (cy - ring, cy + ring + 1, cx - ring, cx - ring + 1),
            (cy - ring, cy + ring + 1, cx + ring, cx + ring + 1),
        ):
            fill(y0, y1, x0, x1, CURSOR_RGB)
